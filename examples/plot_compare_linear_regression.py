"""
Adam against the closed form: AdamRegressor and LinearRegression
================================================================

On scikit-learn's diabetes data, AdamRegressor with its defaults reaches the
least-squares solution that LinearRegression computes in closed form. The
coefficient path shows how: every coefficient first moves by about ``alpha``
standardized units per iteration, overshoots, and settles on the OLS value.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression

from sk_adam import AdamRegressor
from sk_adam.plotting import CoefficientPathDisplay

X, y = load_diabetes(return_X_y=True, as_frame=True)
adam = AdamRegressor(record_history=True).fit(X, y)
ols = LinearRegression().fit(X, y)

print(
    f"R^2  AdamRegressor {adam.score(X, y):.8f}  LinearRegression {ols.score(X, y):.8f}"
)
print(f"largest coefficient difference {np.max(np.abs(adam.coef_ - ols.coef_)):.2e}")
print(f"{adam.n_iter_} iterations, stopped by the {adam.stop_reason_} rule")

# %%
# The coefficient path, with LinearRegression's coefficients dashed.
display = CoefficientPathDisplay.from_estimator(adam, X, y)
plt.show()
