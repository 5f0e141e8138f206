"""Bad input gets a clear error; the caller's data is never modified."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from sk_adam import AdamRegressor

rng = np.random.RandomState(0)
X_OK = rng.randn(20, 3)
Y_OK = X_OK @ [1.0, -1.0, 2.0] + 0.1 * rng.randn(20)


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.where(np.eye(20, 3) == 1, np.nan, X_OK), Y_OK, "NaN"),
        (np.where(np.eye(20, 3) == 1, np.inf, X_OK), Y_OK, "infinity"),
        (X_OK, np.r_[Y_OK[:-1], np.nan], "NaN"),
        (X_OK, np.r_[Y_OK[:-1], np.inf], "infinity"),
        (np.array([["a", "b", "c"]] * 20), Y_OK, "could not convert string"),
        (X_OK, np.array(["a"] * 20), "could not convert string|numeric"),
        (np.empty((0, 3)), np.empty(0), "0 sample"),
        (np.empty((20, 0)), Y_OK, "0 feature"),
        (X_OK, Y_OK[:-1], "inconsistent numbers of samples"),
        (X_OK[:, :, None], Y_OK, "3"),
        (X_OK[:, 0], Y_OK, "Expected 2D array"),
    ],
    ids=[
        "nan-X",
        "inf-X",
        "nan-y",
        "inf-y",
        "str-X",
        "str-y",
        "no-rows",
        "no-features",
        "length-mismatch",
        "3d-X",
        "1d-X",
    ],
)
def test_bad_training_data(X, y, match):
    with pytest.raises(ValueError, match=match):
        AdamRegressor().fit(X, y)
    # the first partial_fit call checks like fit
    with pytest.raises(ValueError, match=match):
        AdamRegressor(batch_size=8).partial_fit(X, y)


@pytest.mark.parametrize("engine", ["compiled", "numpy"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize(
    "case", ["dense", "sparse", "two targets", "zero weight on the bad row"]
)
def test_later_partial_fit_calls_reject_non_finite_X(monkeypatch, engine, bad, case):
    # after the first call the epoch itself detects non-finite X (one pass
    # fewer over each chunk); the message and the atomicity are the same
    if engine == "numpy":
        monkeypatch.setenv("SK_ADAM_NO_NUMBA", "1")
    Y = np.c_[Y_OK, -Y_OK] if case == "two targets" else Y_OK
    est = AdamRegressor(batch_size=8, random_state=0).partial_fit(X_OK, Y)
    before = (est.coef_.copy(), est.t_, est.moment1_.copy())
    X = X_OK.copy()
    X[7, 1] = bad
    sw = None
    if case == "zero weight on the bad row":
        sw = np.ones(20)
        sw[7] = 0.0
    if case == "sparse":
        X = sp.csr_array(X)
    match = "NaN" if np.isnan(bad) else "infinity"
    with pytest.raises(ValueError, match=f"Input X contains {match}"):
        est.partial_fit(X, Y, sample_weight=sw)
    np.testing.assert_array_equal(est.coef_, before[0])
    assert est.t_ == before[1]
    np.testing.assert_array_equal(est.moment1_, before[2])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e300])
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"standardize": False},
        {"standardize": False, "fit_intercept": False},
        {"whiten": False},
        {"precompute": False},
    ],
)
@pytest.mark.parametrize("kind", ["dense", "float32", "sparse", "weighted"])
def test_full_batch_fit_finds_non_finite_X_through_its_statistics(bad, params, kind):
    # fit checks X's finiteness through the statistics it computes anyway
    # (finite statistics prove finite data): scikit-learn's message for NaN
    # and inf, and a fit (rescaled squares) for huge finite values
    X = X_OK.copy()
    X[7, 1] = bad
    sw = np.linspace(0.5, 2, 20) if kind == "weighted" else None
    if kind == "float32" and np.isfinite(bad):
        X[7, 1] = 1e30  # the largest float32 region
    X = X.astype(np.float32) if kind == "float32" else X
    X = sp.csr_array(X) if kind == "sparse" else X
    est = AdamRegressor(**params)
    if kind != "float32" and bad == 1e300 and params.get("standardize") is False:
        # on the data as given, squares that overflow are the documented error
        with pytest.raises(ValueError, match="overflow"):
            est.fit(X, Y_OK, sample_weight=sw)
        return
    if np.isfinite(bad):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            assert np.all(np.isfinite(est.fit(X, Y_OK, sample_weight=sw).coef_))
        return
    match = "NaN" if np.isnan(bad) else "infinity"
    with pytest.raises(ValueError, match=f"Input X contains {match}"):
        est.fit(X, Y_OK, sample_weight=sw)
    assert not hasattr(est, "coef_")


@pytest.mark.parametrize(
    "sample_weight, match",
    [
        (np.zeros(20), "non-zero|sums to zero"),
        (-np.ones(20), "Negative values in data passed to `sample_weight`"),
        (np.ones(19), r"sample_weight.shape == \(19,\), expected \(20,\)"),
        (np.r_[np.ones(19), np.nan], "NaN"),
    ],
)
def test_bad_sample_weight(sample_weight, match):
    with pytest.raises(ValueError, match=match):
        AdamRegressor().fit(X_OK, Y_OK, sample_weight=sample_weight)


def test_wrong_number_of_features_at_predict():
    est = AdamRegressor().fit(X_OK, Y_OK)
    with pytest.raises(
        ValueError, match="has 2 features, but AdamRegressor is expecting 3"
    ):
        est.predict(X_OK[:, :2])


def test_predict_before_fit():
    with pytest.raises(NotFittedError):
        AdamRegressor().predict(X_OK)


@pytest.mark.parametrize(
    "params",
    [
        {"alpha": -0.1},
        {"alpha": 0},
        {"beta1": 1.0},
        {"beta1": -0.1},
        {"beta2": 1.0},
        {"epsilon": 0.0},
        {"tol": -1.0},
        {"max_iter": 0},
        {"max_iter": 2.5},
        {"n_iter_no_change": 0},
        {"stall_tol": -1e-3},
        {"fit_intercept": "yes"},
        {"standardize": None},
        {"alpha": "0.1"},
    ],
)
def test_invalid_parameters(params):
    name = next(iter(params))
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
        AdamRegressor(**params).fit(X_OK, Y_OK)


def _inputs():
    yield "C-float64", X_OK.copy(), Y_OK.copy()
    yield "F-float64", np.asfortranarray(X_OK), Y_OK.copy()
    yield "float32", X_OK.astype(np.float32), Y_OK.astype(np.float32)
    yield "int", (10 * X_OK).astype(np.int64), Y_OK.copy()
    yield "2d-y", X_OK.copy(), np.c_[Y_OK, -Y_OK]
    yield "csr", sp.csr_array(X_OK), Y_OK.copy()
    yield "csc", sp.csc_matrix(X_OK), Y_OK.copy()


def _snapshot(a):
    if sp.issparse(a):
        return (a.format, a.data.copy(), a.indices.copy(), a.indptr.copy())
    return (a.dtype, a.flags.f_contiguous, a.copy())


def _same(a, b):
    return all(
        np.array_equal(u, v) if isinstance(u, np.ndarray) else u == v
        for u, v in zip(a, b, strict=True)
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("name, X, y", list(_inputs()), ids=[c[0] for c in _inputs()])
def test_inputs_are_never_modified(name, X, y, standardize):
    sw = np.random.RandomState(1).uniform(0, 2, X.shape[0])
    before = [_snapshot(X), _snapshot(y), _snapshot(sw)]
    est = AdamRegressor(standardize=standardize, max_iter=500, n_iter_no_change=20)
    est.fit(X, y, sample_weight=sw)
    est.predict(X)
    assert _same(before[0], _snapshot(X))
    assert _same(before[1], _snapshot(y))
    assert _same(before[2], _snapshot(sw))


@pytest.mark.parametrize("precompute", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", ["C", "F"])
def test_read_only_memmap(tmp_path, precompute, dtype, order):
    path = tmp_path / "X.npy"
    np.save(path, np.asarray(X_OK, dtype=dtype, order=order))
    X = np.load(path, mmap_mode="r")
    assert not X.flags.writeable
    est = AdamRegressor(precompute=precompute).fit(X, Y_OK)
    assert est.precomputed_ is precompute
    reference = AdamRegressor(precompute=precompute).fit(X_OK.astype(dtype), Y_OK)
    # another memory order changes BLAS's rounding; float32 resolves less
    rtol = 1e-6 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(est.coef_, reference.coef_, rtol=rtol)


def test_precompute_refuses_a_gram_matrix_that_cannot_fit():
    X = sp.csr_array((10, 40_000))
    with pytest.raises(ValueError, match=r"precompute=True.*40000 x 40000"):
        AdamRegressor(precompute=True).fit(X, np.arange(10.0))


@pytest.mark.parametrize("precompute", [True, False])
def test_float32_is_not_upcast_into_a_copy(monkeypatch, precompute):
    # validate_data must hand the caller's float32 array through as is
    X = X_OK.astype(np.float32)
    seen = []
    from sk_adam import _data

    original = _data.least_squares_problem

    def spy(X, *args, **kwargs):
        seen.append(X)
        return original(X, *args, **kwargs)

    monkeypatch.setattr(_data, "least_squares_problem", spy)
    est = AdamRegressor(max_iter=5, n_iter_no_change=None, precompute=precompute)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, Y_OK)
    assert seen[0] is X
    assert est.precomputed_ is precompute
