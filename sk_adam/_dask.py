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

from ._blocks import NAME as _NAME
from ._blocks import BlockData
from ._order import shuffled_order

__all__ = ["DaskData", "is_dask", "predict_dask"]


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


def _reduce(summarize, combine, X, Y, s, *args):
    """``summarize(x, y, s, *args)`` of every block, merged pairwise with
    ``combine`` on the cluster; only the merged result reaches the client."""
    import dask
    from dask import delayed

    parts = [delayed(summarize)(x, y, w, *args) for x, y, w in _blocks(X, Y, s)]
    while len(parts) > 1:
        parts = [
            delayed(combine)(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
            for i in range(0, len(parts), 2)
        ]
    (result,) = dask.compute(parts[0])
    return result


def _blocks(X, Y, s):
    """The row-aligned blocks of X, Y and the weights, as delayed objects."""
    return zip(
        X.to_delayed(optimize_graph=False).ravel(),
        Y.to_delayed(optimize_graph=False).ravel(),
        s.to_delayed(optimize_graph=False).ravel(),
        strict=True,
    )


class DaskData(BlockData):
    """Row-aligned dask arrays: every pass runs on the cluster, merging the
    blocks' summaries pairwise there (see the module docstring). What only
    in-memory rows answer is not here: an ``early_stopping`` split
    (``_check_params`` refuses it for dask input) and a stream's chunks
    (``partial_fit`` computes a dask chunk into memory through
    ``validate_data``).
    """

    def __init__(self, X, Y, s, one_d: bool) -> None:
        super().__init__(one_d=one_d)
        self.X, self.Y, self.s = X, Y, s

    @classmethod
    def from_arrays(cls, X, y, sample_weight) -> DaskData:
        """Validated lazy inputs (nothing is computed here)."""
        return cls(*_as_dask(X, y, sample_weight))

    @property
    def dtypes(self) -> tuple:
        return self.X.dtype, self.Y.dtype, self.s.dtype

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def n_targets(self) -> int:
        return self.Y.shape[1]

    @property
    def feature_names(self):
        """None: dask arrays have no column names."""
        return None

    @property
    def n_samples(self) -> int | None:
        """The number of rows, None while the blocks' lengths are unknown."""
        n = self.X.shape[0]
        return None if np.isnan(n) else int(n)

    def reduce(self, summarize, combine, *args):
        return _reduce(summarize, combine, self.X, self.Y, self.s, *args)

    def max_abs(self):
        import dask.array as da

        return da.compute(abs(self.X).max(axis=0), abs(self.Y).max(axis=0))

    def relative_weights(self) -> None:
        self.s = self.s / float(self.s.max().compute())

    def epoch_blocks(self, rng, shuffle):
        """The blocks computed to the client one at a time, in a new random
        order each epoch when ``shuffle``."""
        import dask

        blocks = list(_blocks(self.X, self.Y, self.s))
        n = len(blocks)
        order = shuffled_order(n, rng) if shuffle else range(n)
        for i in order:
            yield dask.compute(*blocks[i])


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
