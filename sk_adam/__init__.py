"""sk-adam: linear regression solved by the Adam optimizer, for scikit-learn."""

from ._history import AdamHistory
from ._regressor import AdamRegressor
from ._version import __version__

__all__ = ["AdamHistory", "AdamRegressor", "__version__"]
