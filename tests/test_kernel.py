"""The compiled mini-batch epoch against the numpy implementation.

Both compute the same batches in the same order; they differ only in the
order of floating-point sums (and, for float32 data, in the precision of the
products: numpy multiplies in float32, the kernel in float64). The horizons
are short (a few epochs of small batches), where Adam does not yet amplify
round-off, so float64 results agree to 1e-10 relative.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from sk_adam import AdamRegressor, _epochs
from sk_adam._kernel import compiled_epoch


def _problem(dtype, order, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(90, 4) * [1.0, 10.0, 0.1, 1.0] + [0.0, 50.0, -3.0, 0.0]
    X[:, 3] = 2.5  # a constant column
    y = X[:, :3] @ [1.0, -0.2, 4.0] + 0.1 * rng.randn(90)
    return np.asarray(X, dtype=dtype, order=order), y


def _fit(monkeypatch, engine, X, y, sample_weight, **params):
    if engine == "numpy":
        monkeypatch.setenv("SK_ADAM_NO_NUMBA", "1")
    else:
        monkeypatch.delenv("SK_ADAM_NO_NUMBA", raising=False)
    est = AdamRegressor(alpha=0.02, max_iter=4, n_iter_no_change=None, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, sample_weight=sample_weight)


def _sample_weight(kind, n):
    """None, or weights in [0.5, 2] ("positive"), every 4th zero ("with
    zeros")."""
    if kind is None:
        return None
    sw = np.random.RandomState(1).uniform(0.5, 2.0, n)
    if kind == "with zeros":
        sw[::4] = 0.0
    return sw


def _batch_params(shuffle, fit_intercept, standardize):
    return dict(
        batch_size=16,
        shuffle=shuffle,
        random_state=0,
        fit_intercept=fit_intercept,
        standardize=standardize,
    )


def _assert_same_fit(a, b, rtol):
    for name in ("coef_", "intercept_", "moment1_", "moment2_", "loss_curve_"):
        assert_allclose(
            getattr(a, name),
            getattr(b, name),
            rtol=rtol,
            atol=rtol * 1e-3,
            err_msg=name,
        )


def test_numba_is_available_to_the_tests():
    # the test extra installs numba: without it the comparisons below would
    # compare numpy with itself
    assert compiled_epoch() is not None


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("weights", [None, "positive", "with zeros"])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("shuffle", [True, False])
def test_compiled_epoch_equals_numpy(
    monkeypatch, dtype, order, weights, fit_intercept, standardize, shuffle
):
    X, y = _problem(dtype, order)
    sw = _sample_weight(weights, len(y))
    params = _batch_params(shuffle, fit_intercept, standardize)
    compiled = _fit(monkeypatch, "compiled", X, y, sw, **params)
    reference = _fit(monkeypatch, "numpy", X, y, sw, **params)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    assert compiled.t_ == reference.t_ > 0
    assert compiled.coef_.dtype == reference.coef_.dtype == dtype
    _assert_same_fit(compiled, reference, rtol)
    if standardize and fit_intercept:  # a constant column is then inert
        assert_array_equal(compiled.coef_[3], 0.0)


def test_partial_fit_chunks_run_compiled(monkeypatch):
    # the kernel is what partial_fit uses on dense one-target chunks
    calls = []
    kernel = compiled_epoch()

    def counted(*args):
        calls.append(args[0].shape)
        return kernel(*args)

    monkeypatch.setattr(_epochs, "compiled_epoch", lambda: counted)
    X, y = _problem(np.float64, "C")
    est = AdamRegressor(batch_size=8)
    for start in range(0, 90, 30):
        est.partial_fit(X[start : start + 30], y[start : start + 30])
    assert calls == [(30, 4)] * 3
    assert est.t_ == 3 * 4  # ceil(30 / 8) batches per chunk


def test_multi_target_uses_numpy_with_the_same_result(monkeypatch):
    # each target of a multi-target fit equals the compiled one-target fit
    # on the same batches
    X, y = _problem(np.float64, "C")
    params = dict(batch_size=8, random_state=0)
    single = _fit(monkeypatch, "compiled", X, y, None, **params)
    monkeypatch.setattr(_epochs, "compiled_epoch", pytest.fail)
    est = _fit(monkeypatch, "compiled", X, np.c_[y, -3.0 * y], None, **params)
    assert_allclose(est.coef_, [single.coef_, -3.0 * single.coef_], rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("weights", [None, "with zeros"])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("shuffle", [True, False])
def test_compiled_epoch_on_csr_equals_numpy_and_dense(
    monkeypatch, dtype, index_dtype, weights, fit_intercept, standardize, shuffle
):
    X, y = _problem(dtype, "C")
    X[::3, 0] = 0.0  # entries that are not stored
    csr = sp.csr_array(X)
    csr.indices = csr.indices.astype(index_dtype)
    csr.indptr = csr.indptr.astype(index_dtype)
    sw = _sample_weight(weights, len(y))
    params = _batch_params(shuffle, fit_intercept, standardize)
    compiled = _fit(monkeypatch, "compiled", csr, y, sw, **params)
    reference = _fit(monkeypatch, "numpy", csr, y, sw, **params)
    dense = _fit(monkeypatch, "compiled", X, y, sw, **params)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    assert compiled.coef_.dtype == dtype
    for other in (reference, dense):
        _assert_same_fit(compiled, other, rtol)


def test_csr_with_duplicate_and_unsorted_entries(monkeypatch):
    # entries stored twice add up, in any order within a row, as in scipy
    X, y = _problem(np.float64, "C")
    n, d = X.shape
    half = X[:, ::-1] / 2.0  # columns stored last to first, each twice
    data = np.hstack([half, half]).ravel()
    indices = np.tile(np.r_[np.arange(d)[::-1], np.arange(d)[::-1]], n)
    indptr = np.arange(0, 2 * d * n + 1, 2 * d)
    messy = sp.csr_array((data, indices, indptr), shape=X.shape)
    assert not messy.has_sorted_indices and messy.nnz == 2 * X.size
    params = dict(batch_size=16, random_state=0)
    a = _fit(monkeypatch, "compiled", messy, y, None, **params)
    b = _fit(monkeypatch, "compiled", sp.csr_array(X), y, None, **params)
    assert_allclose(a.coef_, b.coef_, rtol=1e-10)


def test_compiled_divergence_is_reported(monkeypatch):
    # a NaN or inf from the kernel is caught like one from numpy
    monkeypatch.delenv("SK_ADAM_NO_NUMBA", raising=False)
    X, y = _problem(np.float64, "C")
    est = AdamRegressor(batch_size=8, alpha=1e300)
    with pytest.raises(ValueError, match="diverged"):
        est.partial_fit(X, y)
    assert not hasattr(est, "coef_")


def test_huge_targets_stream_without_overflow_warnings():
    # squares of 1e300 overflow: statistics are taken on scaled values and
    # the loss is judged in units of the targets' scale, as in fit
    X, y = _problem(np.float64, "C")
    est = AdamRegressor(batch_size=8, random_state=0).partial_fit(X, y * 1e300)
    reference = AdamRegressor(batch_size=8, random_state=0).partial_fit(X, y)
    assert_allclose(est.coef_ / 1e300, reference.coef_, rtol=1e-10)


def test_epoch_without_the_prefetch_hint_is_the_same(monkeypatch):
    # a numba that cannot build the hint gets the epoch without it: the hint
    # changes no value, so the fit equals the numpy one as before
    from sk_adam import _kernel

    def unavailable():
        raise NotImplementedError("no llvm.prefetch here")

    monkeypatch.setattr(_kernel, "_BUILT", {})
    monkeypatch.setattr(_kernel, "_prefetch", _kernel._prefetch)
    monkeypatch.setattr(_kernel, "_prefetch_intrinsic", unavailable)
    assert _kernel.compiled_epoch() is not None
    X, y = _problem(np.float64, "C")
    params = dict(batch_size=16, shuffle=True, random_state=0)
    compiled = _fit(monkeypatch, "compiled", X, y, None, **params)
    reference = _fit(monkeypatch, "numpy", X, y, None, **params)
    assert_allclose(compiled.coef_, reference.coef_, rtol=1e-10)
