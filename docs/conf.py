"""Sphinx configuration of the sk-adam documentation.

Build with ``make docs`` (warnings are errors). The gallery runs every script
in ``examples/``. Cross-references to scikit-learn and numpy use inventories
generated here from the installed packages (see ``_inventories.py``), so the
build needs no network.
"""

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from _inventories import write_inventories  # noqa: E402

import sk_adam  # noqa: E402

project = "sk-adam"
author = "sk-adam developers"
copyright = "sk-adam developers"
release = version = sk_adam.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]
html_theme = "pydata_sphinx_theme"
html_title = f"sk-adam {release}"
html_theme_options = {"navigation_with_keys": False}

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

intersphinx_mapping = write_inventories(HERE / "_build" / "inventories")

sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": str(HERE / "auto_examples"),
    "filename_pattern": r".*\.py$",
    "download_all_examples": False,
    "plot_gallery": "True",
    "reference_url": {"sk_adam": None},
    "matplotlib_animations": False,
    "remove_config_comments": True,
}
