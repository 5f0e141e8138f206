"""sk-adam: linear regression solved by the Adam optimizer, for scikit-learn."""

from ._regressor import AdamRegressor

__version__ = "0.1.0"

__all__ = ["AdamRegressor", "__version__"]
