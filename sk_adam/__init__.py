"""sk-adam: linear regression solved by the Adam optimizer, for scikit-learn."""

from ._files import FileRows
from ._history import AdamHistory
from ._regressor import AdamRegressor
from ._version import __version__

__all__ = ["AdamHistory", "AdamRegressor", "FileRows", "__version__"]
