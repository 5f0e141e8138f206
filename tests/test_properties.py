"""Property-based tests (hypothesis) over random regression problems.

Bounded and deterministic: a fixed number of examples, derandomized, so a CI
run is reproducible. Every solver path is drawn: full batch from statistics
or products, mini-batches; dense or sparse; float32 or float64.
"""

import os
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from sk_adam import AdamRegressor

# 40 derandomized examples per property in CI; SK_ADAM_EXAMPLES=300 for more
SETTINGS = settings(
    max_examples=int(os.environ.get("SK_ADAM_EXAMPLES", 40)),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def problems(draw):
    n = draw(st.integers(1, 200))
    d = draw(st.integers(1, 30))
    k = draw(st.sampled_from([None, 2, 3]))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.RandomState(seed)
    scales = 10.0 ** rng.uniform(-8, 8, d) if draw(st.booleans()) else np.ones(d)
    offsets = rng.uniform(-1e6, 1e6, d) if draw(st.booleans()) else np.zeros(d)
    X = rng.randn(n, d) * scales + offsets
    if d > 1 and draw(st.booleans()):
        X[:, -1] = X[:, 0]  # a duplicated column
    if draw(st.booleans()):
        X[:, 0] = offsets[0]  # a constant column
    W = rng.randn(d) if k is None else rng.randn(d, k)
    y = (X - offsets) / scales @ W + rng.randn(*((n,) if k is None else (n, k)))
    y = y * 10.0 ** rng.uniform(-6, 6)
    weights = None
    if draw(st.booleans()):
        weights = rng.randint(0, 3, n).astype(float)
        if weights.sum() == 0:
            weights[0] = 1.0
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    sparse = draw(st.booleans())
    X = X.astype(dtype)
    params = dict(
        precompute=draw(st.sampled_from(["auto", True, False])),
        batch_size=draw(st.sampled_from([None, None, 16])),
        # True is a ValueError on the products path and with mini-batches
        whiten=draw(st.sampled_from(["auto", "auto", False, True])),
        standardize=draw(st.booleans()),
        fit_intercept=draw(st.booleans()),
        max_iter=300,
        random_state=0,
    )
    return (sp.csr_array(X) if sparse else X), y, weights, params


def _fit(X, y, weights, params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return AdamRegressor(**params).fit(X, y, sample_weight=weights)


def _copy(a):
    return a.copy() if a is not None else None


@SETTINGS
@given(problems())
def test_fit_is_finite_or_a_clear_error_and_inputs_are_untouched(problem):
    X, y, weights, params = problem
    before = (_copy(X), y.copy(), _copy(weights))
    try:
        est = _fit(X, y, weights, params)
    except ValueError as exc:
        assert str(exc), "a ValueError must say what is wrong"
    else:
        assert np.all(np.isfinite(est.coef_)) and np.all(np.isfinite(est.intercept_))
        pred = est.predict(X)
        assert pred.shape == y.shape
        assert pred.dtype == X.dtype
        assert est.coef_.dtype == X.dtype
    X0, y0, w0 = before
    if sp.issparse(X):
        assert (X != X0).nnz == 0
    else:
        assert np.array_equal(X, X0)
    assert np.array_equal(y, y0)
    if weights is not None:
        assert np.array_equal(weights, w0)


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.sampled_from([True, False]))
def test_integer_weights_equal_repeated_rows(seed, precompute):
    rng = np.random.RandomState(seed)
    n, d = rng.randint(2, 40), rng.randint(1, 6)
    X = rng.randn(n, d) * rng.uniform(0.5, 5, d)
    y = X @ rng.randn(d) + rng.randn(n)
    w = rng.randint(0, 4, n)
    w[0] = max(w[0], 1)
    params = dict(precompute=precompute, max_iter=300, n_iter_no_change=None)
    a = _fit(X, y, w.astype(float), params)
    b = _fit(np.repeat(X, w, axis=0), np.repeat(y, w), None, params)
    assert_allclose(a.loss_curve_[:50], b.loss_curve_[:50], rtol=1e-8)


@SETTINGS
@given(st.integers(0, 2**31 - 1))
def test_row_order_does_not_change_a_full_batch_fit(seed):
    rng = np.random.RandomState(seed)
    n, d = rng.randint(2, 60), rng.randint(1, 6)
    X = rng.randn(n, d) + rng.uniform(-5, 5, d)
    y = X @ rng.randn(d) + rng.randn(n)
    perm = rng.permutation(n)
    a = AdamRegressor().fit(X, y)
    b = AdamRegressor().fit(X[perm], y[perm])
    assert abs(a.score(X, y) - b.score(X, y)) < 1e-9


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.floats(1e-6, 1e6))
def test_scaling_a_feature_scales_its_coefficient(seed, c):
    rng = np.random.RandomState(seed)
    n, d = rng.randint(10, 80), rng.randint(1, 5)
    X = rng.randn(n, d)
    y = X @ rng.randn(d) + 0.5 * rng.randn(n)
    Xc = X.copy()
    Xc[:, 0] *= c
    a = AdamRegressor().fit(X, y)
    b = AdamRegressor().fit(Xc, y)
    # standardized coordinates are the same, so the fits are the same fit
    assert_allclose(b.coef_[0] * c, a.coef_[0], rtol=1e-6, atol=1e-9)
    assert_allclose(b.coef_[1:], a.coef_[1:], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("weights", [None, "zeros-and-ones"])
def test_single_row_and_single_feature(weights):
    X = np.array([[3.0]])
    y = np.array([2.0])
    est = AdamRegressor().fit(X, y, sample_weight=None if weights is None else [1.0])
    assert_allclose(est.predict(X), y)


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("precompute", [True, False])
def test_sparse_matrix_without_stored_entries(standardize, precompute):
    # found by the property test: no stored entry at all
    X = sp.csr_array((3, 2))
    y = np.array([1.0, 2.0, 3.0])
    est = AdamRegressor(standardize=standardize, precompute=precompute)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert_allclose(est.coef_, 0.0)
    assert_allclose(est.predict(X), 2.0, rtol=1e-6)
