"""Every test starts as a new process does for the compiled statistics pass.

A process builds the compiled pass once its numpy passes have cost what
building it does (``sk_adam._kernel.PAYS_AFTER``): in one pytest process
that would happen part-way through the suite, at a point that depends on
the machine's speed, and every later test would see the other pass. Each
test therefore starts with no numpy work counted and the pass not built;
tests that want it ask for it (``tests/engines.py::use_statistics_pass``).
"""

import pytest

from sk_adam import _kernel


@pytest.fixture(autouse=True)
def _statistics_pass_as_in_a_new_process(monkeypatch):
    monkeypatch.setattr(_kernel, "_SPENT", {})
    if "stats" in _kernel._BUILT:
        monkeypatch.delitem(_kernel._BUILT, "stats")
    yield
    _kernel._BUILT.pop("stats", None)  # built by the test: not for the next
