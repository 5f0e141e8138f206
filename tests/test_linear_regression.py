"""AdamRegressor against the closed-form least-squares solution.

References: scikit-learn's LinearRegression, and numpy's lstsq on a dense
weighted copy of the data (tests/oracle.py). Stated tolerances: R^2 within
1e-6 on real data, coefficients within 1e-6 relative (float64) and 1e-4
relative (float32, whose own resolution is 6e-8 and whose products with X are
computed in float32).
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from oracle import weighted_lstsq
from sklearn.datasets import load_diabetes, load_linnerud
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression

from sk_adam import AdamRegressor


def _data(seed=0, n=300, d=6, n_targets=None, offsets=True, noise=0.1):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) * rng.uniform(0.5, 2.0, d)
    if offsets:
        X += rng.uniform(-5, 5, d)
    shape = (d,) if n_targets is None else (d, n_targets)
    w = rng.uniform(-2, 2, shape)
    y = (
        X @ w
        + 1.5
        + noise * rng.randn(*((n,) if n_targets is None else (n, n_targets)))
    )
    return X, y


def _coef_error(est, coef, intercept):
    scale = np.max(np.abs(coef))
    return max(
        np.max(np.abs(est.coef_ - coef)) / scale,
        np.max(np.abs(np.asarray(est.intercept_) - intercept)) / max(scale, 1.0),
    )


def test_diabetes_defaults_match_linear_regression():
    X, y = load_diabetes(return_X_y=True)
    ols = LinearRegression().fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        adam = AdamRegressor().fit(X, y)
    assert abs(adam.score(X, y) - ols.score(X, y)) < 1e-6
    assert adam.stop_reason_ == "optimum" and adam.n_iter_ <= 600
    assert_allclose(adam.coef_, ols.coef_, rtol=1e-8)


def test_linnerud_multi_output_defaults():
    X, Y = load_linnerud(return_X_y=True)
    ols = LinearRegression().fit(X, Y)
    adam = AdamRegressor().fit(X, Y)
    assert adam.coef_.shape == ols.coef_.shape == (3, 3)
    assert abs(adam.score(X, Y) - ols.score(X, Y)) < 1e-6


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("container", [np.asarray, sp.csr_array, sp.csc_matrix])
@pytest.mark.parametrize("weights", [None, "int", "float"])
def test_coefficients_match_lstsq(standardize, fit_intercept, container, weights):
    # offsets and a raw intercept make raw-coordinate Adam ill-conditioned,
    # which is what standardize=True is for
    X, y = _data(seed=1, offsets=standardize)
    if not fit_intercept:
        y = y - 1.5
    rng = np.random.RandomState(2)
    sw = {
        None: None,
        "int": rng.randint(0, 4, len(y)),
        "float": rng.uniform(0.1, 3, len(y)),
    }[weights]
    coef, intercept = weighted_lstsq(X, y, sw, fit_intercept)
    est = AdamRegressor(fit_intercept=fit_intercept, standardize=standardize)
    est.fit(container(X), y, sample_weight=sw)
    assert _coef_error(est, coef, intercept) < 1e-6
    if container is np.asarray:
        ols = LinearRegression(fit_intercept=fit_intercept).fit(X, y, sample_weight=sw)
        assert_allclose(est.coef_, ols.coef_, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("container", [np.asarray, sp.csr_array])
@pytest.mark.parametrize("precompute, tol", [(False, 1e-16), (True, 1e-14)])
def test_tight_tol_on_noise_free_data(container, precompute, tol):
    # y is exactly linear: the MSE can reach any tolerance on the direct path,
    # and down to round-off of the statistics (~1e-15 var(y)) on the Gram path
    X, y = _data(seed=3, noise=0.0)
    est = AdamRegressor(tol=tol * y.var(), precompute=precompute)
    est.fit(container(X), y)
    assert est.stop_reason_ == "tol"
    assert est.precomputed_ is precompute
    ols = LinearRegression().fit(X, y)
    assert_allclose(est.coef_, ols.coef_, rtol=1e-6)
    # the intercept, y's mean minus the offsets times the coefficients, is
    # compared in units of y's spread
    assert abs(est.intercept_ - ols.intercept_) < 1e-6 * y.std()


@pytest.mark.parametrize("standardize", [True, False])
def test_multi_output_matches_per_target_lstsq(standardize):
    X, Y = _data(seed=4, n_targets=3, offsets=standardize)
    est = AdamRegressor(standardize=standardize).fit(X, Y)
    coef, intercept = weighted_lstsq(X, Y)
    assert est.coef_.shape == (3, X.shape[1])
    assert est.intercept_.shape == (3,)
    assert _coef_error(est, coef, intercept) < 1e-6
    # and each target alone gives the same answer
    for k in range(3):
        single = AdamRegressor(standardize=standardize).fit(X, Y[:, k])
        assert_allclose(single.coef_, coef[k], rtol=1e-6)


@pytest.mark.parametrize("container", [np.asarray, sp.csr_array])
def test_float32_in_float32_out(container):
    X, y = _data(seed=5)
    X32 = container(X.astype(np.float32))
    est = AdamRegressor().fit(X32, y.astype(np.float32))
    assert est.coef_.dtype == np.float32
    assert np.asarray(est.intercept_).dtype == np.float32
    assert est.predict(X32).dtype == np.float32
    coef, intercept = weighted_lstsq(X.astype(np.float32), y.astype(np.float32))
    assert _coef_error(est, coef, intercept) < 1e-4


def test_sample_weights_equal_repeated_rows():
    X, y = _data(seed=6, n=80)
    sw = np.random.RandomState(0).randint(0, 4, len(y))
    weighted = AdamRegressor().fit(X, y, sample_weight=sw)
    repeated = AdamRegressor().fit(np.repeat(X, sw, axis=0), np.repeat(y, sw))
    # the descent is the same to round-off...
    assert_allclose(weighted.loss_curve_[:50], repeated.loss_curve_[:50], rtol=1e-9)
    # ...and the kept iterates agree to what an MSE can resolve near its
    # minimum (about the square root of the MSE's own round-off)
    assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-7)
    assert_allclose(weighted.intercept_, repeated.intercept_, rtol=1e-7)


@pytest.mark.parametrize("container", [np.asarray, sp.csr_array, sp.csc_array])
@pytest.mark.parametrize("weights", [None, "uneven", "zeros"])
@pytest.mark.parametrize(
    "solver",
    [
        dict(precompute=True),
        dict(precompute=False),
        dict(batch_size=30, alpha=0.01, max_iter=3000),
    ],
)
def test_constant_feature_gets_zero_coefficient(container, weights, solver):
    # sparse statistics once left round-off in the weight of the implicit
    # zeros of a fully stored column, making a constant column "vary"
    # (1 - 90 * (1 / 90) is not 0 in floating point)
    X, y = _data(seed=7, n=90)
    X = np.c_[X, np.full(len(y), 1947.0)]
    sw = None
    if weights is not None:
        sw = np.random.RandomState(0).uniform(0.1, 3.0, len(y))
        if weights == "zeros":
            sw[::3] = 0.0
    est = AdamRegressor(random_state=0, **solver)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(container(X), y, sample_weight=sw)
    assert est.coef_[-1] == 0.0
    ols = LinearRegression().fit(X, y, sample_weight=sw)
    gap = 1e-9 if est.batch_size is None else 1e-3
    assert abs(est.score(X, y, sw) - ols.score(X, y, sw)) < gap


def test_one_sample():
    est = AdamRegressor().fit([[1.0, 2.0]], [3.0])
    assert_allclose(est.predict([[1.0, 2.0]]), [3.0])
    assert np.all(np.isfinite(est.coef_))
