"""sk-adam: linear regression solved by the Adam optimizer, for scikit-learn."""

from ._regressor import AdamHistory, AdamRegressor

__version__ = "0.1.0"

__all__ = ["AdamHistory", "AdamRegressor", "__version__"]
