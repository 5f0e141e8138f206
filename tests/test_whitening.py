"""Adam on whitened coordinates (``whiten``).

The oracle is the article's loop (tests/oracle.py) run on an explicitly
standardized and whitened copy of the data, the whitening computed here by
numpy's ``eigh`` of that copy's Gram matrix. The estimator computes its Gram
matrix blockwise, so the two whitenings agree only up to the sign of each
eigenvector, to which Adam is equivariant (a flipped coordinate gets flipped
gradients, first moments and steps), and up to round-off.
"""

import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from oracle import seed_adam, weighted_lstsq, weighted_standardize
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import PolynomialFeatures

from sk_adam import AdamRegressor


def _polynomial(degree, n=100, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.uniform(0, 1, (n, 1))
    X = PolynomialFeatures(degree, include_bias=False).fit_transform(x)
    return X, np.sin(6 * x[:, 0]) + 0.1 * rng.randn(n)


def _quiet(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


def _r2_gap(est, X, y):
    coef, intercept = weighted_lstsq(X, y)
    best = 1 - np.mean((y - X @ coef - intercept) ** 2) / np.var(y)
    return best - est.score(X, y)


def _correlated(n=100, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 4) @ rng.randn(4, 4) * [1.0, 10.0, 0.1, 3.0] + [5, -2, 0, 9]
    return X, X @ [1.0, 0.2, -3.0, 0.5] + 0.3 * rng.randn(n)


def _check_against_seed_loop(X, y, weighted, whitening, rtol):
    """The default fit's first 80 iterates against the article's loop on
    the standardized rows ``Z`` whitened by ``whitening(Z, s) -> T``."""
    s = np.random.RandomState(1).uniform(0.5, 2, len(y)) if weighted else None
    s_all = np.ones(len(y)) if s is None else s
    Z, z, _, sigma, _, sigma_y = weighted_standardize(X, y, s_all)
    T = whitening(Z, s_all / s_all.sum())
    n_iter = 80
    iterates, mses = seed_adam(Z @ T, z, 0.1, 0.9, 0.999, 1e-8, n_iter, s)
    est = AdamRegressor(max_iter=n_iter, n_iter_no_change=None)
    est = _quiet(est, X, y, sample_weight=s)
    assert est.whitened_ and est.precomputed_
    assert_allclose(est.loss_curve_, sigma_y**2 * mses[1:], rtol=rtol)
    w = T @ iterates[est.best_iter_]
    assert_allclose(est.coef_, sigma_y * w / sigma, rtol=rtol)


def _cholesky(Z, s):
    return np.linalg.inv(np.linalg.cholesky(Z.T @ (s[:, None] * Z))).T


def _principal_axes(Z, s):
    _, S, Vt = np.linalg.svd(np.sqrt(s)[:, None] * Z, full_matrices=False)
    assert S[0] / S[-1] > 1e5  # beyond what the Gram matrix resolves
    return Vt.T / S


@pytest.mark.parametrize("weighted", [False, True])
def test_cholesky_whitened_iterates_equal_the_seed_loop(weighted):
    # a design the Gram matrix resolves: whitened by its Cholesky factor,
    # w = L^{-T} theta, in the order of the columns (no sign to choose)
    _check_against_seed_loop(*_correlated(), weighted, _cholesky, rtol=1e-8)


@pytest.mark.parametrize("weighted", [False, True])
def test_qr_whitened_iterates_equal_the_seed_loop_on_principal_axes(weighted):
    # degree 8 on [0, 1]: the Gram matrix cannot resolve it (condition number
    # of the standardized design 4e5); the whitening is the SVD of the
    # rows' QR factor, w = V S^{-1} theta: the principal axes, each up to a
    # sign, to which Adam is equivariant. The oracle takes numpy's SVD of
    # the standardized rows themselves; the weakest axis is resolved to the
    # design's precision (1e-16 times its condition number, squared)
    X, y = _polynomial(8)
    _check_against_seed_loop(X, y, weighted, _principal_axes, rtol=1e-6)


@pytest.mark.parametrize("degree", [5, 8])
def test_auto_whitening_reaches_the_closed_form_on_polynomials(degree):
    X, y = _polynomial(degree)
    est = AdamRegressor().fit(X, y)  # defaults: no ConvergenceWarning
    assert est.whitened_ and est.stop_reason_ == "optimum"
    assert est.n_iter_ <= 600
    assert abs(_r2_gap(est, X, y)) < 1e-9
    plain = _quiet(AdamRegressor(whiten=False), X, y)
    assert not plain.whitened_ and plain.stop_reason_ == "max_iter"
    assert _r2_gap(plain, X, y) > 1e-4  # why whitening exists


@pytest.mark.parametrize("n, degree", [(12, 5), (20, 8), (30, 8)])
def test_few_rows_and_large_coefficients(n, degree):
    # coefficients in the thousands (in standardized units): a step-bounded
    # optimiser needs as many steps on the features, but whitened the
    # distance to travel is at most 1
    X, y = _polynomial(degree, n=n)
    est = AdamRegressor().fit(X, y)
    assert est.whitened_ and est.precomputed_
    assert abs(_r2_gap(est, X, y)) < 1e-9


def test_an_orthogonal_design_is_whitened_by_the_identity():
    # the Cholesky map keeps the columns' order: on standardized orthogonal
    # columns it is the identity, and the axes are the features
    signs = np.array([[1, 1, 1], [1, -1, 1], [1, 1, -1], [1, -1, -1]], float)
    X = np.tile(signs * [1.0, 5.0, 0.2], (25, 1)) + np.array([3.0, 0.0, -1.0])
    y = X @ [1.0, 2.0, 3.0] + np.tile([0.1, -0.1, -0.1, 0.1], 25)
    est = AdamRegressor(record_history=True).fit(X, y)
    plain = AdamRegressor(record_history=True, whiten=False).fit(X, y)
    assert est.whitened_ and not plain.whitened_
    n = min(est.n_iter_, plain.n_iter_)
    # the same iterates; the MSEs differ by round-off of the starting MSE
    # (the Gram path evaluates yy - 2 w.c + w'Gw, the whitened one a gap)
    start = plain.loss_curve_[0]
    assert_allclose(
        est.loss_curve_[:n], plain.loss_curve_[:n], rtol=1e-10, atol=1e-14 * start
    )
    assert_allclose(est.history_.moment1hat[:n], plain.history_.moment1hat[:n])


def test_null_axes_stay_at_zero_giving_the_minimum_norm_solution():
    rng = np.random.RandomState(0)
    X = rng.randn(80, 3)
    X = np.c_[X, X[:, 0] + 2 * X[:, 1], np.full(80, 7.0)]  # dependent, constant
    y = X[:, :3] @ [1.0, -2.0, 0.5] + 0.1 * rng.randn(80)
    est = AdamRegressor(whiten=True).fit(X, y)
    assert est.whitened_ and est.coef_[4] == 0.0
    Z, _, _, sigma, _, sigma_y = weighted_standardize(X, y, np.ones(80))
    # the minimum-norm solution in the standardized coordinates
    zcoef = np.linalg.lstsq(Z[:, :4], (y - y.mean()) / sigma_y, rcond=None)[0]
    assert_allclose(est.coef_[:4], sigma_y * zcoef / sigma[:4], rtol=1e-8)
    assert abs(_r2_gap(est, X, y)) < 1e-12


@pytest.mark.parametrize("standardize", [True, False])
def test_whitened_fit_then_partial_fit_continues_in_its_coordinates(standardize):
    X, y = _polynomial(5)
    params = dict(whiten=True, standardize=standardize, alpha=0.01)
    fitted = _quiet(AdamRegressor(max_iter=30, n_iter_no_change=None, **params), X, y)
    after = pickle.loads(pickle.dumps(fitted)).partial_fit(X, y)
    assert after.whitened_ and after.t_ == 31
    # one full-batch partial_fit step on the same rows is the 31st iteration
    # (when standardizing, the intercept joins as a parameter whose gradient
    # is zero at the exact intercept up to round-off; its first step is then
    # about alpha * gradient / epsilon, 1e-11 here)
    longer = _quiet(AdamRegressor(max_iter=31, n_iter_no_change=None, **params), X, y)
    assert_allclose(after.coef_, longer.coef_, rtol=1e-9)
    assert_allclose(after.intercept_, longer.intercept_, rtol=1e-9, atol=1e-8)
    # mini-batches continue there too (numpy engine: the compiled one works
    # on the features)
    streamed = pickle.loads(pickle.dumps(fitted)).set_params(batch_size=25)
    streamed.partial_fit(X, y)
    assert streamed.t_ == 30 + 4 and streamed.whitened_


def test_whiten_true_needs_the_statistics():
    X, y = _polynomial(5, n=4)  # n < d: the statistics still, whitened
    with pytest.raises(ValueError, match="whiten=True needs the statistics"):
        AdamRegressor(whiten=True, precompute=False).fit(X, y)
    assert AdamRegressor(whiten=True).fit(X, y).whitened_
    with pytest.raises(ValueError, match="whiten=True needs full-batch"):
        AdamRegressor(whiten=True, batch_size=2).fit(X, y)
    # 'auto' never complains: it whitens only where it can
    assert not _quiet(AdamRegressor(batch_size=2, max_iter=5), X, y).whitened_
    assert not _quiet(AdamRegressor(precompute=False), X, y).whitened_


def test_whitening_is_recorded_in_history_and_survives_pickle():
    X, y = _polynomial(5)
    est = AdamRegressor(record_history=True).fit(X, y)
    assert est.whitened_
    assert_allclose(est.history_.coef[est.best_iter_ - 1], est.coef_, rtol=1e-12)
    clone = pickle.loads(pickle.dumps(est))
    assert_array_equal(clone.predict(X), est.predict(X))


@pytest.mark.parametrize("rows_first", [3, 40], ids=["trapezoid", "triangle"])
def test_factor_merges_equal_a_qr_of_the_stacked_rows(rows_first):
    # FactorStats merges a block into its triangle by LAPACK's
    # triangular-pentagonal QR: the factor of the stacked rows, as a QR of
    # the whole stack gives it (up to the signs of its rows), on columns
    # whose scales span 1e12; a first block with fewer rows than columns
    # (a trapezoid) goes through the plain QR
    from sk_adam._statistics import _on_triangle, _triangle

    rng = np.random.RandomState(0)
    scales = np.logspace(-6, 6, 12)
    first = rng.randn(rows_first, 12) * scales
    block = rng.randn(300, 12) * scales
    r = _triangle(first.copy())
    merged = _on_triangle(r.copy(), block.copy())
    whole = _triangle(np.vstack([first, block]))
    assert merged.shape == whole.shape == (12, 12)
    # in units of each column's scale
    assert_allclose(np.abs(merged) / scales, np.abs(whole) / scales, atol=1e-12)
    stack = np.vstack([first, block]) / scales
    unit = merged / scales
    assert_allclose(unit.T @ unit, stack.T @ stack, rtol=1e-12, atol=1e-10)
