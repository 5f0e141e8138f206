"""Passes over row blocks: ``python -m benchmarks.passes``.

What the statistics pass saves by bringing the QR factors of an
ill-conditioned design with it (one pass) against taking them in a second
pass (the behaviour before, forced here by judging every block resolved),
on polynomial features (a standardized condition number of 6e4):

- a CSV and a Parquet file of 1,000,000 x 7 read by ``FileRows``;
- 4,000,000 x 7 persisted on a 2-worker LocalCluster (16 blocks), beside
  one bare pass over the blocks;

and, on 2,000,000 x 20 persisted, ``AdamRegressor(batch_size=256).fit``
(its epochs run on the workers) against the same fit on the numpy array.
In memory, the second pass is the design's QR: degree-7 polynomial
features of two columns (35) against ``Ridge(solver='cholesky')``, with
the factor merged into its triangle by LAPACK's triangular-pentagonal QR
and, for the record, by a QR of the stacked rows (as before; with BLAS on
one thread, as both run now, about as fast here).

Contenders run in turns, five rounds, medians; the compiled statistics pass
and steps are built first in every process (as a long-running one has
them). Needs the ``files`` and ``dask`` extras. ``--quick`` runs the same
code on a hundredth of the rows, one round.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from sk_adam import AdamRegressor, FileRows, _datafit, _kernel

ROUNDS = 5
#: Rows are divided by this (100 with ``--quick``).
SHRINK = 1


def _margin(value):
    """Judge blocks as :func:`sk_adam._datafit.block_resolved` does (4.0),
    or every block resolved (0.0: the factors then take a second pass)."""
    _datafit._BLOCK_MARGIN = value


def _polynomial(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 2, n)
    X = np.column_stack([x**p for p in range(1, 8)])
    return X, X @ np.linspace(1, -1, 7) + 0.01 * rng.standard_normal(n)


def _in_turns(contenders):
    times = {name: [] for name in contenders}
    for _ in range(ROUNDS):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _fit_with(margin, *args):
    def run():
        _margin(margin)
        return AdamRegressor().fit(*args)

    return run


def files():
    import pandas as pd

    X, y = _polynomial(1_000_000 // SHRINK)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(7)]).assign(y=y)
    with tempfile.TemporaryDirectory() as folder:
        csv, parquet = Path(folder, "p.csv"), Path(folder, "p.parquet")
        frame.to_csv(csv, index=False)
        frame.to_parquet(parquet)
        for path in (csv, parquet):
            # a new FileRows each fit: one keeps the statistics and factors
            # of its last pass, and a refit reads nothing
            times = _in_turns(
                {
                    "one pass": lambda p=path: _fit_with(4.0, FileRows(p, "y"))(),
                    "two passes": lambda p=path: _fit_with(0.0, FileRows(p, "y"))(),
                }
            )
            _report(f"{path.suffix[1:]} file, {len(y):,} x 7 polynomial", times)


def cluster():
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster, wait

    with (
        LocalCluster(
            host="127.0.0.1", n_workers=2, threads_per_worker=1,
            processes=True, dashboard_address=None,
        ) as local,
        Client(local) as client,
    ):  # fmt: skip
        client.run(_kernel.compiled, "stats")
        X, y = _polynomial(4_000_000 // SHRINK)
        Xd = da.from_array(X, chunks=(250_000 // SHRINK, -1)).persist()
        yd = da.from_array(y, chunks=250_000 // SHRINK).persist()
        wait([Xd, yd])
        times = _in_turns(
            {
                "one pass": _fit_with(4.0, Xd, yd),
                "two passes": _fit_with(0.0, Xd, yd),
                "bare pass": lambda: dask.compute(Xd.sum(axis=0), yd.sum()),
            }
        )
        client.run(_margin, 4.0)
        _report(f"dask, {len(y):,} x 7 polynomial, persisted", times)
        _minibatch(client, da)


def _minibatch(client, da):
    from distributed import wait

    rng = np.random.RandomState(0)
    n, rows = 2_000_000 // SHRINK, 250_000 // SHRINK
    X = rng.randn(n, 20)
    y = X @ rng.randn(20) + rng.randn(n)
    Xd = da.from_array(X, chunks=(rows, -1)).persist()
    yd = da.from_array(y, chunks=rows).persist()
    wait([Xd, yd])
    fitted = {}

    def fit(name, *args):
        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted[name] = AdamRegressor(batch_size=256, random_state=0).fit(*args)

        return run

    times = _in_turns({"dask": fit("dask", Xd, yd), "numpy": fit("numpy", X, y)})
    _report(f"batch_size=256 fit, {n:,} x 20 persisted", times)
    for name, est in fitted.items():
        print(f"  {name}: {est.n_iter_} epochs, stop {est.stop_reason_}")


def in_memory():
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import PolynomialFeatures

    from sk_adam import _statistics

    merged = _statistics._on_triangle

    def stacked(r, rows):
        return _statistics._triangle(np.vstack([r, rows]))

    def adam(merge, X, y):
        def run():
            _statistics._on_triangle = merge
            return AdamRegressor().fit(X, y)

        return run

    def ridge(X, y):
        return lambda: Ridge(1e-10, solver="cholesky").fit(X, y)

    rng = np.random.default_rng(0)
    for n in (100_000 // SHRINK, 1_000_000 // SHRINK):
        x = rng.uniform(0, 2, (n, 2))
        X = PolynomialFeatures(7, include_bias=False).fit_transform(x)
        y = X @ rng.standard_normal(X.shape[1]) * 1e-3 + 0.01 * rng.standard_normal(n)
        try:
            times = _in_turns(
                {
                    "AdamRegressor": adam(merged, X, y),
                    "AdamRegressor, stacked QR": adam(stacked, X, y),
                    "Ridge(cholesky)": ridge(X, y),
                }
            )
        finally:
            _statistics._on_triangle = merged
        _report(f"in memory, {n:,} x 35 polynomial", times)


def _report(case, times):
    print(case, {name: f"{t:.2f} s" for name, t in times.items()}, flush=True)


def main(argv=None) -> int:
    global ROUNDS, SHRINK
    if "--quick" in (sys.argv[1:] if argv is None else argv):
        ROUNDS, SHRINK = 1, 100
    _kernel.compiled("stats")
    _kernel.compiled_steps()
    in_memory()
    files()
    cluster()
    return 0


if __name__ == "__main__":
    sys.exit(main())
