"""Choosing the mini-batch engine in a test: the compiled epoch (numba, in
the test extra) or the numpy one (``SK_ADAM_NO_NUMBA``)."""

from sk_adam._kernel import compiled_epoch


def use_engine(monkeypatch, engine):
    """Make ``engine`` ("compiled" or "numpy") the one the next fits use."""
    if engine == "numpy":
        monkeypatch.setenv("SK_ADAM_NO_NUMBA", "1")
    else:
        monkeypatch.delenv("SK_ADAM_NO_NUMBA", raising=False)
        assert compiled_epoch() is not None
    return engine
