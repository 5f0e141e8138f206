"""The stopping rules: tol (MSE below), stall (no improvement), max_iter,
divergence; and warm starts."""

import pickle
import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.preprocessing import PolynomialFeatures

from sk_adam import AdamRegressor


def _noisy(seed=0, n=200, d=5, noise=1.0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) + rng.uniform(-3, 3, d)
    return X, X @ rng.uniform(-2, 2, d) + 4.0 + noise * rng.randn(n)


def _weighted_mse(y, pred, sw=None):
    sw = np.ones(len(y)) if sw is None else sw
    return np.mean(
        np.average(
            (y.reshape(len(y), -1) - pred.reshape(len(y), -1)) ** 2, axis=0, weights=sw
        )
    )


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_targets", [None, 2])
def test_tol_rule_exact(standardize, weighted, n_targets):
    X, y = _noisy(noise=0.5)
    if n_targets:
        y = np.c_[y, 2 * y - X[:, 0]]
    sw = np.random.RandomState(3).uniform(0.2, 2, len(X)) if weighted else None
    floor = _weighted_mse(
        y, LinearRegression().fit(X, y, sample_weight=sw).predict(X), sw
    )
    tol = 1.05 * floor  # reachable, but only after a while
    est = AdamRegressor(
        tol=tol, standardize=standardize, alpha=0.1 if standardize else 0.05
    )
    est.fit(X, y, sample_weight=sw)
    curve = est.loss_curve_
    assert est.stop_reason_ == "tol"
    assert curve[-1] < tol
    assert np.all(curve[:-1] >= tol)
    assert len(curve) == est.n_iter_ == est.best_iter_
    # the kept coefficients are those of the last iterate, whose MSE
    # (recomputed here from predictions) is the last entry of the curve
    assert_allclose(_weighted_mse(y, est.predict(X), sw), curve[-1], rtol=1e-10)


def test_stall_rule_fires_exactly_as_documented():
    X, y = _noisy(seed=1)
    # on the features (whitened, the rule measures what is left to gain)
    est = AdamRegressor(
        n_iter_no_change=50, stall_tol=1e-8, stall_decays=0, whiten=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(X, y)
    assert est.stop_reason_ == "stall"
    # rebuild the best-so-far curve: standardize=True starts at the mean of y
    start = np.mean((y - y.mean()) ** 2)
    best = np.minimum.accumulate(np.r_[start, est.loss_curve_])
    n, t_end = 50, est.n_iter_
    fired = [best[t - n] - best[t] <= 1e-8 * best[t] for t in range(n, t_end + 1)]
    assert fired[-1] and not any(fired[:-1])
    # the best iterate is kept, not the last one
    assert_allclose(_weighted_mse(y, est.predict(X)), best[-1], rtol=1e-10)
    assert est.loss_curve_[est.best_iter_ - 1] == best[-1]


def _circling_problem():
    # a well-conditioned design (condition number 33 after standardizing) on
    # which Adam with a constant learning rate circles above the minimum:
    # its best MSE stops improving around iteration 180 while the MSE then
    # rises to five times the best excess
    rng = np.random.RandomState(0)
    X = rng.randn(2000, 1000)
    return X, X @ rng.randn(1000) + rng.randn(2000)


def test_stall_decays_cure_circling():
    X, y = _circling_problem()
    ols = LinearRegression().fit(X, y).score(X, y)
    constant = AdamRegressor(whiten=False, stall_decays=0).fit(X, y)
    assert constant.stop_reason_ == "stall" and constant.alpha_decays_ == 0
    assert ols - constant.score(X, y) > 1e-6
    est = AdamRegressor(whiten=False).fit(X, y)  # stall_decays=3
    assert est.stop_reason_ == "stall" and 1 <= est.alpha_decays_ <= 3
    assert abs(ols - est.score(X, y)) < 1e-10
    # the decays went back to the best point: the kept MSE is the lowest seen
    assert est.loss_curve_[est.best_iter_ - 1] == est.loss_curve_.min()
    # a continued stream keeps the decays: alpha / 10**decays (with a
    # number for alpha, which streams take as a constant rate)
    est.set_params(alpha=0.1)
    same = AdamRegressor(whiten=False, alpha=0.1 / 10**est.alpha_decays_)
    same.__dict__.update(
        {k: v for k, v in est.__dict__.items() if k.endswith("_") or k[0] == "_"}
    )
    same.alpha_decays_ = 0
    a = pickle.loads(pickle.dumps(est)).partial_fit(X[:300], y[:300])
    b = same.partial_fit(X[:300], y[:300])
    assert_allclose(a.coef_, b.coef_, rtol=1e-12)


def test_converged_fits_do_not_decay():
    # a flat MSE at the stall is convergence: no decay, no extra iterations
    X, y = _noisy(seed=1)
    est = AdamRegressor().fit(X, y)
    plain = AdamRegressor(stall_decays=0).fit(X, y)
    assert est.alpha_decays_ == 0 and est.n_iter_ == plain.n_iter_


def test_stall_rule_does_not_fire_while_mse_still_falls():
    # degree-4 polynomial features: ill-conditioned, slow final descent
    rng = np.random.RandomState(0)
    x = rng.uniform(0, 1, (200, 1))
    X = PolynomialFeatures(4, include_bias=False).fit_transform(x)
    y = np.sin(6 * x[:, 0]) + 0.1 * rng.randn(200)
    est = AdamRegressor(whiten=False).fit(X, y)
    ols = LinearRegression().fit(X, y)
    assert est.stop_reason_ == "stall"
    assert ols.score(X, y) - est.score(X, y) < 1e-6


def test_max_iter_warns_and_keeps_best():
    X, y = _noisy()
    with pytest.warns(ConvergenceWarning, match="max_iter=7"):
        est = AdamRegressor(max_iter=7).fit(X, y)
    assert est.n_iter_ == 7 == len(est.loss_curve_)
    assert est.stop_reason_ == "max_iter"


def test_convergence_warnings_name_the_line_that_called_fit():
    # the solver composes the message; the estimator issues it at its
    # caller's line, not inside sk_adam or scikit-learn's fit wrapper
    X, y = _noisy()
    with pytest.warns(ConvergenceWarning) as record:
        AdamRegressor(max_iter=7).fit(X, y)
    assert [w.filename for w in record] == [__file__]


def test_stall_rule_can_be_disabled():
    X, y = _noisy()
    with pytest.warns(ConvergenceWarning):
        est = AdamRegressor(n_iter_no_change=None, max_iter=3000).fit(X, y)
    assert est.n_iter_ == 3000


def test_divergence_keeps_last_finite_iterate():
    # raw coordinates with huge values and a huge learning rate: the MSE
    # overflows after the first step (whitening would rescale the problem)
    rng = np.random.RandomState(0)
    X = rng.randn(50, 3) * 1e150
    y = rng.randn(50)
    with pytest.warns(ConvergenceWarning) as record:
        est = AdamRegressor(standardize=False, whiten=False, alpha=1e10).fit(X, y)
    messages = " ".join(str(w.message) for w in record)
    assert "diverged at iteration 1" in messages and "Reduce alpha" in messages
    assert "No Adam iteration improved" in messages
    assert est.stop_reason_ == "diverged"
    assert np.all(np.isfinite(est.coef_)) and np.isfinite(est.intercept_)
    assert np.all(np.isfinite(est.predict(X)))


def test_no_progress_is_reported():
    X, y = _noisy()
    with pytest.warns(ConvergenceWarning, match="No Adam iteration improved"):
        est = AdamRegressor(alpha=1e6, n_iter_no_change=20).fit(X, y)
    assert est.best_iter_ == 0
    assert np.all(np.isfinite(est.coef_))


def test_starting_mse_overflow_is_a_clear_error():
    X = np.ones((5, 2))
    y = np.full(5, 1e200)
    with pytest.raises(ValueError, match=r"overflow.*standardize=True"):
        AdamRegressor(standardize=False).fit(X, y)
    # the standardized coordinates handle the same data
    est = AdamRegressor().fit(np.c_[np.arange(5.0), np.ones(5)], y * np.arange(1, 6))
    assert np.all(np.isfinite(est.coef_))


def test_values_near_overflow_are_fitted_with_standardize():
    rng = np.random.RandomState(0)
    X = rng.randn(100, 3) * 1e200
    y = X @ np.array([1.0, -2.0, 0.5]) * 1e-200 + rng.randn(100)
    est = AdamRegressor().fit(X, y)
    ols = LinearRegression().fit(X * 1e-200, y)
    assert_allclose(est.coef_ * 1e200, ols.coef_, rtol=1e-6)


def test_warm_start_continues_from_previous_coefficients():
    X, y = _noisy(seed=2)
    est = AdamRegressor(max_iter=30)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    first_coef = est.coef_.copy()
    est.set_params(warm_start=True, max_iter=1)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    # one step of at most ~alpha in standardized units from where it was
    std_step = np.abs(est.coef_ - first_coef) * X.std(axis=0) / y.std()
    assert np.all(std_step <= 0.1 * (1 + 1e-6))
    # and from zero it would be far away
    cold = AdamRegressor(max_iter=1)
    with pytest.warns(ConvergenceWarning):
        cold.fit(X, y)
    assert np.max(np.abs(cold.coef_ - first_coef)) > 10 * np.max(
        np.abs(est.coef_ - first_coef)
    )


@pytest.mark.parametrize("standardize", [True, False])
def test_warm_start_from_the_solution_stays_there(standardize):
    X, y = _noisy(seed=3, noise=0.3)
    if not standardize:
        X = X - X.mean(axis=0)
    est = AdamRegressor(standardize=standardize, warm_start=True).fit(X, y)
    mse = _weighted_mse(y, est.predict(X))
    est.fit(X, y)
    assert _weighted_mse(y, est.predict(X)) <= mse * (1 + 1e-12)
    assert est.n_iter_ <= 1000


def test_warm_start_with_other_shape_is_an_error():
    X, y = _noisy()
    est = AdamRegressor(warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="warm_start=True"):
        est.fit(X, np.c_[y, y])


def test_verbose_prints_progress_and_the_rule(capsys):
    X, y = _noisy()
    AdamRegressor(verbose=1, n_iter_no_change=20).fit(X, y)
    out = capsys.readouterr().out
    assert "iteration 1 MSE" in out and "iteration 10 MSE" in out
    assert "iteration 11 MSE" not in out and "epoch" not in out
    assert re.search(r"Stopped at iteration \d+ by the stall rule", out)
    # 2: every iteration
    est = AdamRegressor(verbose=2, n_iter_no_change=20).fit(X, y)
    lines = [line for line in capsys.readouterr().out.splitlines() if " MSE " in line]
    assert len(lines) == est.n_iter_
    # mini-batches count epochs
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        AdamRegressor(verbose=1, batch_size=32, random_state=0, max_iter=3).fit(X, y)
    out = capsys.readouterr().out
    assert "epoch 3 MSE" in out and re.search(r"Stopped at epoch 3 by the", out)
    # one line per partial_fit call
    est = AdamRegressor(verbose=1, random_state=0).partial_fit(X, y)
    est.partial_fit(X, y)
    out = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in out if "partial_fit" in line] == [
        "partial_fit: epoch 1",
        "partial_fit: epoch 2",
    ]


def test_verbose_announces_each_decay(capsys):
    X, y = _circling_problem()
    est = AdamRegressor(whiten=False, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    decays = re.findall(r"learning rate divided by 10 \(now ([\d.e-]+), decay", out)
    assert len(decays) == est.alpha_decays_ >= 1
    assert float(decays[-1]) == pytest.approx(0.1 / 10**est.alpha_decays_)
