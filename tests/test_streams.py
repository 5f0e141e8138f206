"""Streams and warm starts with default parameters.

The stream tests follow the acceptance of the streaming issue at a size the
suite affords (the benchmark runs the full one: 200,000 x 50 in chunks of
20,000): one ``partial_fit`` pass with all defaults against exact least
squares and against SGDRegressor's defaults on the same pass.
"""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from engines import use_engine
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, SGDRegressor
from sklearn.metrics import mean_squared_error
from sklearn.preprocessing import StandardScaler

from sk_adam import AdamRegressor, _kernel
from sk_adam._kernel import compiled_epoch


@pytest.fixture(params=["compiled", "numpy"])
def engine(request, monkeypatch):
    return use_engine(monkeypatch, request.param)


def _tall(n, d, seed):
    """Shuffled rows, correlated columns, mixed scales and offsets."""
    rng = np.random.RandomState(seed)
    corr = 0.7 ** np.abs(np.subtract.outer(np.arange(d), np.arange(d)))
    X = rng.randn(n, d) @ np.linalg.cholesky(corr).T
    X = X * rng.uniform(0.5, 3.0, d) + rng.uniform(-1e3, 1e3, d)
    return X, X @ rng.randn(d) + 5.0 + rng.randn(n)


def _one_pass(est, X, y, chunk):
    for start in range(0, X.shape[0], chunk):
        est.partial_fit(X[start : start + chunk], y[start : start + chunk])
    return est


@pytest.mark.parametrize("seed", [0, 1])
def test_one_default_pass_is_close_to_least_squares_and_beats_sgd(engine, seed):
    X, y = _tall(60_000, 20, seed)
    exact = LinearRegression().fit(X, y).score(X, y)
    adam = _one_pass(AdamRegressor(random_state=0), X, y, 6_000)
    gap = exact - adam.score(X, y)
    # the issue asks 1e-3 at 200,000 x 50 (781 steps: 1.6e-6 to 5.7e-6
    # there); here 235 steps
    assert 0 <= gap < 1e-3
    # SGDRegressor needs scaled data (raw, it diverges): give it the scaling
    # of all rows up front, which a stream would not have
    Xs = StandardScaler().fit_transform(X)
    sgd = _one_pass(SGDRegressor(random_state=0), Xs, y, 6_000)
    assert adam.score(X, y) > sgd.score(Xs, y)
    # one call = one epoch of batches of 256 over the chunk
    assert adam.n_iter_ == 10 and adam.t_ == 10 * -(-6_000 // 256)


def test_a_default_stream_is_the_same_on_both_engines(monkeypatch):
    X, y = _tall(6_000, 5, seed=12)
    streams = {}
    for engine in ("compiled", "numpy"):
        use_engine(monkeypatch, engine)
        streams[engine] = _one_pass(AdamRegressor(random_state=0), X, y, 1_500)
    a, b = streams["compiled"], streams["numpy"]
    assert_allclose(a.coef_, b.coef_, rtol=1e-10)
    assert_allclose(a._stream["params"], b._stream["params"], rtol=1e-10)
    assert a._stream["count"] == b._stream["count"] == a.t_ == 4 * 6


def test_the_average_is_what_removes_the_noise():
    X, y = _tall(60_000, 20, seed=0)
    exact = LinearRegression().fit(X, y).score(X, y)
    averaged = _one_pass(AdamRegressor(random_state=0), X, y, 6_000)
    last = _one_pass(AdamRegressor(random_state=0, average=False), X, y, 6_000)
    # the same optimiser: the same moments; only the reported point differs
    assert_array_equal(averaged.moment2_, last.moment2_)
    gap_averaged = exact - averaged.score(X, y)
    gap_last = exact - last.score(X, y)
    # 4x here after 235 steps; 20-200x after the 781 of 200,000 rows
    assert gap_averaged < gap_last / 3


def test_a_stream_continues_its_average_exactly_across_pickles():
    X, y = _tall(4_000, 5, seed=3)
    a = AdamRegressor(random_state=0).partial_fit(X[:2000], y[:2000])
    b = pickle.loads(pickle.dumps(a))
    for name in ("coef_", "moment1_", "moment2_", "t_", "n_iter_"):
        assert_array_equal(getattr(b, name), getattr(a, name))  # the state
    for est in (a, b):
        est.partial_fit(X[2000:], y[2000:])
    # the same steps from the same state, equal to round-off: in one full
    # run of the suite they differed by 3e-15 (not reproduced alone; with
    # the moments not carried over they differ by 2.2 relative)
    assert_allclose(a.coef_, b.coef_, rtol=1e-13)
    # and the optimiser continues its last iterate, not the average: a
    # stream in one call per chunk equals one over the same batches
    one = AdamRegressor(random_state=0, shuffle=False)
    two = AdamRegressor(random_state=0, shuffle=False, batch_size=1000)
    one.partial_fit(X[:1000], y[:1000]).partial_fit(X[1000:2000], y[1000:2000])
    two.partial_fit(X[:2000:2], y[:2000:2])  # a different stream ...
    assert not np.allclose(one.coef_, two.coef_)  # ... gives other numbers


def test_partial_fit_after_fit_streams_from_its_coefficients():
    X, y = _tall(20_000, 5, seed=4)
    est = AdamRegressor(random_state=0).fit(X, y)
    mse = mean_squared_error(y, est.predict(X))
    est.partial_fit(X[:10_000], y[:10_000])
    # mini-batches at 0.01 around the solution, averaged: close to it (3e-4)
    continued = mean_squared_error(y, est.predict(X))
    assert continued < mse * (1 + 1e-3)
    assert est.n_iter_ == est.best_iter_ and est.stop_reason_ == "partial_fit"
    # and closer than a new stream's first chunk gets
    fresh = AdamRegressor(random_state=0).partial_fit(X[:10_000], y[:10_000])
    assert mean_squared_error(y, fresh.predict(X)) > continued


def test_reset_schedule_restores_the_rate_and_restarts_the_average():
    X, y = _tall(5_000, 4, seed=5)
    est = AdamRegressor(random_state=0).partial_fit(X, y)
    est.alpha_decays_ = 2  # as a fit with two decays leaves it
    slow = pickle.loads(pickle.dumps(est)).partial_fit(X, y)
    reset = pickle.loads(pickle.dumps(est)).reset_schedule()
    assert reset.alpha_decays_ == 0 and reset._stream["count"] == 0
    assert_array_equal(reset.coef_, est.coef_)  # nothing else changes
    fast = reset.partial_fit(X, y)
    # from the same iterate with the same schedule, but at alpha / 100
    # before the reset: the reset one moved its raw iterate ~100 times further
    moved_slow = np.abs(slow._stream["params"] - est._stream["params"]).max()
    moved_fast = np.abs(fast._stream["params"] - est._stream["params"]).max()
    assert moved_fast > 10 * moved_slow
    # the fresh average is the mean of the new iterates only
    assert fast._stream["count"] == -(-5_000 // 256)


def test_reset_schedule_needs_a_fitted_model():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        AdamRegressor().reset_schedule()


@pytest.mark.parametrize("batch_size", [2_000, 5_000])
def test_a_batch_of_every_row_is_a_full_batch(batch_size):
    X, y = _tall(2_000, 6, seed=6)
    with pytest.warns(UserWarning, match="runs in full batch") as caught:
        big = AdamRegressor(batch_size=batch_size, random_state=0).fit(X, y)
    assert caught[0].filename == __file__  # the line that called fit
    full = AdamRegressor(random_state=0).fit(X, y)
    assert big.n_iter_ == full.n_iter_ and big.stop_reason_ == full.stop_reason_
    assert_array_equal(big.coef_, full.coef_)
    assert abs(big.score(X, y) - full.score(X, y)) < 1e-6
    assert big.whitened_ and big.precomputed_


def test_whiten_true_with_a_batch_of_every_row_is_allowed():
    X, y = _tall(500, 3, seed=7)
    with pytest.warns(UserWarning, match="runs in full batch"):
        AdamRegressor(batch_size=500, whiten=True).fit(X, y)
    with pytest.raises(ValueError, match="whiten=True needs full-batch"):
        AdamRegressor(batch_size=499, whiten=True).fit(X, y)


@pytest.mark.parametrize(
    "data", ["diabetes", "tall", "noiseless", "weighted two targets"]
)
def test_a_warm_start_from_a_solution_costs_a_few_iterations(data):
    from sklearn.datasets import load_diabetes

    rng = np.random.RandomState(8)
    weights = None
    if data == "diabetes":
        X, y = load_diabetes(return_X_y=True)
    else:
        X, y = _tall(20_000, 20, seed=8)
    if data == "noiseless":
        y = X @ rng.randn(20) + 3.0
    if data == "weighted two targets":
        y = np.c_[y, X @ rng.randn(20)]
        weights = rng.uniform(0.5, 2.0, X.shape[0])
    est = AdamRegressor(warm_start=True).fit(X, y, sample_weight=weights)
    first_iter = est.n_iter_
    first = mean_squared_error(y, est.predict(X), sample_weight=weights)
    est.fit(X, y, sample_weight=weights)
    second = mean_squared_error(y, est.predict(X), sample_weight=weights)
    assert est.n_iter_ <= 0.1 * first_iter
    assert second <= first * (1 + 1e-12) + 1e-24


def test_a_warm_start_keeps_the_moments_and_the_step_count():
    # far from the solution at a small rate every step improves, so each
    # fit keeps its last iterate: 30 steps, then a warm start of one step,
    # are the 31 steps of one fit
    X, y = _tall(2_000, 4, seed=9)
    params = dict(whiten=False, alpha=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm = AdamRegressor(warm_start=True, max_iter=30, **params).fit(X, y)
        assert warm.best_iter_ == 30
        warm.set_params(max_iter=1).fit(X, y)
        straight = AdamRegressor(max_iter=31, **params).fit(X, y)
    assert straight.best_iter_ == 31 and warm.t_ == 31 and warm.n_iter_ == 1
    assert_allclose(warm.coef_, straight.coef_, rtol=1e-12)
    assert_allclose(warm.moment2_, straight.moment2_, rtol=1e-12)
    assert_allclose(warm.loss_curve_, straight.loss_curve_[-1:], rtol=1e-12)


def test_a_warm_start_on_other_coordinates_starts_fresh_moments():
    X, y = _tall(2_000, 4, seed=10)
    est = AdamRegressor(warm_start=True).fit(X, y)  # whitened
    est.set_params(whiten=False).fit(X, y)
    assert not est.whitened_
    fresh = AdamRegressor(whiten=False).fit(X, y)
    # from (nearly) the same coefficients with fresh moments: not the
    # whitened axes' moments on the features
    assert est.t_ == est.best_iter_ or est.t_ <= fresh.t_ + est.n_iter_


def test_a_full_batch_fit_never_builds_the_mini_batch_epoch():
    code = (
        "import numpy as np\n"
        "from sk_adam import AdamRegressor, _kernel\n"
        "X = np.random.RandomState(0).randn(200, 3)\n"
        "AdamRegressor().fit(X, X @ [1.0, 2.0, 3.0])\n"
        "print(sorted(_kernel._BUILT))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split("\n")[-2] in ("['steps']", "[]")  # [] without numba


def test_building_a_kernel_is_announced_under_verbose(monkeypatch, capsys):
    monkeypatch.delenv("SK_ADAM_NO_NUMBA", raising=False)
    if compiled_epoch() is None:
        pytest.skip("numba is not installed")  # it is in the test extra
    monkeypatch.setattr(_kernel, "_BUILT", {})  # as in a new process
    X, y = _tall(300, 3, seed=11)
    AdamRegressor(random_state=0, verbose=1).partial_fit(X, y)
    out = capsys.readouterr().out
    assert "[sk-adam] preparing the mini-batch epoch" in out
    assert "mini-batch epoch loaded from the disk cache in" in out or (
        "mini-batch epoch compiled in" in out
    )
    AdamRegressor(random_state=0, verbose=0).partial_fit(X, y)
    AdamRegressor(random_state=0, verbose=1).partial_fit(X, y)  # built now
    assert "preparing" not in capsys.readouterr().out


def test_a_constant_rate_reports_its_last_iterate_unless_asked():
    X, y = _tall(3_000, 4, seed=13)
    constant = AdamRegressor(alpha=0.01, random_state=0).partial_fit(X, y)
    assert_array_equal(constant._stream["params"], constant._stream["average"])
    assert constant._stream["count"] == 0
    averaged = AdamRegressor(alpha=0.01, average=True, random_state=0)
    averaged.partial_fit(X, y)
    assert averaged._stream["count"] == averaged.t_ == -(-3_000 // 256)
    # the same steps: only what is reported differs
    assert_array_equal(averaged._stream["params"], constant._stream["params"])
    assert not np.allclose(averaged.coef_, constant.coef_, rtol=1e-6)
