"""Dask arrays and DataFrames: sufficient statistics reduced on the cluster,
Adam on the client.

dask itself is imported only when a dask collection reaches
:class:`~sk_adam.AdamRegressor`, so it is an optional dependency (``pip
install sk-adam[dask]``). :func:`dask_data` turns dask inputs into the same
problem, coordinates and epochs objects as in-memory data
(:class:`sk_adam._data.ArrayData`): :class:`DaskData` for arrays,
:class:`DaskFrameData` for DataFrames; :func:`predict_dask` predicts lazily
for either. None knows the estimator.

Full batch
    Every row block (a DataFrame's partition) is summarised on the worker
    that holds it into a :class:`~sk_adam._statistics.GramStats` (``d x d``
    and smaller), the summaries are merged on the cluster, and only the merged ``d x d``
    result reaches the client, where Adam runs on it exactly as for in-memory
    data. ``X`` is never gathered.
Mini-batches
    The working coordinates come from the same reduction; each epoch then
    runs every block's mini-batch steps on the worker that holds it, the
    blocks in random order when ``shuffle``, passing the parameters and
    Adam's state from block to block (:class:`WorkerEpochs`): the rows
    never reach the client.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
from sklearn.utils import assert_all_finite, check_array

from ._blocks import NAME as _NAME
from ._blocks import BlockData
from ._epochs import BlockEpochs, block_epoch
from ._order import shuffled_order

__all__ = ["DaskData", "DaskFrameData", "dask_data", "is_dask", "predict_dask"]


def is_dask(X) -> bool:
    """A dask array, DataFrame or Series, recognised without importing
    dask."""
    return type(X).__module__.split(".")[0] == "dask" and (
        hasattr(X, "chunks") or hasattr(X, "npartitions")
    )


def _is_frame(X) -> bool:
    """A dask DataFrame or Series (dask-expr's included)."""
    return is_dask(X) and not hasattr(X, "chunks")


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
    y = _row_chunked(_checked_dtype(y), X)
    if sample_weight is None or np.ndim(sample_weight) == 0:  # as in memory
        # made on the worker: an array of ones per block in the graph cost
        # as much as the pass (1e7 x 20 in 40 blocks: 0.14 s of 0.23 s)
        scale = 1.0 if sample_weight is None else float(sample_weight)
        return X, y, None, scale, one_d
    s = da.asarray(sample_weight)
    if s.shape != (n,):
        raise ValueError(f"sample_weight.shape == {s.shape}, expected ({n},)!")
    s = _row_chunked(_checked_dtype(s).astype(np.float64), X)
    return X, y, s, 1.0, one_d


def _row_chunked(a, X):
    """``a`` with the row blocks of X (rechunked only where they differ),
    whole along its other axis."""
    if a.chunks[0] != X.chunks[0] or (a.ndim == 2 and len(a.chunks[1]) > 1):
        a = a.rechunk((X.chunks[0],) + ((-1,) if a.ndim == 2 else ()))
    return a


#: Summaries merged by one task: a tree of this fan-in has fewer levels,
#: each a round of transfers between workers (1e7 x 20 in 40 blocks, the
#: graph alone: 0.093 s pairwise, 0.039 s all in one task).
FAN_IN = 8


def _merged(parts, combine):
    """The delayed ``parts`` merged on the cluster in groups of
    :data:`FAN_IN` (in order, left to right), computed: only the merged
    result reaches the client."""
    import dask
    from dask import delayed

    while len(parts) > 1:
        parts = [
            delayed(_merge_group)(combine, *parts[i : i + FAN_IN])
            if i + 1 < len(parts)
            else parts[i]
            for i in range(0, len(parts), FAN_IN)
        ]
    (result,) = dask.compute(parts[0])
    return result


def _merge_group(combine, first, *rest):
    for part in rest:
        first = combine(first, part)
    return first


def _array_rows(x, y, w, scale):
    """One block as the arrays a summary takes: ``(x, Y, s)``, made on its
    worker (``Y`` two-dimensional, ``s`` ones times ``scale`` where no
    weights were given)."""
    Y = y[:, None] if y.ndim == 1 else y
    s = np.full(len(x), scale) if w is None else w * scale if scale != 1.0 else w
    return x, Y, s


def _summary_of(rows, summarize, x, y, w, scale, *args):
    """``summarize`` of one block, made into arrays by ``rows`` on its
    worker."""
    return summarize(*rows(x, y, w, scale), *args)


class _ClusterBlocks(BlockData):
    """Blocks on a dask cluster: what arrays and DataFrames share. A kind
    gives its blocks as delayed ``(x, y, w)`` (:meth:`_blocks`, ``w`` None
    where the weights are one number, :attr:`scale`) and the function that
    makes one into the arrays a summary takes, on its worker
    (:meth:`_rows`, picklable)."""

    def __init__(self, X, y, weights, scale: float, one_d: bool) -> None:
        super().__init__(one_d=one_d)
        self.X, self.y, self.weights, self.scale = X, y, weights, scale

    def _blocks(self) -> list:
        raise NotImplementedError

    @property
    def _rows(self):
        raise NotImplementedError

    def reduce(self, summarize, combine, *args):
        from dask import delayed

        parts = [
            delayed(_summary_of)(self._rows, summarize, x, y, w, self.scale, *args)
            for x, y, w in self._blocks()
        ]
        return _merged(parts, combine)

    def relative_weights(self) -> None:
        largest = 1.0 if self.weights is None else self.weights.max().compute()
        self.scale = 1.0 / float(largest)

    #: Blocks chained into one graph by a mini-batch epoch (see
    #: :class:`WorkerEpochs`); a DataFrame's partitions are of unknown size.
    segment_blocks = 8

    def epochs(self, coords, adam, rng, *, size, shuffle) -> WorkerEpochs:
        """Mini-batch epochs run block by block on the workers that hold
        the blocks."""
        return WorkerEpochs(self, coords, adam, rng, size=size, shuffle=shuffle)


#: The most bytes of X one graph of a mini-batch epoch chains: blocks that
#: are computed during the fit (read, generated) are made ahead of the
#: steps, at most this many bytes of them.
SEGMENT_BYTES = 512 * 2**20


def _epoch_on_worker(rows, scale, coords, rate, size, shuffle, x, y, w, carry):
    """One block's share of a mini-batch epoch, on the worker that holds
    it: ``carry`` is ``(params, adam, rng, loss sum, weight)`` after the
    blocks before it, returned after this one (a copy: a task does not
    change its inputs)."""
    params, adam, rng, total, weight = copy.deepcopy(carry)
    xa, Y, s = rows(x, y, w, scale)
    part, part_weight = block_epoch(
        xa, Y, s, params, rate, coords, adam, rng, size=size, shuffle=shuffle
    )
    return params, adam, rng, total + part, weight + part_weight


class WorkerEpochs(BlockEpochs):
    """Mini-batch epochs over a cluster's blocks, each block's steps run on
    the worker that holds it.

    An epoch is :class:`~sk_adam._epochs.BlockEpochs`'s, step for step: the
    blocks in a new random order when ``shuffle`` (drawn on the client from
    ``rng``), each block's rows in mini-batches
    (:func:`~sk_adam._epochs.block_epoch`). What travels from block to
    block is the parameters, Adam's state and the random state (kilobytes),
    not the rows: the tasks of one epoch form a chain, each on the worker
    of its block, in graphs of :data:`SEGMENT_BYTES` of blocks (a graph of
    :attr:`_ClusterBlocks.segment_blocks` partitions for a DataFrame). The
    client's ``params``, ``adam`` state and ``rng`` are updated at the end,
    as an in-memory epoch updates them.
    """

    def __init__(self, data: _ClusterBlocks, coords, adam, rng, *, size, shuffle):
        blocks = data._blocks()
        super().__init__(lambda: blocks, coords, adam, rng, size=size, shuffle=shuffle)
        self.rows, self.scale = data._rows, data.scale
        self.segment = data.segment_blocks

    def run(self, params, rate):
        import dask
        from dask import delayed

        blocks = self.blocks()
        n = len(blocks)
        order = shuffled_order(n, self.rng) if self.shuffle else range(n)
        step = functools.partial(
            _epoch_on_worker, self.rows, self.scale, self.coords, rate,
            self.size, self.shuffle,
        )  # fmt: skip
        carry = (params, self.adam, self.rng, 0.0, 0.0)
        for start in range(0, len(order), self.segment):
            link = carry
            for i in order[start : start + self.segment]:
                link = delayed(step, pure=False)(*blocks[i], link)
            (carry,) = dask.compute(link)
        moved, adam, rng, total, weight = carry
        np.copyto(params, moved)
        self.adam.state.assign(adam.state)
        self.rng.set_state(rng.get_state())
        return total / weight


class DaskData(_ClusterBlocks):
    """Row-aligned dask arrays: every pass runs on the cluster, merging the
    blocks' summaries there (see the module docstring). What only in-memory
    rows answer is not here: an ``early_stopping`` split (``_check_params``
    refuses it for dask input) and a stream's chunks (``partial_fit``
    computes a dask chunk into memory through ``validate_data``).

    ``y`` is kept as given (1-D or 2-D): each block's ``(x, Y, s)`` is made
    on its worker (:func:`_array_rows`).
    """

    @classmethod
    def from_arrays(cls, X, y, sample_weight) -> DaskData:
        """Validated lazy inputs (nothing is computed here)."""
        return cls(*_as_dask(X, y, sample_weight))

    def _blocks(self) -> list:
        """The row-aligned blocks of X, y and the weights (None where none
        were given), as delayed objects."""
        xs = self.X.to_delayed(optimize_graph=False).ravel()
        ys = self.y.to_delayed(optimize_graph=False).ravel()
        ws = self.weights
        ws = [None] * len(xs) if ws is None else ws.to_delayed(optimize_graph=False)
        return list(zip(xs, ys, ws, strict=True))

    @property
    def _rows(self):
        return _array_rows

    @property
    def dtypes(self) -> tuple:
        return self.X.dtype, self.y.dtype, np.dtype(np.float64)

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def n_targets(self) -> int:
        return 1 if self.y.ndim == 1 else self.y.shape[1]

    @property
    def feature_names(self):
        """None: dask arrays have no column names."""
        return None

    @property
    def segment_blocks(self) -> int:
        """Blocks of at most :data:`SEGMENT_BYTES` in all."""
        largest = max(self.X.chunks[0]) * self.X.shape[1] * self.X.dtype.itemsize
        return max(1, SEGMENT_BYTES // max(largest, 1))

    @property
    def n_samples(self) -> int | None:
        """The number of rows, None while the blocks' lengths are unknown."""
        n = self.X.shape[0]
        return None if np.isnan(n) else int(n)

    def max_abs(self):
        import dask.array as da

        x, y = da.compute(abs(self.X).max(axis=0), abs(self.y).max(axis=0))
        return x, np.atleast_1d(y)


def _frame_columns(X, name="X"):
    """The feature names of a dask DataFrame's columns (None unless all are
    strings, as scikit-learn names them), after checking their dtypes from
    the frame's metadata (nothing is computed); ``name`` is the argument's,
    for the messages."""
    from pandas.api.types import is_bool_dtype, is_complex_dtype, is_numeric_dtype

    if X.ndim != 2:
        raise ValueError(
            "Expected a 2D dask DataFrame for X, got a dask Series: use "
            "X.to_frame() for one feature."
        )
    if len(X.columns) == 0:  # scikit-learn's message, from an empty array
        check_array(np.empty((1, 0)), estimator=_NAME)
    dtypes = X.dtypes
    if any(is_complex_dtype(t) for t in dtypes):
        raise ValueError("Complex data not supported")
    other = [
        c for c, t in dtypes.items() if not (is_numeric_dtype(t) or is_bool_dtype(t))
    ]
    if other:
        raise ValueError(
            f"{name} has columns of non-numeric dtype: {other[:5]} "
            f"({', '.join(str(dtypes[c]) for c in other[:5])}). AdamRegressor "
            f"fits numbers: encode or drop these columns first (on the "
            f"cluster, e.g. with dask_ml.preprocessing)."
        )
    names = [str(c) for c in X.columns]
    return names if all(isinstance(c, str) for c in X.columns) else None


def _frame_dtype(X):
    """float32 where every column is float32, else float64 (in memory,
    integer and boolean columns convert to float64 too)."""
    single = all(t == np.float32 for t in X.dtypes)
    return np.dtype(np.float32 if single else np.float64)


def _same_partitions(name, other, X) -> None:
    if not _is_frame(other):
        raise ValueError(
            f"With a dask DataFrame X, {name} must be a dask Series or "
            f"DataFrame partitioned as X (got {type(other).__name__})."
        )
    if other.npartitions != X.npartitions:
        raise ValueError(
            f"X has {X.npartitions} partitions and {name} {other.npartitions}: "
            f"partition them alike (for instance, {name} a column of the "
            f"same frame as X)."
        )


def _frame_rows(dtype, x, y, w, scale):
    """One partition as arrays on its worker: ``(x, Y, s)``, ``x`` in
    ``dtype``."""
    xa = x.to_numpy(dtype=dtype, na_value=np.nan)
    ya = y.to_numpy(dtype=np.float64, na_value=np.nan)
    ya = ya[:, None] if ya.ndim == 1 else ya
    if len(ya) != len(xa):
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: a "
            f"partition of X has {len(xa)} rows and the same partition of y "
            f"{len(ya)}. Partition X and y alike."
        )
    if w is None:
        s = np.full(len(xa), scale)
    else:
        s = w.to_numpy(dtype=np.float64, na_value=np.nan) * scale
        if len(s) != len(xa):
            raise ValueError(
                f"sample_weight.shape == ({len(s)},), expected ({len(xa)},) "
                f"in a partition: partition sample_weight as X."
            )
    return xa, ya, s


class DaskFrameData(_ClusterBlocks):
    """A dask DataFrame ``X`` with a dask Series or DataFrame ``y`` (and
    weights) partitioned alike: every pass turns each partition into arrays
    on its worker and summarises it there, as :class:`DaskData` does with
    an array's blocks; nothing is gathered to the client and the partitions'
    lengths need not be known. Column names become the feature names.
    """

    def __init__(self, X, y, weights, scale, one_d, names) -> None:
        super().__init__(X, y, weights, scale, one_d)
        self._names = names
        self._dtype = _frame_dtype(X)

    @classmethod
    def from_frames(cls, X, y, sample_weight) -> DaskFrameData:
        """Checked from the frames' metadata (nothing is computed here)."""
        names = _frame_columns(X)
        _same_partitions("y", y, X)
        one_d = y.ndim == 1
        if not one_d:
            _frame_columns(y, "y")
        weights, scale = None, 1.0
        if sample_weight is not None and np.ndim(sample_weight) == 0:
            scale = float(sample_weight)
        elif sample_weight is not None:
            _same_partitions("sample_weight", sample_weight, X)
            weights = sample_weight
        return cls(X, y, weights, scale, one_d, names)

    def _blocks(self) -> list:
        ws = self.weights
        ws = (
            [None] * self.X.npartitions
            if ws is None
            else ws.to_delayed(optimize_graph=False)
        )
        return list(
            zip(
                self.X.to_delayed(optimize_graph=False),
                self.y.to_delayed(optimize_graph=False),
                ws,
                strict=True,
            )
        )

    @property
    def _rows(self):
        return functools.partial(_frame_rows, self._dtype)

    @property
    def dtypes(self) -> tuple:
        return self._dtype, np.dtype(np.float64), np.dtype(np.float64)

    @property
    def n_features(self) -> int:
        return len(self.X.columns)

    @property
    def n_targets(self) -> int:
        return 1 if self.one_d else len(self.y.columns)

    @property
    def feature_names(self):
        return self._names

    @property
    def n_samples(self) -> None:
        """Unknown: counting the rows would take a pass."""
        return None

    def max_abs(self):
        import dask

        x, y = dask.compute(self.X.abs().max(), self.y.abs().max())
        return (
            np.atleast_1d(np.asarray(x, dtype=np.float64)),
            np.atleast_1d(np.asarray(y, dtype=np.float64)),
        )


def dask_data(X, y, sample_weight) -> DaskData | DaskFrameData:
    """The training data of a dask array or DataFrame ``X``, checked as far
    as shapes, dtypes and metadata tell (nothing is computed)."""
    if _is_frame(X):
        return DaskFrameData.from_frames(X, y, sample_weight)
    return DaskData.from_arrays(X, y, sample_weight)


def _predict_frame(frame, coef, intercept):
    """Predictions of one partition, indexed as it is."""
    import pandas as pd

    values = _predict_block(
        frame.to_numpy(dtype=np.float64, na_value=np.nan), coef, intercept
    )
    if values.ndim == 1:
        return pd.Series(values, index=frame.index)
    return pd.DataFrame(values, index=frame.index)


def _predict_frame_lazily(X, coef, intercept, names):
    """Lazy predictions of a dask DataFrame: a dask Series (a DataFrame with
    a column per target), partitioned and indexed as ``X``."""
    import pandas as pd

    columns = _frame_columns(X)
    n_features = coef.shape[-1]
    if len(X.columns) != n_features:
        raise ValueError(
            f"X has {len(X.columns)} features, but AdamRegressor is expecting "
            f"{n_features} features as input."
        )
    if names is not None and columns != list(names):
        raise ValueError(
            f"The feature names should match those that were passed during "
            f"fit: {list(names)}; X has {columns}."
        )
    if coef.ndim == 1:
        meta = pd.Series(dtype=np.float64)
    else:
        meta = pd.DataFrame({i: pd.Series(dtype=np.float64) for i in range(len(coef))})
    return X.map_partitions(_predict_frame, coef, intercept, meta=meta)


def _predict_block(x, coef, intercept):
    # in-memory predict refuses NaN and infinity with this message
    assert_all_finite(x, input_name="X", estimator_name=_NAME)
    return x @ coef.T + intercept


def predict_dask(X, coef, intercept, names=None):
    """Lazy predictions ``X @ coef.T + intercept``, block by block: a dask
    array for a dask array, a dask Series (DataFrame) for a DataFrame, whose
    columns must be ``names`` where the model has them."""
    import dask.array as da

    if _is_frame(X):
        return _predict_frame_lazily(X, coef, intercept, names)

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
