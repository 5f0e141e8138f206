"""
Grid search over alpha, beta1 and beta2
=======================================

``alpha`` (the learning rate), ``beta1`` and ``beta2`` are ordinary
scikit-learn hyper-parameters: a pipeline with a scaler and AdamRegressor
goes into GridSearchCV like any other regressor.

Every setting converges to the least-squares fit, so the cross-validated
R^2 is the same in every cell (LinearRegression's, to about 1e-8): what
the settings change is how fast Adam gets there. The heatmaps show the
iterations each setting needs on the whole data, for each ``alpha`` and
``beta1``, one panel per ``beta2``.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_adam import AdamRegressor

X, y = load_diabetes(return_X_y=True)
cv = KFold(5, shuffle=True, random_state=0)
alphas, beta1s, beta2s = [0.01, 0.1, 1.0], [0.5, 0.8, 0.9], [0.99, 0.999]
search = GridSearchCV(
    make_pipeline(StandardScaler(), AdamRegressor()),
    {
        "adamregressor__alpha": alphas,
        "adamregressor__beta1": beta1s,
        "adamregressor__beta2": beta2s,
    },
    cv=cv,
).fit(X, y)
ceiling = cross_val_score(LinearRegression(), X, y, cv=cv).mean()
print(f"best {search.best_params_}: CV R^2 {search.best_score_:.5f}")
print(f"LinearRegression: CV R^2 {ceiling:.5f}")

# %%
# The scores differ by round-off only:
scores = search.cv_results_["mean_test_score"]
print(f"CV R^2 of the {scores.size} settings: {scores.min():.8f} to {scores.max():.8f}")

# %%
# Iterations to convergence per setting, on the whole (scaled) data.
Xs = StandardScaler().fit_transform(X)
iterations = np.empty((len(alphas), len(beta1s), len(beta2s)), dtype=int)
for i, alpha in enumerate(alphas):
    for j, beta1 in enumerate(beta1s):
        for k, beta2 in enumerate(beta2s):
            fitted = AdamRegressor(alpha=alpha, beta1=beta1, beta2=beta2).fit(Xs, y)
            iterations[i, j, k] = fitted.n_iter_

fig, axes = plt.subplots(
    1, len(beta2s), figsize=(10, 4), sharey=True, layout="constrained"
)
for k, ax in enumerate(axes):
    image = ax.imshow(
        iterations[:, :, k],
        vmin=iterations.min(),
        vmax=iterations.max(),
        cmap="viridis_r",
    )
    ax.set_xticks(range(len(beta1s)), [str(b) for b in beta1s])
    ax.set_yticks(range(len(alphas)), [str(a) for a in alphas])
    ax.set_xlabel("beta1")
    ax.set_title(f"beta2 = {beta2s[k]}")
    for i in range(len(alphas)):
        for j in range(len(beta1s)):
            ax.text(
                j, i, f"{iterations[i, j, k]}", ha="center", va="center",
                color="white" if iterations[i, j, k] > iterations.mean() else "black",
                fontsize=9,
            )  # fmt: skip
axes[0].set_ylabel("alpha")
fig.colorbar(image, ax=axes, label="iterations to convergence")
plt.show()
assert np.isfinite(scores).all() and iterations.min() >= 1
