"""
Streaming and Dask: fitting data that does not fit in one array
================================================================

Two ways to outgrow a single in-memory array with
:class:`sk_adam.AdamRegressor`:

1. **Streaming**: chunks arrive one at a time; ``partial_fit`` runs one epoch
   of mini-batch Adam on each (batches of 256 rows with the defaults, at a
   rate that decays with the stream's steps, the model being the average
   of the iterates) and carries the optimiser state (``t_``, ``moment1_``,
   ``moment2_``) from chunk to chunk. The state pickles, so a stream can be
   stopped and resumed in another process.
2. **Dask**: the data lives in a dask array on a cluster; ``fit`` reduces it
   to ``d x d`` sufficient statistics where the blocks are, and runs Adam on
   the client. The result equals the in-memory fit.

Run it with ``python examples/streaming_and_dask.py`` (the Dask part needs
``pip install sk-adam[dask]``).
"""

import pickle

import numpy as np
from sklearn.linear_model import LinearRegression

from sk_adam import AdamRegressor

N_FEATURES = 8
TRUE_COEF = np.linspace(-2, 2, N_FEATURES)


def chunk(rng, n_rows):
    """A chunk of a stream: features with offsets, a noisy linear target."""
    X = rng.standard_normal((n_rows, N_FEATURES)) * 3 + 50
    return X, X @ TRUE_COEF + 10 + 0.5 * rng.standard_normal(n_rows)


def streaming(n_chunks=40, rows=2_000):
    """``partial_fit`` over a stream, with a pickle round trip half way."""
    rng = np.random.default_rng(0)
    # every parameter at its default. The first chunk fixes the
    # standardization (its means and deviations); later chunks continue Adam
    # where it stopped
    model = AdamRegressor(random_state=0)
    for i in range(n_chunks):
        model.partial_fit(*chunk(rng, rows))
        if i == n_chunks // 2:
            # stop the stream, ship the model elsewhere, resume: nothing lost
            model = pickle.loads(pickle.dumps(model))
    X_test, y_test = chunk(rng, 5_000)
    ols = LinearRegression().fit(X_test, y_test)
    print(f"stream: {model.n_iter_} chunks, {model.t_} Adam steps")
    best = ols.score(X_test, y_test)
    print(
        f"  R^2 on new data {model.score(X_test, y_test):.5f} "
        f"(LinearRegression fitted on that data itself: {best:.5f})"
    )
    return model


def on_dask(n_rows=200_000, block=25_000):
    """``fit`` on a dask array held by a 2-worker cluster on this machine."""
    import dask.array as da
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            host="127.0.0.1",
            n_workers=2,
            threads_per_worker=1,
            dashboard_address=None,
        ) as cluster,
        Client(cluster),
    ):
        # the data are generated on the workers, block by block
        rng = da.random.default_rng(0)
        X = rng.standard_normal((n_rows, N_FEATURES), chunks=(block, -1)) * 3 + 50
        y = X @ TRUE_COEF + 10 + 0.5 * rng.standard_normal(n_rows, chunks=block)
        on_cluster = AdamRegressor().fit(X, y)
        X_local, y_local = X.compute(), y.compute()
        in_memory = AdamRegressor().fit(X_local, y_local)
        gap = np.max(np.abs(on_cluster.coef_ - in_memory.coef_))
        print("dask: statistics reduced on 2 workers, Adam on the client")
        print(f"  largest difference to the in-memory fit {gap:.1e}")
        print(f"  lazy predictions: {on_cluster.predict(X)[:3].compute()}")
    return on_cluster


if __name__ == "__main__":
    streaming()
    try:
        import distributed  # noqa: F401
    except ImportError:
        print("dask part skipped: pip install sk-adam[dask]")
    else:
        on_dask()
