"""Offline intersphinx inventories for scikit-learn and numpy.

The documentation is built without network access, so instead of fetching
``objects.inv`` files this writes small ones from the installed packages: the
public classes and functions of the modules the docs refer to, pointing at
the projects' online API pages.
"""

import importlib
import inspect
import zlib
from pathlib import Path

import numpy
import sklearn

SKLEARN_MODULES = [
    "sklearn.base",
    "sklearn.datasets",
    "sklearn.exceptions",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.neural_network",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.utils",
]


def _entries_sklearn():
    for module_name in SKLEARN_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            try:
                obj = getattr(module, name, None)
            except ImportError:  # experimental names need an explicit import
                continue
            if obj is None:
                continue
            role = "class" if inspect.isclass(obj) else "function"
            full = f"{module_name}.{name}"
            yield full, f"py:{role}", f"modules/generated/{full}.html#$"
    for label, uri in SKLEARN_LABELS.items():
        yield label, "std:label", uri


# labels that scikit-learn's own docstrings (inherited ones, like score's) cite
SKLEARN_LABELS = {
    "r2_score": "modules/model_evaluation.html#r2-score",
}


def _entries_numpy():
    for name in ["ndarray", "dtype", "float32", "float64", "memmap", "asarray"]:
        obj = getattr(numpy, name)
        role = "class" if inspect.isclass(obj) else "function"
        yield f"numpy.{name}", f"py:{role}", f"reference/generated/numpy.{name}.html#$"


def _write(path, project, version, entries):
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    body = "".join(f"{name} {kind} 1 {uri} -\n" for name, kind, uri in entries)
    path.write_bytes(header.encode() + zlib.compress(body.encode()))


def write_inventories(folder):
    """Write the inventories under ``folder``; return an intersphinx mapping."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sk = folder / "sklearn.inv"
    np_ = folder / "numpy.inv"
    _write(sk, "scikit-learn", sklearn.__version__, _entries_sklearn())
    _write(np_, "NumPy", numpy.__version__, _entries_numpy())
    return {
        "sklearn": ("https://scikit-learn.org/stable/", str(sk)),
        "numpy": ("https://numpy.org/doc/stable/", str(np_)),
    }
