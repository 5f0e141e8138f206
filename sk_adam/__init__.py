"""sk-adam: linear regression solved by the Adam optimizer, for scikit-learn."""

__version__ = "0.1.0"

from ._regressor import AdamHistory, AdamRegressor

__all__ = ["AdamHistory", "AdamRegressor", "__version__"]
