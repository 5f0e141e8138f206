"""Odd and hostile input on every solver path: the same answer, or the same
clear error, everywhere.

Paths: full batch on the statistics (``gram``) and on products with X
(``products``), mini-batches with the numpy and the compiled epoch, a
``partial_fit`` stream (its first call, and a later call after a clean
one), and dask arrays in full batch and in mini-batches. For every hostile
input each path must raise the exception the in-memory full-batch fit
raises, with the same message, leave the caller's arrays as they were, and
leave an already fitted estimator as it was. Well-posed input in every
container must give the least-squares R^2 to 1e-6 (full batch) or 1e-3
(mini-batches, whose noise the stall rule settles around).
"""

import pickle
import threading
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LinearRegression

from sk_adam import AdamRegressor

da = pytest.importorskip("dask.array")

N, D = 60, 4
RNG = np.random.RandomState(0)
X0 = RNG.randn(N, D)
W0 = np.array([1.0, -2.0, 0.5, 3.0])
Y0 = X0 @ W0 + 0.1 * RNG.randn(N)

PATHS = [
    "gram",
    "products",
    "minibatch-numpy",
    "minibatch-compiled",
    "partial_fit-first",
    "partial_fit-later",
    "dask",
    "dask-minibatch",
]


def _params(path):
    if path == "gram":
        return {"precompute": True}
    if path == "products":
        return {"precompute": False}
    if "minibatch" in path:
        return {"batch_size": 16, "random_state": 0}
    if path.startswith("partial_fit"):
        return {"batch_size": 16, "random_state": 0}
    return {}


def _dask(a):
    if a is None:
        return None
    a = np.asarray(a)
    return da.from_array(a, chunks=20 if a.ndim else ())


def _run(path, monkeypatch, X, y, sample_weight=None, **params):
    """Fit ``AdamRegressor`` on ``path``; returns the estimator."""
    if path == "minibatch-numpy":
        monkeypatch.setenv("SK_ADAM_NO_NUMBA", "1")
    else:
        monkeypatch.delenv("SK_ADAM_NO_NUMBA", raising=False)
    est = AdamRegressor(**{**_params(path), **params})
    if path == "partial_fit-later":
        est.partial_fit(X0, Y0)
    if path.startswith("partial_fit"):
        return est.partial_fit(X, y, sample_weight=sample_weight)
    if path.startswith("dask"):
        X, y, sample_weight = _dask(X), _dask(y), _dask(sample_weight)
    return est.fit(X, y, sample_weight=sample_weight)


def _with(i, j, value, a):
    a = np.array(a, dtype=np.result_type(a, type(value)))
    a[(i, j) if a.ndim == 2 else i] = value
    return a


ONES = np.ones(N)
STRINGS = pd.DataFrame(X0, columns=list("abcd")).assign(
    e=pd.Categorical(RNG.choice(["u", "v"], N))
)
HOSTILE = {
    "categorical strings in X": (STRINGS, Y0, None),
    "NaN in X": (_with(3, 1, np.nan, X0), Y0, None),
    "inf in X": (_with(7, 2, np.inf, X0), Y0, None),
    "NaN in y": (X0, _with(5, 0, np.nan, Y0), None),
    "inf in y": (X0, _with(5, 0, -np.inf, Y0), None),
    "complex y": (X0, Y0 + 1j, None),
    "NaN weight": (X0, Y0, _with(2, 0, np.nan, ONES)),
    "inf weight": (X0, Y0, _with(2, 0, np.inf, ONES)),
    "negative weight": (X0, Y0, _with(4, 0, -1.0, ONES)),
    "zero weights": (X0, Y0, np.zeros(N)),
    "short weights": (X0, Y0, np.ones(N - 5)),
    "short y": (X0, Y0[:-3], None),
}
# kinds of input a path cannot be given at all: none but these
NOT_A_CASE = {("short y", "partial_fit-later")}


def _error(path, monkeypatch, X, y, sw):
    with pytest.raises(Exception) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (scikit-learn's feature-name warning)
        _run(path, monkeypatch, X, y, sw)
    return type(info.value), str(info.value).split("\n")[0]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_input_gives_the_same_error_on_every_path(case, path, monkeypatch):
    if (case, path) in NOT_A_CASE:
        path = "partial_fit-first"  # a stream's chunk has its own length
    X, y, sw = HOSTILE[case]
    copies = [None if a is None else np.array(a) for a in (X, y, sw)]
    expected = _error("gram", monkeypatch, X, y, sw)
    assert _error(path, monkeypatch, X, y, sw) == expected
    for a, kept in zip((X, y, sw), copies, strict=True):
        if a is not None:
            np.testing.assert_array_equal(a, kept)  # the caller's data


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_failed_call_leaves_a_fitted_estimator_as_it_was(case, method):
    X, y, sw = HOSTILE[case]
    est = AdamRegressor(batch_size=16, random_state=0).fit(X0, Y0)
    before = pickle.dumps(est)
    with pytest.raises((ValueError, TypeError)), warnings.catch_warnings():
        # (a frame after arrays: scikit-learn's feature-name warning)
        warnings.simplefilter("ignore")
        getattr(est, method)(X, y, sample_weight=sw)
    assert pickle.dumps(est) == before


def _containers():
    df = pd.DataFrame(X0, columns=list("abcd"))
    df_nullable = df.astype("Float64")
    ints = pd.DataFrame(
        {"i": pd.array(RNG.randint(0, 9, N), dtype="Int64"), "b": RNG.rand(N) > 0.5}
    )
    ints["x"] = X0[:, 0]
    yi = ints["i"].to_numpy(float) - 2 * ints["b"].to_numpy(float) + ints["x"]
    cats = df.assign(c=pd.Categorical(RNG.choice([1.0, 2.0, 5.0], N)))
    yc = X0 @ W0 + 0.5 * cats["c"].to_numpy(float) + 0.1 * RNG.randn(N)
    return {
        "C float64": (np.ascontiguousarray(X0), Y0),
        "F float64": (np.asfortranarray(X0), Y0),
        "float32": (X0.astype(np.float32), Y0),
        "list of lists": (X0.tolist(), Y0.tolist()),
        "CSR": (sp.csr_matrix(X0), Y0),
        "CSC": (sp.csc_matrix(X0), Y0),
        "COO": (sp.coo_matrix(X0), Y0),
        "csr_array": (sp.csr_array(X0), Y0),
        "sparse float32 offset": (
            sp.csr_matrix((X0 + np.array([0, 1e3, 0, 0])).astype("f4")),
            Y0,
        ),
        "DataFrame": (df, pd.Series(Y0)),
        "DataFrame Float64": (df_nullable, Y0),
        "DataFrame Int64 and bool": (ints, yi + 0.1 * RNG.randn(N)),
        "DataFrame categorical numbers": (cats, yc),
        "2-D y (n, 1)": (X0, Y0[:, None]),
        "two targets": (X0, np.c_[Y0, -Y0 + X0[:, 0]]),
        "X * 1e-200": (X0 * 1e-200, Y0),
        "X * 1e-158": (X0 * 1e-158, Y0),
        "X * 1e200": (X0 * 1e200, Y0),
        "y * 1e-200": (X0, Y0 * 1e-200),
        "columns offset by 1e6": (X0 + 1e6, Y0),
        "a constant column": (np.c_[X0, np.full(N, 2.5)], Y0),
        "a duplicated column": (np.c_[X0, X0[:, 1]], Y0),
        "more columns than rows": (np.c_[X0, RNG.randn(N, 70)], Y0),
    }


CONTAINERS = _containers()


def _snapshot(a):
    """The values of ``a`` (caches that pandas or scipy fill do not count)."""
    if sp.issparse(a):
        a = sp.coo_array(a)
        return ("sparse", a.shape, a.row.tolist(), a.col.tolist(), a.data.tolist())
    if isinstance(a, pd.DataFrame | pd.Series):
        return ("pandas", a.copy(deep=True))
    return ("array", np.array(a, dtype=object).tolist())


def _unchanged(a, snapshot) -> bool:
    if snapshot[0] == "pandas":
        return a.equals(snapshot[1]) and list(
            a.dtypes if a.ndim == 2 else [a.dtype]
        ) == list(snapshot[1].dtypes if a.ndim == 2 else [snapshot[1].dtype])
    return _snapshot(a) == snapshot


def _r2(X, y, coef, intercept):
    X = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(X.shape[0], -1)
    pred = X @ np.reshape(coef, (y.shape[1], -1)).T + intercept
    unit = np.max(np.abs(y))  # so that tiny targets' squares do not underflow
    y, pred = y / unit, pred / unit
    ss = ((y - pred) ** 2).sum(0)
    return 1 - ss / ((y - y.mean(0)) ** 2).sum(0)


@pytest.mark.parametrize("path", ["gram", "products", "dask"])
@pytest.mark.parametrize("kind", sorted(CONTAINERS))
def test_well_posed_input_reaches_least_squares(kind, path, monkeypatch):
    X, y = CONTAINERS[kind]
    if path == "dask":  # dask holds arrays, not sparse matrices or frames
        X = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    copies = _snapshot(X), _snapshot(y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning, no warning at all
        est = _run(path, monkeypatch, X, y)
    assert _unchanged(X, copies[0]) and _unchanged(y, copies[1])
    dense = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    ols = LinearRegression().fit(dense, np.asarray(y, dtype=np.float64))
    best = _r2(dense, y, ols.coef_, ols.intercept_)
    mine = _r2(dense, y, est.coef_, est.intercept_)
    assert np.all(best - mine < 1e-6), (best, mine)
    assert_allclose(est.predict(X if path != "dask" else dense), ols.predict(dense),
                    rtol=1e-3, atol=1e-3 * np.std(ols.predict(dense)))  # fmt: skip


@pytest.mark.parametrize(
    "path", ["minibatch-numpy", "minibatch-compiled", "dask-minibatch"]
)
@pytest.mark.parametrize(
    "kind", ["C float64", "float32", "CSR", "X * 1e-200", "y * 1e-200", "two targets"]
)
def test_mini_batches_reach_least_squares(kind, path, monkeypatch):
    X, y = CONTAINERS[kind]
    if path == "dask-minibatch":
        X = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = _run(path, monkeypatch, X, y)
    dense = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    ols = LinearRegression().fit(dense, y)
    best = _r2(dense, y, ols.coef_, ols.intercept_)
    assert np.all(best - _r2(dense, y, est.coef_, est.intercept_) < 1e-3)


@pytest.mark.parametrize("path", ["gram", "products", "minibatch-numpy", "dask"])
def test_weights_whose_sum_overflows_are_relative(path, monkeypatch):
    sw = np.full(N, 1e308)
    sw[::3] = 5e307
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        big = _run(path, monkeypatch, X0, Y0, sw)
        small = _run(path, monkeypatch, X0, Y0, sw / 1e308)
    assert_allclose(big.coef_, small.coef_, rtol=1e-9)


@pytest.mark.parametrize("path", ["gram", "products", "dask", "minibatch-numpy"])
def test_a_scalar_weight_is_every_row_weighted_alike(path, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scalar = _run(path, monkeypatch, X0, Y0, 2.5)
        plain = _run(path, monkeypatch, X0, Y0)
    assert_allclose(scalar.coef_, plain.coef_, rtol=1e-10)


@pytest.mark.parametrize(
    "change",
    [{"fit_intercept": False}, {"standardize": False}, {"whiten": True}],
)
def test_parameters_that_fix_the_coordinates_cannot_change_in_a_stream(change):
    est = AdamRegressor(whiten=False).fit(X0 + 3, Y0 + 5)
    before = pickle.dumps(est)
    est.set_params(**change)
    name = next(iter(change))
    with pytest.raises(ValueError, match=name):
        est.partial_fit(X0 + 3, Y0 + 5)
    est.set_params(**{name: AdamRegressor(whiten=False).get_params()[name]})
    assert pickle.dumps(est) == before
    assert est.partial_fit(X0 + 3, Y0 + 5).score(X0 + 3, Y0 + 5) > 0.99


def test_whitened_coordinates_are_not_continued_as_features():
    X = np.c_[X0, X0[:, 0] + 1e-4 * np.random.RandomState(0).randn(N)]
    est = AdamRegressor().fit(X, Y0)
    assert est.whitened_
    with pytest.raises(ValueError, match="whiten=False"):
        est.set_params(whiten=False).partial_fit(X, Y0)


@pytest.mark.parametrize("max_iter", [10**10, 2**63])
def test_max_iter_allocates_nothing_in_proportion(max_iter):
    est = AdamRegressor(max_iter=max_iter).fit(X0, Y0)
    assert est.stop_reason_ == "optimum" and 1 <= est.n_iter_ < 600
    est = AdamRegressor(max_iter=max_iter, whiten=False).fit(X0, Y0)
    assert est.stop_reason_ == "stall" and 1 <= est.n_iter_ < 5000


@pytest.mark.parametrize("precompute", [True, False])
def test_tol_zero_is_off_even_for_exact_fits(precompute):
    est = AdamRegressor(tol=0.0, precompute=precompute).fit(X0, X0 @ W0)
    # whitened statistics know the minimum: the optimum rule, not tol, ends it
    assert est.stop_reason_ == ("optimum" if precompute else "stall")
    assert np.min(est.loss_curve_) >= 0.0


def test_concurrent_partial_fit_calls_are_serialized():
    est = AdamRegressor(batch_size=10, random_state=0).partial_fit(X0, Y0)

    def work():
        for _ in range(25):
            est.partial_fit(X0, Y0)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert est.n_iter_ == 1 + 100
    assert est.t_ == 101 * 6  # ceil(60 / 10) steps per call


@pytest.mark.parametrize("standardize", [True, False])
def test_history_follows_the_latest_target_shape(standardize):
    est = AdamRegressor(record_history=True, standardize=standardize)
    est.fit(X0, Y0[:, None]).partial_fit(X0, Y0)
    assert est.history_.n_iter == est.n_iter_
    assert est.history_.coef.shape == (est.n_iter_, D)
    assert_allclose(est.history_.coef[-1], est.coef_)


def test_early_stopping_needs_two_held_out_rows():
    with pytest.raises(ValueError, match="at least two"):
        AdamRegressor(early_stopping=True).fit(X0[:10], Y0[:10])


def test_sparse_target_gets_the_dense_data_error():
    with pytest.raises(TypeError, match="toarray"):
        AdamRegressor().fit(X0, sp.csr_matrix(Y0[:, None]))


@pytest.mark.parametrize(
    "params",
    [{"alpha": 1e-300}, {"batch_size": 8, "alpha": 0.1, "random_state": 0}],
)
def test_a_stall_far_from_the_optimum_warns(params):
    rng = np.random.RandomState(0)  # (batches of 8 at 0.1 end 7e-4 short here)
    X = rng.randn(2000, 4)
    y = X @ W0 + 0.1 * rng.randn(2000)
    with pytest.warns(ConvergenceWarning, match="short of the least-squares"):
        est = AdamRegressor(**params, stall_decays=0).fit(X, y)
    gap = LinearRegression().fit(X, y).score(X, y) - est.score(X, y)
    assert gap > 1e-4 and est.stop_reason_ == "stall"


def test_an_ill_conditioned_weighted_two_target_stall_warns():
    # the third case: weighted, two targets, no intercept, products
    rng = np.random.RandomState(1)
    x = rng.uniform(0.5, 1.5, (400, 1))
    X = x ** np.arange(5)  # 1, x, ..., x**4: condition number ~1e5
    Y = np.c_[np.sin(3 * x[:, 0]), np.cos(2 * x[:, 0])] + 0.01 * rng.randn(400, 2)
    sw = rng.uniform(0.2, 3, 400)
    est = AdamRegressor(
        fit_intercept=False, precompute=False, n_iter_no_change=50, stall_decays=0
    )
    with pytest.warns(ConvergenceWarning, match="short of the least-squares"):
        est.fit(X, Y, sample_weight=sw)
    ols = LinearRegression(fit_intercept=False).fit(X, Y, sample_weight=sw)
    gap = ols.score(X, Y, sample_weight=sw) - est.score(X, Y, sample_weight=sw)
    assert est.stop_reason_ == "stall" and gap > 1e-5


@pytest.mark.parametrize("params", [{}, {"batch_size": 256, "random_state": 0}])
def test_a_converged_stall_does_not_warn(params):
    # full batch ends at round-off; mini-batches within 1e-4 of R^2
    rng = np.random.RandomState(0)
    X = rng.randn(2000, 4)
    y = X @ W0 + 0.1 * rng.randn(2000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = AdamRegressor(**params).fit(X, y)
    assert est.stop_reason_ == ("stall" if params else "optimum")
    assert LinearRegression().fit(X, y).score(X, y) - est.score(X, y) < 1e-4


def test_displays_check_the_estimator_and_target():
    plotting = pytest.importorskip("sk_adam.plotting")
    with pytest.raises(NotFittedError):
        plotting.AdamHistoryDisplay.from_estimator(AdamRegressor())
    est = AdamRegressor(record_history=True).fit(X0, Y0)
    for display in (plotting.AdamHistoryDisplay, plotting.CoefficientPathDisplay):
        with pytest.raises(ValueError, match="target=3"):
            display.from_estimator(est, target=3)


def test_a_damaged_version_field_is_a_clear_error():
    state = AdamRegressor().fit(X0, Y0).__getstate__()
    state["_sk_adam_version"] = 5
    with pytest.raises(ValueError, match="damaged"):
        AdamRegressor.__new__(AdamRegressor).__setstate__(state)


def test_dask_predict_refuses_nan_as_predict_does():
    est = AdamRegressor().fit(X0, Y0)
    bad = _with(3, 1, np.nan, X0)
    with pytest.raises(ValueError) as in_memory:
        est.predict(bad)
    with pytest.raises(ValueError) as on_dask:
        est.predict(_dask(bad)).compute()
    assert str(on_dask.value) == str(in_memory.value)


def test_dask_targets_near_the_largest_float_give_no_runtime_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = AdamRegressor().fit(_dask(X0), _dask(Y0 * 1e300))
    ref = AdamRegressor().fit(X0, Y0 * 1e300)
    assert_allclose(est.coef_, ref.coef_, rtol=1e-8)
