"""Dask: cluster-side statistics, streamed mini-batches, Incremental, joblib.

A 2-worker LocalCluster (processes, loopback only) is started once for the
module and shut down at the end.
"""

import warnings

import dask.array as da
import joblib
import numpy as np
import pytest
from dask_ml.wrappers import Incremental
from distributed import Client, LocalCluster
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, KFold

from sk_adam import AdamRegressor


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            host="127.0.0.1",
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _data(seed=0, n=2000, d=6, k=None):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) * rng.uniform(0.5, 3, d) + rng.uniform(-100, 100, d)
    W = rng.randn(d) if k is None else rng.randn(d, k)
    noise = rng.randn(n) if k is None else rng.randn(n, k)
    return X, X @ W + 3.0 + 0.5 * noise


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dask_fit_equals_in_memory_fit(client, standardize, fit_intercept, dtype):
    X, y = _data()
    if not (standardize and fit_intercept):
        # raw Adam, or a model without intercept, is well conditioned only
        # on centred data; elsewhere both fits stop at 1e-6, not 1e-8
        X = X - X.mean(axis=0)
        y = y - y.mean()
    X = X.astype(dtype)
    sw = np.random.RandomState(1).uniform(0, 2, len(y))
    params = dict(standardize=standardize, fit_intercept=fit_intercept, precompute=True)
    local = AdamRegressor(**params).fit(X, y, sample_weight=sw)
    remote = AdamRegressor(**params).fit(
        da.from_array(X, chunks=(300, -1)),
        da.from_array(y, chunks=300),
        sample_weight=da.from_array(sw, chunks=300),
    )
    assert remote.precomputed_
    assert remote.coef_.dtype == dtype
    rtol = 1e-8 if dtype == np.float64 else 1e-5
    assert_allclose(remote.coef_, local.coef_, rtol=rtol)
    assert_allclose(remote.intercept_, local.intercept_, rtol=rtol, atol=1e-9)
    assert remote.n_features_in_ == X.shape[1]


@pytest.mark.parametrize("standardize", [True, False])
def test_dask_whitened_fit_equals_in_memory_fit(client, standardize):
    # polynomial features: ill-conditioned, whitened exactly from a QR
    rng = np.random.RandomState(0)
    x = rng.uniform(0, 1, 3000)
    X = np.c_[x, x**2, x**3, x**4, x**5]
    y = np.sin(6 * x) + 0.1 * rng.randn(3000)
    # (whiten=True: 'auto' whitens standardized coordinates only)
    local = AdamRegressor(standardize=standardize, whiten=True).fit(X, y)
    remote = AdamRegressor(standardize=standardize, whiten=True).fit(
        da.from_array(X, chunks=(500, -1)), da.from_array(y, chunks=500)
    )
    assert local.whitened_ and remote.whitened_ and remote.precomputed_
    # the two reductions merge different blocks (in memory a few hundred
    # rows, here chunks of 500): round-off, amplified by the conditioning
    assert_allclose(remote.coef_, local.coef_, rtol=1e-7)
    assert_allclose(remote.intercept_, local.intercept_, rtol=1e-7)


def test_dask_multi_output_and_lazy_predict(client):
    X, Y = _data(k=3)
    Xd = da.from_array(X, chunks=(500, 3))  # column chunks are merged
    est = AdamRegressor().fit(Xd, da.from_array(Y, chunks=500))
    local = AdamRegressor().fit(X, Y)
    assert_allclose(est.coef_, local.coef_, rtol=1e-8)
    pred = est.predict(Xd)
    assert isinstance(pred, da.Array)
    assert_allclose(pred.compute(), est.predict(X), rtol=1e-12)
    single = AdamRegressor().fit(Xd, da.from_array(Y[:, 0], chunks=500))
    assert single.predict(Xd).compute().shape == (len(X),)


def test_dask_minibatch_streams_blocks_like_in_memory(client):
    X, y = _data(n=1200)
    params = dict(batch_size=100, shuffle=False, max_iter=5, alpha=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        local = AdamRegressor(**params).fit(X, y)
        remote = AdamRegressor(**params).fit(
            da.from_array(X, chunks=(300, -1)), da.from_array(y, chunks=300)
        )
    assert_allclose(remote.loss_curve_, local.loss_curve_, rtol=1e-10)
    assert_allclose(remote.coef_, local.coef_, rtol=1e-10)
    assert remote.t_ == local.t_ == 5 * 12


def test_dask_minibatch_shuffled_is_reproducible_to_round_off(client):
    X, y = _data(n=1200)
    Xd, yd = da.from_array(X, chunks=(300, -1)), da.from_array(y, chunks=300)
    params = dict(batch_size=64, max_iter=4, random_state=0, alpha=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = AdamRegressor(**params).fit(Xd, yd)
        b = AdamRegressor(**params).fit(Xd, yd)
    # the same batches in the same order; the statistics reduced on the
    # cluster may differ in the last bit (where the workers' arrays land in
    # memory changes how SIMD kernels sum), so not bitwise
    assert_allclose(a.coef_, b.coef_, rtol=1e-12)


def test_dask_errors(client):
    X, y = _data(n=100)
    Xd, yd = da.from_array(X, chunks=(50, -1)), da.from_array(y, chunks=50)
    with pytest.raises(ValueError, match="early_stopping"):
        AdamRegressor(early_stopping=True).fit(Xd, yd)
    bad = X.copy()
    bad[3, 2] = np.nan
    # the very message of in-memory validation (it used to be dask's own)
    with pytest.raises(ValueError) as in_memory:
        AdamRegressor().fit(bad, y)
    with pytest.raises(ValueError) as on_dask:
        AdamRegressor().fit(da.from_array(bad, chunks=(50, -1)), yd)
    assert str(on_dask.value) == str(in_memory.value)
    assert str(on_dask.value).startswith("Input X contains NaN.")
    unknown = Xd[Xd[:, 0] > -np.inf]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        AdamRegressor().fit(unknown, yd)
    est = AdamRegressor().fit(Xd, yd)
    with pytest.raises(ValueError, match="expecting 6 features"):
        est.predict(Xd[:, :3])


def test_incremental_wrapper(client):
    X, y = _data(n=4000)
    Xd, yd = da.from_array(X, chunks=(500, -1)), da.from_array(y, chunks=500)
    inc = Incremental(AdamRegressor(batch_size=50, alpha=0.01, random_state=0))
    for _ in range(3):
        inc.partial_fit(Xd, yd)
    est = inc.estimator_
    assert est.t_ == 3 * 4000 // 50
    assert est.n_iter_ == 3 * 8  # one partial_fit per block
    ols = LinearRegression().fit(X, y).score(X, y)
    assert ols - est.score(X, y) < 1e-3


def test_grid_search_on_the_joblib_dask_backend(client):
    X, y = _data(n=300)
    grid = {"alpha": [0.03, 0.3], "beta1": [0.8, 0.9]}
    cv = KFold(3, shuffle=True, random_state=0)
    local = GridSearchCV(AdamRegressor(), grid, cv=cv).fit(X, y)
    with joblib.parallel_backend("dask"):
        remote = GridSearchCV(AdamRegressor(), grid, cv=cv, n_jobs=-1).fit(X, y)
    assert remote.best_params_ == local.best_params_
    assert_allclose(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )


def test_each_block_is_computed_once_per_pass():
    # X and y cut from the same generated block: the statistics pass and
    # each mini-batch epoch make every block once, not once for X and once
    # for y (to_delayed must not optimise X's and y's graphs apart)
    import dask
    from dask import delayed

    made = []

    def block(i):
        made.append(i)
        rng = np.random.default_rng([0, i])
        X = rng.standard_normal((50, 3))
        return np.c_[X, X @ [1.0, -2.0, 0.5] + 0.1 * rng.standard_normal(50)]

    parts = [da.from_delayed(delayed(block)(i), (50, 4), np.float64) for i in range(6)]
    Xy = da.concatenate(parts)
    X, y = Xy[:, :3], Xy[:, 3]
    with dask.config.set(scheduler="sync"):
        AdamRegressor().fit(X, y)
        assert sorted(made) == list(range(6))
        made.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            AdamRegressor(batch_size=20, max_iter=2, n_iter_no_change=None).fit(X, y)
        assert sorted(made) == sorted(list(range(6)) * 3)  # statistics + 2 epochs


def _frames(X, y, partitions=4, names=None, sw=None):
    import dask.dataframe as dd
    import pandas as pd

    names = names or [f"f{j}" for j in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=names)
    frame["target"] = y
    if sw is not None:
        frame["weight"] = sw
    ddf = dd.from_pandas(frame, npartitions=partitions)
    return ddf[names], ddf["target"], (ddf["weight"] if sw is not None else None)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_dask_dataframe_fit_equals_dask_array_fit(client, weighted):
    """A dask DataFrame and Series partitioned alike: the same statistics
    as the dask array of the same rows (coefficients to 1e-12), the column
    names as feature_names_in_, a lazy Series from predict."""
    import dask.dataframe as dd

    X, y = _data(n=3000)
    sw = np.random.RandomState(2).uniform(0.1, 2, len(y)) if weighted else None
    Xf, yf, wf = _frames(X, y, sw=sw)
    from_frames = AdamRegressor().fit(Xf, yf, sample_weight=wf)
    chunks = (750, X.shape[1])
    from_arrays = AdamRegressor().fit(
        da.from_array(X, chunks=chunks),
        da.from_array(y, chunks=750),
        sample_weight=None if sw is None else da.from_array(sw, chunks=750),
    )
    assert_allclose(from_frames.coef_, from_arrays.coef_, rtol=1e-12)
    assert_allclose(from_frames.intercept_, from_arrays.intercept_, rtol=1e-12)
    assert from_frames.n_iter_ == from_arrays.n_iter_
    assert list(from_frames.feature_names_in_) == list(Xf.columns)
    pred = from_frames.predict(Xf)
    assert isinstance(pred, dd.Series)  # lazy, partitioned as X
    assert pred.npartitions == Xf.npartitions
    assert_allclose(pred.compute().to_numpy(), from_arrays.predict(X), rtol=1e-12)


def test_dask_dataframe_of_unknown_lengths_and_multi_output(client):
    """Partitions whose lengths nobody knows (a filtered frame), and y a
    DataFrame of two targets: the same fit as in memory on the kept rows."""
    X, Y = _data(n=2000, k=2)
    Xf, _, _ = _frames(X, Y[:, 0])
    import dask.dataframe as dd
    import pandas as pd

    yf = dd.from_pandas(pd.DataFrame(Y, columns=["a", "b"]), npartitions=4)
    keep = Xf["f0"] > Xf["f0"].mean()  # rows dropped on the cluster
    est = AdamRegressor().fit(Xf[keep], yf[keep])
    mask = X[:, 0] > X[:, 0].mean()
    local = AdamRegressor().fit(X[mask], Y[mask])
    assert_allclose(est.coef_, local.coef_, rtol=1e-9)
    pred = est.predict(Xf[keep]).compute()
    assert list(pred.columns) == [0, 1]
    assert_allclose(pred.to_numpy(), local.predict(X[mask]), rtol=1e-9)


def test_dask_dataframe_errors(client):
    import dask.dataframe as dd
    import pandas as pd

    X, y = _data(n=400)
    Xf, yf, _ = _frames(X, y)
    with pytest.raises(ValueError, match="partition them alike"):
        AdamRegressor().fit(Xf, yf.repartition(npartitions=2))
    text = Xf.assign(city=dd.from_pandas(pd.Series(["a"] * 400), npartitions=4))
    with pytest.raises(ValueError, match=r"non-numeric dtype: \['city'\]"):
        AdamRegressor().fit(text, yf)
    with pytest.raises(ValueError, match="dask Series or DataFrame"):
        AdamRegressor().fit(Xf, y)
    labels = text[["city"]].assign(target=yf)
    with pytest.raises(ValueError, match=r"y has columns of non-numeric dtype"):
        AdamRegressor().fit(Xf, labels)
    holed = X.copy()
    holed[7, 2] = np.nan
    bad, ybad, _ = _frames(holed, y)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        AdamRegressor().fit(bad, ybad)
    est = AdamRegressor().fit(Xf, yf)
    with pytest.raises(ValueError, match="feature names should match"):
        est.predict(Xf.rename(columns={"f0": "g0"}))


@pytest.mark.parametrize("kind", ["array", "frame"])
def test_minibatch_epochs_run_on_the_workers_as_in_memory(client, kind, monkeypatch):
    # each block's steps run on its worker, the parameters, Adam's state and
    # the random state passed from block to block: the same steps, bit for
    # bit, as the same blocks loaded into this process one at a time in the
    # same order, over epochs chained in several graphs
    import dask
    from dask import delayed

    from sk_adam._adam import Adam, AdamState
    from sk_adam._coordinates import Layout
    from sk_adam._dask import WorkerEpochs, dask_data
    from sk_adam._epochs import BlockEpochs
    from sk_adam._order import shuffled_order

    X, y = _data(n=1500, d=5)
    sw = np.random.RandomState(3).uniform(0, 2, len(y))
    sw[300:600] = 0.0  # a block without positive weight takes no step
    if kind == "array":
        Xd, yd = da.from_array(X, chunks=(300, -1)), da.from_array(y, chunks=300)
        swd = da.from_array(sw, chunks=300)
    else:
        Xd, yd, swd = _frames(X, y, partitions=5, sw=sw)
    data = dask_data(Xd, yd, swd)
    monkeypatch.setattr(type(data), "segment_blocks", 2)  # three graphs an epoch
    coords = data.coordinates(Layout(True, True))
    # each block loaded into this process as it is on its worker
    blocks = [
        dask.compute(delayed(data._rows)(*block, data.scale))[0]
        for block in data._blocks()
    ]

    def run(make):
        params = np.zeros((coords.n_params, 1))
        adam = Adam(0.9, 0.999, 1e-8, AdamState.zeros(params.shape))
        rng = np.random.RandomState(0)
        epochs = make(adam, rng)
        losses = [epochs.run(params, 0.01) for _ in range(3)]
        return params, adam.state, losses, rng.randint(2**31)

    def loaded(adam, rng):
        def one_epoch():
            for i in shuffled_order(len(blocks), rng):
                yield blocks[i]

        return BlockEpochs(one_epoch, coords, adam, rng, size=64, shuffle=True)

    def on_workers(adam, rng):
        epochs = data.epochs(coords, adam, rng, size=64, shuffle=True)
        assert isinstance(epochs, WorkerEpochs)
        return epochs

    expected, remote = run(loaded), run(on_workers)
    # the same batches in the same order: the step counts and random states
    # are equal, the values to round-off (how vectorised sums add depends on
    # where a process's arrays lie in memory; a batch out of order moves the
    # parameters by ~1e-3 here)
    batches = sum(-(-int(np.sum(s > 0)) // 64) for _, _, s in blocks)
    assert remote[1].t == expected[1].t == 3 * batches
    assert remote[3] == expected[3]  # the client's random state moved on alike
    assert_allclose(remote[0], expected[0], rtol=1e-13, atol=1e-15)
    assert_allclose(remote[1].moment2, expected[1].moment2, rtol=1e-12)
    assert_allclose(np.ravel(remote[2]), np.ravel(expected[2]), rtol=1e-13)


def _counted_blocks(made, design, n_blocks=6, rows=200):
    """A dask X, y of generated blocks, each block's making recorded in
    ``made``; ``design(i, rng)`` gives block ``i``'s X."""
    from dask import delayed

    def block(i):
        made.append(i)
        rng = np.random.default_rng([1, i])
        X = design(i, rng)
        y = X @ np.linspace(1, -1, X.shape[1]) + 0.01 * rng.standard_normal(rows)
        return np.c_[X, y]

    d = design(0, np.random.default_rng(0)).shape[1]
    parts = [
        da.from_delayed(delayed(block)(i), (rows, d + 1), np.float64)
        for i in range(n_blocks)
    ]
    Xy = da.concatenate(parts)
    return Xy[:, :d], Xy[:, d]


def _polynomial(i, rng, rows=200):
    # degree 7: a standardized condition number of 6e4 in the whole design
    # and 7e4 in each block (the Gram matrix resolves it to 1e4)
    x = rng.uniform(0, 2, rows)
    return np.column_stack([x**p for p in range(1, 8)])


def _between_blocks(i, rng, rows=200):
    # two columns near-equal to the block's number: condition 3.4e4 in the
    # whole design, 2.3 within a block (each block's Gram matrix resolves it)
    x1 = i + 1e-4 * rng.standard_normal(rows)
    return np.c_[x1, x1 + 1e-4 * rng.standard_normal(rows), rng.standard_normal(rows)]


def _well_conditioned(i, rng, rows=200):
    return rng.standard_normal((rows, 4))


@pytest.mark.parametrize(
    "design, passes, factored",
    [(_polynomial, 1, 6), (_between_blocks, 2, 6), (_well_conditioned, 1, 0)],
    # (blocks made each pass; blocks whose factors were computed, in all)
    ids=["ill-conditioned in every block", "between blocks", "well-conditioned"],
)
def test_qr_factors_come_with_the_statistics_where_the_blocks_show_the_need(
    monkeypatch, design, passes, factored
):
    # a whitened fit that needs the QR factors gets them from the statistics
    # pass where every block's own Gram matrix fails (one pass), else from a
    # second pass; the fit equals the in-memory one (itself whitened from a
    # QR) either way, and a well-conditioned design computes no factors
    import dask

    from sk_adam import _blocks

    made, factors = [], []
    real = _blocks.factor_summary

    def counted(*args):
        factors.append(args[0].shape)
        return real(*args)

    monkeypatch.setattr(_blocks, "factor_summary", counted)
    X, y = _counted_blocks(made, design)
    with dask.config.set(scheduler="sync"):
        remote = AdamRegressor().fit(X, y)
        assert sorted(made) == sorted(list(range(6)) * passes)
        assert len(factors) == factored
        Xm, ym = dask.compute(X, y)
    local = AdamRegressor().fit(Xm, ym)
    assert remote.n_iter_ == local.n_iter_
    assert_allclose(remote.coef_, local.coef_, rtol=1e-8)
    assert_allclose(remote.intercept_, local.intercept_, rtol=1e-8)
    exact = LinearRegression().fit(Xm, ym)
    assert remote.score(Xm, ym) == pytest.approx(exact.score(Xm, ym), abs=1e-9)


def test_a_fit_that_is_not_whitened_computes_no_factors(monkeypatch):
    import dask

    from sk_adam import _blocks

    called = []
    monkeypatch.setattr(_blocks, "factor_summary", lambda *a: called.append(a))
    X, y = _counted_blocks([], _polynomial)
    with dask.config.set(scheduler="sync"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        AdamRegressor(whiten=False, max_iter=20).fit(X, y)
    assert called == []


def test_an_ill_conditioned_block_with_values_not_allowed_is_the_usual_error():
    # blocks that would bring their QR factors, one holding a negative
    # weight or a NaN: the in-memory message, and no warning on the way (no
    # block with a value not allowed is factored)
    import dask

    X, y = _counted_blocks([], _polynomial)
    Xm, ym = dask.compute(X, y)
    weights = np.ones(len(ym))
    weights[250] = -1.0
    with dask.config.set(scheduler="sync"), warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="Negative values in data passed"):
            AdamRegressor().fit(X, y, sample_weight=da.from_array(weights, 200))
        Xm[300, 2] = np.nan
        with pytest.raises(ValueError, match="Input X contains NaN"):
            AdamRegressor().fit(da.from_array(Xm, (200, -1)), y)
