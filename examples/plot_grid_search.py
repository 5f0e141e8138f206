"""
Grid search over alpha, beta1 and beta2
=======================================

``alpha`` (the learning rate), ``beta1`` and ``beta2`` are ordinary
scikit-learn hyper-parameters: a pipeline with a scaler and AdamRegressor
goes into GridSearchCV like any other regressor. The heatmaps show the mean
cross-validated R^2 for each ``alpha`` and ``beta1``, one panel per
``beta2``; LinearRegression's score is the ceiling.
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
# Mean CV R^2 per setting.
scores = search.cv_results_["mean_test_score"].reshape(
    len(alphas), len(beta1s), len(beta2s)
)
fig, axes = plt.subplots(1, len(beta2s), figsize=(10, 4), sharey=True)
for k, ax in enumerate(axes):
    image = ax.imshow(scores[:, :, k], vmin=scores.min(), vmax=ceiling, cmap="viridis")
    ax.set_xticks(range(len(beta1s)), [str(b) for b in beta1s])
    ax.set_yticks(range(len(alphas)), [str(a) for a in alphas])
    ax.set_xlabel("beta1")
    ax.set_title(f"beta2 = {beta2s[k]}")
    for i in range(len(alphas)):
        for j in range(len(beta1s)):
            ax.text(
                j,
                i,
                f"{scores[i, j, k]:.4f}",
                ha="center",
                va="center",
                color="white",
                fontsize=8,
            )
axes[0].set_ylabel("alpha")
fig.colorbar(image, ax=axes, label="mean CV R^2")
plt.show()
assert np.isfinite(scores).all()
