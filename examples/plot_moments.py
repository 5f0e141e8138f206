"""
Watching Adam's moments move
============================

The article this library follows ends with "we will now analyse the changes
in the moments with each iteration". With ``record_history=True`` every
iteration's bias-corrected moments ``moment1hat`` and ``moment2hat`` and the
effective step ``alpha * moment1hat / (sqrt(moment2hat) + epsilon)`` are kept.

Early on, ``moment1hat`` and ``sqrt(moment2hat)`` have the same size, so each
coefficient moves by about ``alpha`` per iteration whatever its gradient:
that is Adam's normalisation. Near the optimum the gradients shrink,
``moment1hat`` follows them quickly (``beta1 = 0.9``) while ``moment2hat``
remembers the larger past gradients for about 1 / (1 - beta2) = 1000
iterations, so the steps shrink and the MSE settles.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes

from sk_adam import AdamRegressor
from sk_adam.plotting import AdamHistoryDisplay

X, y = load_diabetes(return_X_y=True, as_frame=True)
est = AdamRegressor(record_history=True, tol=2860.0).fit(X, y)
history = est.history_

first = np.abs(history.step[0])
print(f"first step of every coefficient: {first.min():.4f} .. {first.max():.4f}")
print(f"last step: largest {np.abs(history.step[-1]).max():.2e}")
print(f"stopped at iteration {est.n_iter_} by the {est.stop_reason_} rule")

# %%
# The MSE with the ``tol`` line, the two moments and the effective steps.
display = AdamHistoryDisplay.from_estimator(est)
display.figure_.tight_layout()
plt.show()
