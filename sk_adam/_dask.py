"""Dask arrays: sufficient statistics reduced on the cluster, Adam on the client.

dask itself is imported only when a dask array reaches
:class:`~sk_adam.AdamRegressor`, so it is an optional dependency (``pip
install sk-adam[dask]``). :class:`DaskData` turns dask inputs into the same
problem, coordinates and epochs objects as in-memory data
(:class:`sk_adam._data.ArrayData`); it knows nothing of the estimator.

Full batch
    Every row block is summarised on the worker that holds it into a
    :class:`~sk_adam._statistics.GramStats` (``d x d`` and smaller), the
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
from sklearn.utils import assert_all_finite, check_array

from ._coordinates import Coordinates, Layout, target_scales_from_stats
from ._datafit import GramLeastSquares, gram_problem, shortfall
from ._epochs import BlockEpochs, MiniBatchEpochs
from ._statistics import FactorStats, blockwise_gram_stats, out_of_range, reference

__all__ = ["DaskData", "cluster_stats", "is_dask", "predict_dask"]


#: The estimator named in messages, as scikit-learn's validation names it.
_NAME = "AdamRegressor"


def is_dask(X) -> bool:
    """A dask collection, recognised without importing dask."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "chunks")


def _checked_dtype(a):
    """``a`` in float32 or float64, or the in-memory check's error."""
    if a.dtype.kind == "c":  # scikit-learn's message for complex input
        raise ValueError(f"Complex data not supported\n{a}\n")
    # other dtypes (objects, strings) convert as in memory: what cannot
    # be converted raises numpy's own error when the blocks are computed
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)


def _as_dask(X, y, sample_weight):
    """Lazy, row-aligned dask inputs ``(X, Y, s, one_d)``, checked as far as
    their shapes and dtypes tell (values are checked by the statistics pass,
    :func:`cluster_stats`), with the messages of in-memory validation."""
    import dask.array as da

    X = da.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D dask array for X, got {X.ndim}D.")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            "X has unknown chunk sizes; call X.compute_chunk_sizes() first."
        )
    X = _checked_dtype(X).rechunk({1: -1})
    n, d = X.shape
    if n == 0 or d == 0:  # scikit-learn's message, from an empty array
        check_array(np.empty(X.shape), estimator=_NAME)
    y = da.asarray(y)
    if y.shape[0] != n:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: "
            f"[{n}, {y.shape[0]}]"
        )
    one_d = y.ndim == 1
    y = _checked_dtype(y)
    Y = (y[:, None] if one_d else y).rechunk((X.chunks[0], -1))
    if sample_weight is None or np.ndim(sample_weight) == 0:  # as in memory
        weight = 1.0 if sample_weight is None else float(sample_weight)
        s = da.full(n, weight, chunks=(X.chunks[0],))
    else:
        s = da.asarray(sample_weight)
        if s.shape != (n,):
            raise ValueError(f"sample_weight.shape == {s.shape}, expected ({n},)!")
        s = _checked_dtype(s).astype(np.float64)
        s = s.rechunk((X.chunks[0],))
    return X, Y, s, one_d


def _summary(x, y, s, ref=None, yref=None):
    """Statistics of one block, with counts of the values that are not
    allowed: NaN and infinite values of X, y and the weights, and negative
    weights."""
    counts = np.array(
        [
            np.count_nonzero(np.isnan(x)),
            np.count_nonzero(np.isinf(x)),
            np.count_nonzero(np.isnan(y)),
            np.count_nonzero(np.isinf(y)),
            np.count_nonzero(np.isnan(s)),
            np.count_nonzero(np.isinf(s)),
            np.count_nonzero(s < 0),
            np.count_nonzero(s),
        ]
    )
    with np.errstate(over="ignore", invalid="ignore"):
        # in cache-sized pieces with one reused buffer, as for in-memory data
        stats = blockwise_gram_stats(x, y, s, ref, yref)
    return stats, counts


def _raise_for(counts, dtypes) -> None:
    """The error in-memory validation gives for the first value not allowed
    (X, then y, then the weights, of these dtypes), with its very message."""
    checks = (("X", _NAME), ("y", _NAME), ("sample_weight", None))
    for i, ((name, estimator), dtype) in enumerate(zip(checks, dtypes, strict=True)):
        pair = counts[2 * i : 2 * i + 2]
        for count, value in zip(pair, (np.nan, np.inf), strict=True):
            if count:
                assert_all_finite(
                    np.array([value], dtype=dtype),
                    input_name=name,
                    estimator_name=estimator,
                )
    if not counts[7]:  # scikit-learn's check of the weights, in its order
        raise ValueError("Sample weights must contain at least one non-zero number.")
    if counts[6]:
        raise ValueError("Negative values in data passed to `sample_weight`.")


def _merge(a, b):
    with np.errstate(over="ignore", invalid="ignore"):  # reported by the caller
        return a[0].merge(b[0]), a[1] + b[1]


def _reduce(summary, merge, X, Y, s, *args):
    """``summary(x, y, s, *args)`` of every block, merged pairwise on the
    cluster; only the merged result reaches the client."""
    import dask
    from dask import delayed

    parts = [
        delayed(summary)(x, y, w, *args)
        for x, y, w in zip(
            X.to_delayed(optimize_graph=False).ravel(),
            Y.to_delayed(optimize_graph=False).ravel(),
            s.to_delayed(optimize_graph=False).ravel(),
            strict=True,
        )
    ]
    while len(parts) > 1:
        parts = [
            delayed(merge)(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
            for i in range(0, len(parts), 2)
        ]
    (result,) = dask.compute(parts[0])
    return result


def cluster_stats(X, Y, s, ref=None, yref=None):
    """One pass over the blocks, merged pairwise on the cluster."""
    stats, counts = _reduce(_summary, _merge, X, Y, s, ref, yref)
    _raise_for(counts, (X.dtype, Y.dtype, s.dtype))
    return stats


def _factor_summary(x, y, s, ref, yref):
    d, k = x.shape[1], y.shape[1]
    return FactorStats.zeros(d, k, ref, yref).add(x, np.asarray(y, np.float64), s)


def _factor_merge(a, b):
    return a.merge(b)


def cluster_factor_stats(X, Y, s, ref, yref) -> FactorStats:
    """The design's :class:`~sk_adam._statistics.FactorStats`, reduced on
    the cluster as :func:`cluster_stats` reduces the second moments (the
    values were checked by that first pass)."""
    return _reduce(_factor_summary, _factor_merge, X, Y, s, ref, yref)


class DaskData:
    """Row-aligned dask arrays, answering what ``fit`` asks of
    :class:`sk_adam._data.ArrayData` (see the module docstring).

    The cluster statistics are computed once, on first use, and shared by
    the coordinates and the full-batch problem. What only in-memory rows
    answer is not here: an ``early_stopping`` split (``_check_params``
    refuses it for dask input) and a stream's chunks (``partial_fit``
    computes a dask chunk into memory through ``validate_data``).
    """

    def __init__(self, X, Y, s, one_d: bool) -> None:
        self.X, self.Y, self.s = X, Y, s
        self.one_d = one_d
        self._stats = None

    @classmethod
    def from_arrays(cls, X, y, sample_weight) -> DaskData:
        """Validated lazy inputs (nothing is computed here)."""
        return cls(*_as_dask(X, y, sample_weight))

    @property
    def dtype(self):
        return self.X.dtype

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def n_targets(self) -> int:
        return self.Y.shape[1]

    @property
    def n_samples(self) -> int | None:
        """The number of rows, None while the blocks' lengths are unknown."""
        n = self.X.shape[0]
        return None if np.isnan(n) else int(n)

    def by_rows(self) -> DaskData:
        """Blocks are streamed as they are: nothing to convert."""
        return self

    def stats(self):
        """The merged :class:`GramStats`, divided by the columns' largest
        magnitudes where squares overflow; weights whose sum overflows are
        divided by the largest (they are relative, as in memory)."""
        if self._stats is None:
            import dask.array as da

            X, Y = self.X, self.Y
            stats = cluster_stats(X, Y, self.s)
            if not 0 < stats.weight < np.inf:
                # (cluster_stats refused all-zero weights: the largest is > 0)
                self.s = self.s / float(self.s.max().compute())
                stats = cluster_stats(X, Y, self.s)
            if not stats.finite() or stats.tiny():
                # squares overflow or underflow: divide by the largest
                # magnitudes (as gram_stats does in memory)
                ref, yref = da.compute(abs(X).max(axis=0), abs(Y).max(axis=0))
                ref = np.asarray(ref, dtype=np.float64)
                yref = np.asarray(yref, dtype=np.float64)
                if not stats.finite() or out_of_range(ref) or out_of_range(yref):
                    stats = cluster_stats(X, Y, self.s, reference(ref), reference(yref))
            self._stats = stats
        return self._stats

    def problem(self, layout: Layout, *, precompute, whiten):
        """The full-batch problem on the cluster's statistics (always the
        statistics path, whatever ``precompute`` says: ``X`` is never
        gathered)."""
        stats = self.stats()
        with np.errstate(over="ignore", invalid="ignore"):  # the solver reports
            y_offset, y_scale = target_scales_from_stats(stats, layout)

        def exact(ref, yref):
            return cluster_factor_stats(self.X, self.Y, self.s, ref, yref)

        problem = gram_problem(stats, y_offset, y_scale, layout, whiten, exact)
        return problem, problem.coords

    def coordinates(self, layout: Layout) -> Coordinates:
        stats = self.stats()
        with np.errstate(over="ignore", invalid="ignore"):  # the solver reports
            y_offset, y_scale = target_scales_from_stats(stats, layout)
            return Coordinates.from_stats(stats, y_offset, y_scale, layout)

    def shortfall(self, coords: Coordinates, problem=None):
        """As :meth:`sk_adam._data.ArrayData.shortfall`, from the cluster's
        statistics (no pass over the blocks)."""
        stats = self.stats()
        with np.errstate(over="ignore", invalid="ignore"):
            _, spread = target_scales_from_stats(stats, Layout(True, True))
        variance = (spread / coords.y_scale) ** 2
        if problem is None:  # mini-batches: offsets are the means, or zero
            center = bool(np.any(coords.x_offset))
            problem = GramLeastSquares.from_stats(stats, coords, center)
        return shortfall(problem, variance)

    def epochs(self, coords, adam, rng, *, size, shuffle) -> BlockEpochs:
        """Mini-batch epochs that stream the row blocks to the client."""

        def make_epochs(x, y, s):
            return MiniBatchEpochs(
                x, y, s, coords, adam, rng, size=size, shuffle=shuffle
            )

        return BlockEpochs(
            _block_loaders(self.X, self.Y, self.s),
            make_epochs,
            shuffle=shuffle,
            rng=rng,
        )


def _block_loaders(X, Y, s):
    """One loader per row block: computes ``(x, y, s)`` of the block."""
    import dask

    blocks = zip(
        X.to_delayed(optimize_graph=False).ravel(),
        Y.to_delayed(optimize_graph=False).ravel(),
        s.to_delayed(optimize_graph=False).ravel(),
        strict=True,
    )
    return [lambda b=block: dask.compute(*b) for block in blocks]


def _predict_block(x, coef, intercept):
    # in-memory predict refuses NaN and infinity with this message
    assert_all_finite(x, input_name="X", estimator_name=_NAME)
    return x @ coef.T + intercept


def predict_dask(X, coef, intercept):
    """Lazy predictions ``X @ coef.T + intercept`` for a dask array, block by
    block."""
    import dask.array as da

    X = da.asarray(X)
    n_features = coef.shape[-1]
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(
            f"X has {X.shape[-1]} features, but AdamRegressor is expecting "
            f"{n_features} features as input."
        )
    X = X.rechunk({1: -1})
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
