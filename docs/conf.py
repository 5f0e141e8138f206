"""Sphinx configuration for the sk-adam documentation (``pip install .[docs]``)."""

import sk_adam

project = "sk-adam"
author = "sk-adam developers"
release = version = sk_adam.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
]
numpydoc_show_class_members = False
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
}
exclude_patterns = ["_build"]
html_theme = "alabaster"
