"""Exactness of the default full-batch fit on hard designs.

The oracle is least squares by a pivoted QR of the centred, scaled design
(``scipy.linalg.lstsq`` with LAPACK's ``gelsy``, a cutoff at the design's own
precision) refined three times on residuals computed in extended precision
(``np.longdouble``). R^2 is evaluated in extended precision too: at a
condition number of 1e8 the coefficients are large enough that ``X @ coef``
in float64 alone moves R^2 by 1e-5, whoever computed them. The default fit
must reach the oracle's R^2 within 1e-6 in at most 600 iterations on
full-rank designs whose standardized condition number goes up to 1e12, and
the minimum-norm fit's R^2 on rank-deficient ones.
"""

import warnings

import numpy as np
import pytest
from engines import use_statistics_pass
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import PolynomialFeatures

from benchmarks.designs import (
    exact_r2,
    extended_r2,
    ill_conditioned,
    standardized_condition,
)
from sk_adam import AdamRegressor, _kernel


def _score(est, X, y):
    return extended_r2(X, y, est.coef_, est.intercept_)


def _fit(X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return AdamRegressor().fit(X, y)


# at 1e12 the float64 intercept alone was 2.6e-5 short: it is summed in
# extended precision where its round-off could cost R^2 (ArrayData)
@pytest.mark.parametrize("statistics_pass", ["numpy", "compiled"])
@pytest.mark.parametrize("condition", [1e1, 1e3, 1e5, 1e8, 1e10, 1e12])
def test_full_rank_designs_reach_least_squares_in_600_iterations(
    monkeypatch, condition, statistics_pass
):
    use_statistics_pass(monkeypatch, statistics_pass)
    X, y = ill_conditioned(condition)
    assert 0.3 < standardized_condition(X) / condition < 3
    est = _fit(X, y)
    assert est.whitened_ and est.stop_reason_ == "optimum"
    assert est.n_iter_ <= 600
    assert abs(_score(est, X, y) - exact_r2(X, y)) < 1e-6


def test_polynomial_diabetes_is_fitted_to_least_squares():
    # raw diabetes with degree-3 polynomial features: rank-deficient (the
    # binary column's powers), the rest condition number beyond 1e7; the
    # Gram matrix holds none of its weakest directions
    X, y = load_diabetes(scaled=False, return_X_y=True)
    X = PolynomialFeatures(3, include_bias=False).fit_transform(X)
    est = _fit(X, y)
    assert est.n_iter_ <= 600
    assert abs(_score(est, X, y) - exact_r2(X, y)) < 1e-6


@pytest.mark.parametrize("shape", [(16, 6), (40, 30), (200, 5)])
def test_rank_deficient_designs_reach_the_minimum_norm_fit(shape):
    # degree-2 polynomials of a small table (wider than tall for 16 x 6: 27
    # columns), and duplicated columns: the minimum-norm fit's R^2 within
    # 1e-6 in at most 2,000 iterations, with the statistics (not 50,000
    # iterations on the products)
    n, d = shape
    rng = np.random.RandomState(1)
    base = rng.randn(n, d) * np.logspace(0, 2, d) + 50
    X = PolynomialFeatures(2, include_bias=False).fit_transform(base)
    X = np.c_[X, X[:, :2], 3 * X[:, -1:]]
    y = base @ rng.randn(d) + 0.5 * rng.randn(n)
    est = _fit(X, y)
    assert est.precomputed_ and est.whitened_
    assert est.n_iter_ <= 2000
    assert abs(_score(est, X, y) - exact_r2(X, y)) < 1e-6
    # minimum norm: the duplicated columns share their coefficient
    assert np.allclose(est.coef_[:2], est.coef_[-3:-1], rtol=1e-6, atol=1e-9)


def test_a_direction_that_carries_signal_below_the_precision_is_reported():
    # two columns equal to the last bit, and a target that is their
    # difference: no fit on these values can resolve it
    rng = np.random.RandomState(0)
    x = rng.uniform(1, 2, 200)
    other = x * (1 + 2**-52 * rng.randint(0, 2, 200))
    X = np.c_[x, other, rng.randn(200)]
    y = 1e16 * (other - x) + 0.01 * rng.randn(200)
    with pytest.warns(UserWarning, match="precision of its values"):
        AdamRegressor().fit(X, y)
    # an exact duplicate carries nothing that a fit could use: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AdamRegressor().fit(np.c_[x, x, X[:, 2]], x + X[:, 2])


@pytest.mark.parametrize("statistics_pass", ["numpy", "compiled"])
def test_the_intercept_is_summed_in_extended_precision_only_where_it_cancels(
    monkeypatch, statistics_pass
):
    from sk_adam import _data

    use_statistics_pass(monkeypatch, statistics_pass)
    # the steps in numpy, whatever this process built: where Adam stops, and
    # so what the formula's round-off costs, depends on the steps' engine
    # (8.9e-7 instead of 2.2e-5 on the numpy pass with the compiled steps)
    monkeypatch.setitem(_kernel.PAYS_AFTER, "steps", np.inf)
    monkeypatch.delitem(_kernel._BUILT, "steps", raising=False)
    X, y = ill_conditioned(1e12)
    exact = exact_r2(X, y)
    summed = _fit(X, y)
    Xd, yd = load_diabetes(return_X_y=True)
    with monkeypatch.context() as formula_only:
        formula_only.setattr(_data, "INTERCEPT_R2", np.inf)  # the float64 formula
        formula = _fit(X, y)
        kept = AdamRegressor().fit(Xd, yd).intercept_
    np.testing.assert_array_equal(summed.coef_, formula.coef_)
    # what the round-off cost: more than the 1e-6 a fit may lose on the
    # numpy pass's means (2.2e-5); the compiled pass's means, kept as
    # double-float sums, lose 4.7e-8: there the sum must only do no harm
    if statistics_pass == "numpy":
        assert exact - _score(formula, X, y) > 1e-6
    assert abs(exact - _score(summed, X, y)) < 1e-7
    # an ordinary design keeps the formula's intercept, bit for bit
    assert AdamRegressor().fit(Xd, yd).intercept_ == kept


def test_the_summed_intercept_weighs_rows_as_repeats():
    """Weights of 2 against the rows repeated, both held to the oracle of
    the repeated rows (at condition 1e12 the two fits' rounding differs)."""
    X, y = ill_conditioned(1e12)
    weights = np.where(np.arange(len(y)) < 100, 2.0, 1.0)
    Xr, yr = np.r_[X[:100], X], np.r_[y[:100], y]
    exact = exact_r2(Xr, yr)
    for est in (
        AdamRegressor().fit(X, y, sample_weight=weights),
        AdamRegressor().fit(Xr, yr),
    ):
        assert abs(exact - extended_r2(Xr, yr, est.coef_, est.intercept_)) < 1e-6
