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


@pytest.mark.parametrize("weighted", [False, True])
def test_whitened_iterates_equal_the_seed_loop_on_whitened_data(weighted):
    X, y = _polynomial(5)
    s = np.random.RandomState(1).uniform(0.5, 2, len(y)) if weighted else None
    s_all = np.ones(len(y)) if s is None else s
    Z, z, _, sigma, _, sigma_y = weighted_standardize(X, y, s_all)
    eigenvalues, vectors = np.linalg.eigh(Z.T @ (s_all[:, None] * Z) / s_all.sum())
    T = vectors / np.sqrt(eigenvalues)
    n_iter = 80
    iterates, mses = seed_adam(Z @ T, z, 0.1, 0.9, 0.999, 1e-8, n_iter, s)
    est = _quiet(
        AdamRegressor(max_iter=n_iter, n_iter_no_change=None, whiten=True),
        X,
        y,
        sample_weight=s,
    )
    assert est.whitened_ and est.precomputed_
    assert_allclose(est.loss_curve_, sigma_y**2 * mses[1:], rtol=1e-8)
    w = T @ iterates[est.best_iter_]
    assert_allclose(est.coef_, sigma_y * w / sigma, rtol=1e-8)
    assert est.moment2_.shape == (5, 1) and np.all(est.moment2_ > 0)


@pytest.mark.parametrize("degree", [5, 8])
def test_auto_whitening_reaches_the_closed_form_on_polynomials(degree):
    X, y = _polynomial(degree)
    est = AdamRegressor().fit(X, y)  # defaults: no ConvergenceWarning
    assert est.whitened_ and est.stop_reason_ == "stall"
    assert est.n_iter_ < 1000
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


def test_auto_keeps_well_conditioned_data_on_the_features():
    rng = np.random.RandomState(0)
    X = rng.randn(200, 5)
    est = AdamRegressor().fit(X, X @ [1, 2, 3, 4, 5.0])
    assert not est.whitened_


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
    X, y = _polynomial(5, n=4)  # n < d: precompute='auto' takes products
    with pytest.raises(ValueError, match="whiten=True needs the Gram matrix"):
        AdamRegressor(whiten=True).fit(X, y)
    assert AdamRegressor(whiten=True, precompute=True).fit(X, y).whitened_
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
