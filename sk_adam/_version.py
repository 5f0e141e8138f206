"""The version of sk-adam (one place; the package and the fitted state read it)."""

__version__ = "0.1.0"
