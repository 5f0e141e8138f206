"""Choosing the mini-batch engine in a test: the compiled epoch (numba, in
the test extra) or the numpy one (``SK_ADAM_NO_NUMBA``); and the statistics
pass (see ``tests/conftest.py``)."""

import functools

import pytest

from sk_adam import _kernel
from sk_adam._kernel import compiled_epoch


def use_engine(monkeypatch, engine):
    """Make ``engine`` ("compiled" or "numpy") the one the next fits use."""
    if engine == "numpy":
        monkeypatch.setenv("SK_ADAM_NO_NUMBA", "1")
    else:
        monkeypatch.delenv("SK_ADAM_NO_NUMBA", raising=False)
        assert compiled_epoch() is not None
    return engine


@functools.cache
def _statistics_kernel():
    return _kernel._build("stats")  # built once for the whole session


def use_statistics_pass(monkeypatch, which):
    """Make ``which`` ("compiled" or "numpy") the statistics pass of the
    next fits (the compiled one as a process has it once it paid)."""
    if which == "compiled":
        kernel = _statistics_kernel()
        if not kernel:
            pytest.skip("numba is not installed")  # it is in the test extra
        monkeypatch.setitem(_kernel._BUILT, "stats", kernel)
    else:
        monkeypatch.setitem(_kernel.PAYS_AFTER, "stats", float("inf"))
        monkeypatch.delitem(_kernel._BUILT, "stats", raising=False)
    return which
