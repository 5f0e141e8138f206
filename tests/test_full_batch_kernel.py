"""The compiled full-batch steps against the numpy ones.

On whitened statistics the solver runs the iterations that cannot fire the
stall rule as one compiled call (``sk_adam._kernel._whitened_steps``), with
the tol and optimum rules and the best iterate kept inside it. The numpy
engine (``SK_ADAM_NO_NUMBA``) runs the same iterations one by one: both must
take the same decisions (iterations, kept iterate, rule) and reach the same
numbers up to the order of floating-point sums.
"""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from engines import use_statistics_pass
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from sk_adam import AdamRegressor, _solver
from sk_adam._kernel import compiled_steps


def _data(k=1, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(300, 6) @ rng.randn(6, 6) * np.logspace(-2, 2, 6) + 7.0
    Y = X @ rng.randn(6, k) + 0.3 * rng.randn(300, k)
    return X, (Y[:, 0] if k == 1 else Y)


def _fit(monkeypatch, engine, X, y, sample_weight=None, **params):
    # the steps are compared, on the same statistics (the compiled pass's
    # differ from numpy's at round-off, which k = 3 targets amplify to 5e-10)
    use_statistics_pass(monkeypatch, "numpy")
    if engine == "numpy":
        monkeypatch.setenv("SK_ADAM_NO_NUMBA", "1")
    else:
        monkeypatch.delenv("SK_ADAM_NO_NUMBA", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return AdamRegressor(**params).fit(X, y, sample_weight=sample_weight)


def _same(a, b):
    assert (a.n_iter_, a.best_iter_, a.stop_reason_, a.t_) == (
        b.n_iter_,
        b.best_iter_,
        b.stop_reason_,
        b.t_,
    )
    assert a.alpha_decays_ == b.alpha_decays_
    assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-10)
    assert_allclose(a.coef_, b.coef_, rtol=1e-10)
    assert_allclose(a.intercept_, b.intercept_, rtol=1e-10)
    # the moments end as gradients of 1e-12 or less, differences at the
    # round-off of the parameters (of order 1 in whitened units)
    assert_allclose(a.moment1_, b.moment1_, rtol=1e-8, atol=1e-15)


# parameters, and the rule that ends the fit (checked, so that each case
# exercises what it names)
CASES = {
    "defaults": ({}, "optimum"),
    "tol rule": ({"tol": 3.0}, "tol"),
    "max_iter": ({"max_iter": 57}, "max_iter"),
    "stall with plateau decays": (
        {"n_iter_no_change": 7, "stall_tol": 1e-3},
        "stall",
    ),
    "no stall rule": ({"n_iter_no_change": None, "max_iter": 300}, "max_iter"),
}


def test_the_compiled_steps_are_used(monkeypatch):
    assert compiled_steps() is not None  # numba is in the test extra
    calls = []
    original = _solver._quick_steps

    def spy(*args):
        quick = original(*args)
        calls.append(quick is not None)
        return quick

    monkeypatch.setattr(_solver, "_quick_steps", spy)
    AdamRegressor().fit(*_data())
    assert calls == [True]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("k", [1, 3])
def test_compiled_steps_equal_numpy(monkeypatch, case, k):
    X, y = _data(k)
    s = np.random.RandomState(2).uniform(0.1, 3, len(X))
    params, rule = CASES[case]
    compiled = _fit(monkeypatch, "compiled", X, y, s, **params)
    numpy = _fit(monkeypatch, "numpy", X, y, s, **params)
    assert compiled.whitened_ and compiled.stop_reason_ == rule
    if "decays" in case:
        assert compiled.alpha_decays_ > 0
    _same(compiled, numpy)


def test_divergence_is_the_same(monkeypatch):
    X, y = _data()
    compiled = _fit(monkeypatch, "compiled", X, y, alpha=1e300, max_iter=50)
    numpy = _fit(monkeypatch, "numpy", X, y, alpha=1e300, max_iter=50)
    assert compiled.stop_reason_ == numpy.stop_reason_ == "diverged"
    _same(compiled, numpy)


def test_history_and_verbose_run_every_iteration_in_numpy(monkeypatch, capsys):
    # a callback and progress lines need each iteration: the same fit
    X, y = _data()
    plain = _fit(monkeypatch, "compiled", X, y)
    recorded = _fit(monkeypatch, "compiled", X, y, record_history=True)
    _same(plain, recorded)
    assert recorded.history_.n_iter == recorded.n_iter_


def test_progress_lines_are_the_same_on_both_engines(monkeypatch, capsys):
    # with verbose the compiled steps run between the iterations a line is
    # due at: the same lines (times aside) and the same fit as numpy's
    X, y = _data()
    lines, fits = {}, {}
    for engine in ("compiled", "numpy"):
        fits[engine] = _fit(monkeypatch, engine, X, y, verbose=1)
        out = capsys.readouterr().out
        lines[engine] = [
            line.split(" (")[0] for line in out.splitlines() if "[sk-adam]" not in line
        ]
    _same(fits["compiled"], fits["numpy"])
    assert lines["compiled"] == lines["numpy"]
    assert "iteration 100 MSE" in "\n".join(lines["compiled"])
    assert lines["compiled"][-1].startswith("Stopped at iteration")


_ONE_SHOT = """
import sys
from sklearn.datasets import load_diabetes
from sk_adam import AdamRegressor, _kernel
if len(sys.argv) > 1:
    _kernel.PAYS_AFTER["steps"] = float(sys.argv[1])
X, y = load_diabetes(return_X_y=True)
est = AdamRegressor(max_iter=600, n_iter_no_change=None, tol=0).fit(X, y)
print(est.n_iter_, "numba" in sys.modules, "steps" in _kernel._BUILT)
"""


@pytest.mark.parametrize(
    "pays_after, built",
    [(None, False), ("0.0", True)],
    ids=["a one-shot fit", "once the numpy steps have paid"],
)
def test_the_compiled_steps_are_built_once_they_pay(pays_after, built):
    """A process that fits 600 iterations (about 10 ms of numpy steps)
    never imports numba; where the numpy steps so far have cost what
    building the loop costs, the fit builds it at its next ask (after
    ``ASK_EVERY`` iterations) and goes on compiled."""
    args = [sys.executable, "-c", _ONE_SHOT]
    args += [] if pays_after is None else [pays_after]
    env = {k: v for k, v in os.environ.items() if k != "SK_ADAM_NO_NUMBA"}
    out = subprocess.run(args, capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["600", str(built), str(built)]
