"""Dask arrays: sufficient statistics reduced on the cluster, Adam on the client.

Imported only when a dask array reaches :class:`~sk_adam.AdamRegressor`, so
dask is an optional dependency (``pip install sk-adam[dask]``).

Full batch
    Every row block is summarised on the worker that holds it into a
    :class:`~sk_adam._datafit.GramStats` (``d x d`` and smaller), the
    summaries are merged pairwise on the cluster, and only the merged ``d x d``
    result reaches the client, where Adam runs on it exactly as for in-memory
    data. ``X`` is never gathered.
Mini-batches
    The working coordinates come from the same reduction; each epoch then
    streams the row blocks to the client one at a time (in random order when
    ``shuffle``) and runs the mini-batch steps on each.
"""

from __future__ import annotations

import numpy as np

from ._adam import Adam, AdamState
from ._datafit import GramLeastSquares, _blockwise_gram_stats, _varying
from ._order import shuffled_order


def _as_dask(est, X, y, sample_weight):
    """Lazy, row-aligned dask inputs; sets ``n_features_in_``."""
    import dask.array as da

    X = da.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D dask array for X, got {X.ndim}D.")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            "X has unknown chunk sizes; call X.compute_chunk_sizes() first."
        )
    if X.dtype.kind not in "fiub":
        raise ValueError(f"X must be numeric, got dtype {X.dtype}.")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    X = X.rechunk({1: -1})
    n, d = X.shape
    if n == 0 or d == 0:
        raise ValueError(
            f"Found array with shape {X.shape}; need samples and features."
        )
    y = da.asarray(y)
    if y.shape[0] != n:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: "
            f"[{n}, {y.shape[0]}]"
        )
    one_d = y.ndim == 1
    Y = (y[:, None] if one_d else y).astype(np.float64).rechunk((X.chunks[0], -1))
    if sample_weight is None:
        s = da.ones(n, chunks=(X.chunks[0],))
    else:
        s = da.asarray(sample_weight).astype(np.float64).rechunk((X.chunks[0],))
        if s.shape != (n,):
            raise ValueError(f"sample_weight.shape == {s.shape}, expected ({n},)!")
    est.n_features_in_ = d
    if hasattr(est, "feature_names_in_"):
        del est.feature_names_in_
    return X, Y, s, one_d


def _summary(x, y, s, ref=None, yref=None):
    """Statistics of one block, with counts of the values that are not allowed."""
    bad = int(x.size - np.count_nonzero(np.isfinite(x)))
    bad += int(y.size - np.count_nonzero(np.isfinite(y)))
    negative = int(np.count_nonzero(s < 0)) + int(
        s.size - np.count_nonzero(np.isfinite(s))
    )
    with np.errstate(over="ignore", invalid="ignore"):
        # in cache-sized pieces with one reused buffer, as for in-memory data
        stats = _blockwise_gram_stats(x, y, s, ref, yref)
    return stats, bad, negative


def _merge(a, b):
    return a[0].merge(b[0]), a[1] + b[1], a[2] + b[2]


def cluster_stats(X, Y, s, ref=None, yref=None):
    """One pass over the blocks, merged pairwise on the cluster."""
    import dask
    from dask import delayed

    parts = [
        delayed(_summary)(x, y, w, ref, yref)
        for x, y, w in zip(
            X.to_delayed(optimize_graph=False).ravel(),
            Y.to_delayed(optimize_graph=False).ravel(),
            s.to_delayed(optimize_graph=False).ravel(),
            strict=True,
        )
    ]
    while len(parts) > 1:
        parts = [
            delayed(_merge)(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
            for i in range(0, len(parts), 2)
        ]
    ((stats, bad, negative),) = dask.compute(parts[0])
    if bad:
        raise ValueError(
            f"Input contains NaN or infinity ({bad} values in X or y); remove or "
            f"impute them first."
        )
    if negative:
        raise ValueError("Negative values in data passed to `sample_weight`.")
    if not stats.weight > 0:
        raise ValueError(
            "sample_weight sums to zero: at least one sample must have a "
            "positive weight."
        )
    return stats


def _target_coordinates(stats, center, standardize):
    k = stats.ymean.size
    if not standardize:
        return np.zeros(k), np.ones(k)
    mean = stats.ymean * stats.yref
    second = stats.yy / stats.weight
    if not center:
        second = second + stats.ymean**2
    spread = stats.yref * np.sqrt(np.clip(second, 0.0, None))
    offset = mean if center else np.zeros(k)
    return offset, np.where(_varying(spread, offset), spread, 1.0)


def fit_dask(est, X, y, sample_weight):
    """``AdamRegressor.fit`` for dask arrays (see the module docstring)."""
    import dask.array as da
    from sklearn.utils import check_random_state

    from ._regressor import (
        _check_no_whitening,
        _FullBatchStep,
        _Recorder,
        _run_adam,
    )

    if est.early_stopping:
        raise ValueError(
            "early_stopping is not supported for dask arrays: hold out a "
            "validation set yourself, or fit in memory."
        )
    X, Y, s, one_d = _as_dask(est, X, y, sample_weight)
    stats = cluster_stats(X, Y, s)
    if not stats.finite():  # squares overflow: divide by the largest values
        ref, yref = da.compute(abs(X).max(axis=0), abs(Y).max(axis=0))
        ref = np.where(ref > 0, ref, 1.0).astype(np.float64)
        yref = np.where(yref > 0, yref, 1.0).astype(np.float64)
        stats = cluster_stats(X, Y, s, ref, yref)
    center = est.standardize and est.fit_intercept
    intercept = est.fit_intercept and not est.standardize
    y_offset, y_scale = _target_coordinates(stats, center, est.standardize)
    with np.errstate(over="ignore", invalid="ignore"):
        problem = GramLeastSquares.from_stats(
            stats, y_offset, y_scale, center, est.standardize, intercept
        )
    if est.batch_size is None:
        problem = problem.whitened(est.whiten)
    else:
        _check_no_whitening(est)
    coords = problem.coords
    rng = check_random_state(est.random_state)
    params = est._initial_params(coords, Y.shape[1])
    adam = Adam(
        est.alpha, est.beta1, est.beta2, est.epsilon, AdamState.zeros(params.shape)
    )
    if est.batch_size is None:
        epoch = _FullBatchStep(problem, adam)
        with np.errstate(over="ignore", invalid="ignore"):
            start = problem.evaluate(params)
    else:
        epoch = _BlockEpochs(est, X, Y, s, coords, adam, rng)
        start = None
    recorder = _Recorder(est, coords) if est.record_history else None
    run = _run_adam(est, epoch, params, adam, coords.y_scale, start, None, recorder)
    return est._finish(
        run, coords, X.dtype, one_d, est.batch_size is None, rng, recorder
    )


class _BlockEpochs:
    """Mini-batch epochs that stream the row blocks to the client."""

    def __init__(self, est, X, Y, s, coords, adam, rng):
        self.est, self.coords, self.adam, self.rng = est, coords, adam, rng
        self.blocks = list(
            zip(
                X.to_delayed(optimize_graph=False).ravel(),
                Y.to_delayed(optimize_graph=False).ravel(),
                s.to_delayed(optimize_graph=False).ravel(),
                strict=True,
            )
        )

    def run(self, params):
        import dask

        from ._regressor import _MiniBatchEpochs

        order = (
            shuffled_order(len(self.blocks), self.rng)
            if self.est.shuffle
            else range(len(self.blocks))
        )
        total, weight = 0.0, 0.0
        for i in order:
            x, y, s = dask.compute(*self.blocks[i])
            if not np.any(s > 0):
                continue
            epoch = _MiniBatchEpochs(
                self.est, x, y, s, self.coords, self.adam, self.rng
            )
            loss = epoch.run(params)
            total = total + epoch.weight * loss
            weight += epoch.weight
        return total / weight

    def restart(self, params):
        """Continue from ``params``: nothing is cached between epochs."""


def _predict_block(x, coef, intercept):
    return x @ coef.T + intercept


def predict_dask(est, X):
    """Lazy predictions for a dask array, block by block."""
    import dask.array as da

    X = da.asarray(X)
    if X.ndim != 2 or X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {X.shape[-1]} features, but AdamRegressor is expecting "
            f"{est.n_features_in_} features as input."
        )
    X = X.rechunk({1: -1})
    coef, intercept = est.coef_, est.intercept_
    dtype = np.result_type(X.dtype, coef.dtype)
    if coef.ndim == 1:
        return X.map_blocks(_predict_block, coef, intercept, drop_axis=1, dtype=dtype)
    return X.map_blocks(
        _predict_block,
        coef,
        intercept,
        chunks=(X.chunks[0], (coef.shape[0],)),
        dtype=dtype,
    )
