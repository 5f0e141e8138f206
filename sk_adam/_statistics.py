"""Column and Gram statistics of the data, one row block at a time.

Everything here is a weighted reduction over the rows of ``X`` (dense or
scipy sparse, float32 or float64, never copied whole or modified) and of the
targets ``Y`` (``(n, k)`` float64), accumulated in float64, with ``s`` the
sample weights (normalised to sum to one where a function says so).

:func:`column_stats`
    Weighted offsets and spreads of the columns, and which of them vary:
    what the standardizing map of :mod:`sk_adam._coordinates` is made of.
:class:`GramStats`, :func:`gram_stats`
    The sufficient statistics of least squares (weighted means and centred
    second moments), one row block at a time, merged exactly; a distributed
    reduction (:mod:`sk_adam._dask`) merges them the same way.
:class:`FactorStats`, :func:`factor_stats`
    The same statistics as a triangular factor of the centred rows (a
    tall-skinny QR, merged exactly the same way): they resolve the design to
    the precision of its values, where the second moments square its
    condition number.

Nothing here knows about Adam, the estimator or the working coordinates.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.linalg import blas, lapack

from ._kernel import compiled_stats, count_spent, stats_tile

__all__ = [
    "FactorStats",
    "GramStats",
    "blockwise_gram_stats",
    "column_stats",
    "factor_stats",
    "gram_stats",
    "is_varying",
    "out_of_range",
    "reference",
    "spread_around",
    "target_stats",
]

Array = NDArray[np.floating]
Float64Array = NDArray[np.float64]
Matrix = Array | sp.sparray | sp.spmatrix

#: Upper bound on the float64 row block used when reducing over ``X``.
_BLOCK_BYTES = 2 * 2**20
#: A block shifted by the running means instead of centred at its own is
#: kept when ``(block mean - shift)^2`` is at most this many times a column's
#: spread squared (at most four digits of it lost to the centring).
_SHIFT_LOSS = 1e4
#: Blocks are shifted (one pass fewer over each block) up to this many
#: features; above, the products dominate and the ``(d + k + 1)^2``
#: temporaries of the shifted update cost more than the pass saves
#: (interleaved, in one process: 1e6 x 50 0.89 -> 0.62 x ``X.T @ X``,
#: 10,000 x 1,000 1.52 -> 1.63).
_SHIFTED_MAX_FEATURES = 256
#: The Gram statistics of inputs of at least this many ``n d^2`` operations
#: are reduced by two threads.
_THREADED_FLOPS = 2 * 10**8
#: The compiled pass splits inputs of at least this many ``n d^2``
#: operations over two threads. Against ``X.T @ X`` (one thread, two):
#: 100,000 x 50 1.1-1.2, 1.3-1.6 (the two CPUs measured share their
#: arithmetic: a pass that fits the caches gains nothing, and the threads
#: cost their start); 300,000 x 50 1.2, 0.6-0.7; 1,000,000 x 50 1.0, 0.6.
_COMPILED_THREADED_FLOPS = 5 * 10**8
#: The compiled statistics pass reads inputs of at most this many columns
#: (features and targets); wider ones use numpy, where BLAS's blocked
#: products catch up. Against ``X.T @ X`` (compiled, numpy): 50,000 x 200
#: 0.30, 0.70; 20,000 x 400 1.11, 1.12; 10,000 x 1,000 1.36, 1.35.
_COMPILED_MAX_WIDTH = 256
#: Magnitudes outside ``[_TINY, _HUGE]`` are rescaled (divided by the
#: column's largest magnitude) before they are squared: their squares would
#: underflow into subnormal numbers (losing digits, then reading 0) or
#: overflow.
_TINY = 1e-140
_HUGE = 1e140
#: A column whose spread is below this fraction of its mean is constant.
_CONSTANT_RTOL = 1e3 * np.finfo(np.float64).eps
#: Largest (mean / std)^2 for which the sparse Gram matrix may be centred by
#: the formula X'SX - mu mu' (it loses log10 of this many digits).
_SPARSE_CENTERING_RATIO = 1e4


def _row_blocks(X: Matrix) -> Iterator[slice]:
    """Row slices whose float64 copy stays below the block budget.

    The budget shrinks with small ``X`` so that a block never costs more than
    a sixteenth of the data (and at least a few thousand values).
    """
    n, d = X.shape
    nbytes = X.nbytes if not sp.issparse(X) else 8 * n * d
    budget = min(_BLOCK_BYTES, max(nbytes // 16, 2**15))
    step = max(1, budget // (8 * max(d, 1)))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def _block(X: Array, rows: slice, out: Float64Array) -> Float64Array:
    """Rows of dense X as float64: a view when possible, else a copy."""
    if X.dtype == np.float64:
        return X[rows]
    view = out[: rows.stop - rows.start]
    view[...] = X[rows]
    return view


def _block_buffer(X: Matrix) -> Float64Array:
    first = next(_row_blocks(X))
    return np.empty((first.stop - first.start, X.shape[1]))


def is_varying(spread: Float64Array, offset: Float64Array) -> NDArray[np.bool_]:
    """Whether a column with this spread around this offset varies: its
    spread is positive and above the round-off of its offset."""
    return (spread > 0) & (spread > _CONSTANT_RTOL * np.abs(offset))


def column_stats(
    X: Matrix, s: Float64Array, center: bool
) -> tuple[Float64Array, Float64Array, NDArray[np.bool_]]:
    """Weighted offsets, scales and the non-constant mask of the columns of X.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n, d)
        The data; read block by block (dense) or through its stored entries
        (sparse), accumulated in float64, never copied whole.
    s : ndarray of shape (n,)
        Sample weights summing to one.
    center : bool
        If True the offsets are the weighted means and the scales the weighted
        standard deviations around them; if False the offsets are zero and the
        scales are the weighted root mean squares.

    Returns
    -------
    offset, scale : ndarray of shape (d,)
        ``scale`` is 1 where the column is constant (see ``varying``).
    varying : ndarray of bool of shape (d,)
        False for columns whose values are all equal (all zero when
        ``center=False``): their coefficient carries no information.

    Notes
    -----
    The spread is computed from centred values (two passes), never as
    ``E[x^2] - E[x]^2``, which cancels catastrophically for columns such as
    years or large offsets with a small spread. Where squares overflow or
    underflow (values beyond ``1e140`` or, varying, below ``1e-140``), the
    values are divided by the column's largest magnitude first.
    """
    if sp.issparse(X):
        offset, spread = _sparse_column_stats(X, s, center)
    else:
        offset = _dense_mean(X, s) if center else np.zeros(X.shape[1])
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            # squares that overflow or underflow are retried below, divided
            # by the maximum
            spread = _dense_spread(X, s, offset, ref=None)
        if not np.all(np.isfinite(spread) & ((spread == 0) | (spread > _TINY))):
            spread = _dense_spread(X, s, offset, ref=reference(_dense_maxabs(X)))
        elif np.any(spread == 0):  # constant, or varying below 1e-140?
            ref = _dense_maxabs(X)
            if np.any((ref > 0) & (ref < _TINY)):
                spread = _dense_spread(X, s, offset, ref=reference(ref))
    varying = is_varying(spread, offset)
    return offset, np.where(varying, spread, 1.0), varying


def spread_around(X: Matrix, s: Float64Array, columns, offset) -> Float64Array:
    """Weighted root mean square of ``X[:, columns] - offset`` (weights ``s``
    summing to one). Sparse ``X`` costs a pass over its stored entries, and
    only the columns that have a stored entry away from their offset, or a
    nonzero offset, are summed."""
    if not sp.issparse(X):
        return np.sqrt(s @ (np.asarray(X[:, columns], dtype=np.float64) - offset) ** 2)
    X = X if X.format == "csr" else sp.csr_array(X)
    d = X.shape[1]
    at = np.full(d, -1)
    at[columns] = np.arange(columns.size)
    off = np.zeros(d)
    off[columns] = offset
    held = np.zeros(d, dtype=bool)
    held[columns] = True
    entries = np.flatnonzero(held[X.indices])  # usually few: one gather
    cols = X.indices[entries]
    data = np.asarray(X.data[entries], dtype=np.float64)
    w = s[0] if s.min() > 0 else None  # equal weights need no row numbers
    if w is None:
        w = s[np.searchsorted(X.indptr, entries, side="right") - 1]
    away = cols[(data != off[cols]) & (w > 0)]
    spread = np.zeros(columns.size)
    summed = np.union1d(away, columns[offset != 0])
    if summed.size == 0:
        return spread
    mine = np.full(d, -1)
    mine[summed] = np.arange(summed.size)
    keep = mine[cols] >= 0
    j = mine[cols[keep]]
    w = np.broadcast_to(w, cols.shape)[keep]
    k = summed.size
    stored = _weighted_count(j, w * (data[keep] - off[summed][j]) ** 2, k)
    # the rows that do not store a column hold 0 there: (0 - offset)^2 each
    implicit = _implicit_weight(j, w, s, k)
    spread[at[summed]] = np.sqrt(stored + implicit * off[summed] ** 2)
    return spread


def _dense_mean(X, s):
    buf = _block_buffer(X)
    total = np.zeros(X.shape[1])
    for rows in _row_blocks(X):
        total += s[rows] @ _block(X, rows, buf)
    return total


def _dense_maxabs(X):
    out = np.zeros(X.shape[1])
    for rows in _row_blocks(X):
        np.maximum(out, np.abs(X[rows]).max(axis=0), out=out)
    return out


def _dense_spread(X, s, offset, ref):
    buf = _block_buffer(X)
    # the offsets repeated to a block's shape: subtracting equal shapes runs
    # as one flat loop, where broadcasting a row of d runs one short loop per
    # row (a 20,000 x 50 block pass: 0.50 -> 0.29 ms)
    offsets = np.broadcast_to(offset, buf.shape).copy()
    sq = np.zeros(X.shape[1])
    for rows in _row_blocks(X):
        m = rows.stop - rows.start
        block = np.subtract(X[rows], offsets[:m], out=buf[:m])
        if ref is not None:
            block /= ref
        block *= block
        sq += s[rows] @ block
    return np.sqrt(sq) if ref is None else ref * np.sqrt(sq)


def _sparse_entries(X):
    """(rows, cols, float64 values) of the stored entries, duplicates summed."""
    if X.format not in ("csr", "csc"):
        X = sp.csr_array(X)
    if not X.has_canonical_format:  # duplicates would be counted apart
        X = X.copy()
        X.sum_duplicates()
    n, d = X.shape
    if X.format == "csc":
        cols, rows = np.repeat(np.arange(d), np.diff(X.indptr)), X.indices
    else:
        cols, rows = X.indices, np.repeat(np.arange(n), np.diff(X.indptr))
    return rows, cols, np.asarray(X.data, dtype=np.float64)


def _implicit_weight(cols, w, s, length):
    """Per column, the weight of the rows that do not store it (its implicit
    zeros): 1 minus the weights ``w`` of its stored entries ``cols``, and
    exactly zero when every row of positive weight ``s`` stores it (the
    subtraction would leave round-off there, enough to make a constant column
    "vary")."""
    implicit = np.clip(1.0 - _weighted_count(cols, w, length), 0.0, None)
    full = np.bincount(cols[w > 0], minlength=length) >= np.count_nonzero(s > 0)
    implicit[full] = 0.0
    return implicit


def _weighted_count(index, weights, length):
    """``np.bincount`` as float64, also when there are no entries at all."""
    return np.bincount(index, weights=weights, minlength=length).astype(
        np.float64, copy=False
    )


def _sparse_column_stats(X, s, center):
    d = X.shape[1]
    rows, cols, data = _sparse_entries(X)
    w = s[rows]
    maxabs = np.zeros(d)
    np.maximum.at(maxabs, cols, np.abs(data))
    offset = _weighted_count(cols, w * data, d) if center else np.zeros(d)
    ref = np.where(maxabs > 0, maxabs, 1.0)
    # stored entries contribute s (x - mu)^2, implicit zeros s mu^2
    dev = (data - offset[cols]) / ref[cols]
    sq = _weighted_count(cols, w * dev * dev, d)
    sq += _implicit_weight(cols, w, s, d) * (offset / ref) ** 2
    return offset, ref * np.sqrt(sq)


def _needs_exact_centering(offset, spread):
    ratio = np.divide(offset**2, spread**2, out=np.zeros_like(offset), where=spread > 0)
    return bool(np.any(ratio > _SPARSE_CENTERING_RATIO))


@dataclass
class GramStats:
    """Weighted second moments of ``(X / ref, Y / yref)``, mergeable exactly.

    Each row block is centred at its own weighted means before its products
    are taken; blocks are merged with the pairwise update of Chan, Golub and
    LeVeque, which adds the outer product of the difference of the block
    means. No quantity is ever formed as ``E[x x'] - E[x] E[x]'``, so the
    result is as accurate as a two-pass computation, in one pass, and the
    merge is what a distributed reduction (Dask) needs.

    Attributes
    ----------
    weight : float
        Sum of the sample weights.
    mean, ymean : ndarray of shape (d,) and (k,)
        Weighted means.
    xx, xy, yy : ndarray of shape (d, d), (d, k), (k,)
        Weighted sums of centred products.
    ref, yref : ndarray of shape (d,) and (k,)
        Divisors applied to the values first (ones unless squares overflow).
    """

    weight: float
    mean: Float64Array
    ymean: Float64Array
    xx: Float64Array
    xy: Float64Array
    yy: Float64Array
    ref: Float64Array
    yref: Float64Array

    @classmethod
    def zeros(cls, d: int, k: int, ref=None, yref=None) -> GramStats:
        return cls(
            0.0,
            np.zeros(d),
            np.zeros(k),
            np.zeros((d, d)),
            np.zeros((d, k)),
            np.zeros(k),
            np.ones(d) if ref is None else ref,
            np.ones(k) if yref is None else yref,
        )

    def merge(self, other: GramStats) -> GramStats:
        """Add ``other``'s rows to these statistics (in place); returns self."""
        if other.weight == 0:
            return self
        return self.absorb(
            other.weight, other.mean, other.ymean, other.xx.copy(), other.xy, other.yy
        )

    def absorb(self, weight, mean, ymean, xx, xy, yy) -> GramStats:
        """Add the centred statistics of more rows (their weight, means and
        centred products; ``xx`` is taken over, not copied) in place:
        returns self."""
        if weight == 0:
            return self
        if self.weight == 0:
            self.weight, self.mean, self.ymean = weight, mean, ymean
            self.xx, self.xy, self.yy = xx, xy, yy
            return self
        total = self.weight + weight
        factor = self.weight * weight / total
        dx = mean - self.mean
        dy = ymean - self.ymean
        self.xx += xx
        # the between-block term, a rank-one update in place (symmetric, so
        # the C-ordered matrix is updated through its F-ordered transpose)
        self.xx = blas.dger(factor, dx, dx, a=self.xx.T, overwrite_a=True).T
        self.xy = self.xy + xy + factor * np.outer(dx, dy)
        self.yy = self.yy + yy + factor * dy**2
        self.mean = self.mean + dx * (weight / total)
        self.ymean = self.ymean + dy * (weight / total)
        self.weight = total
        return self

    def absorb_shifted(self, products) -> bool:
        """Add a block given as :func:`_shifted_products` of these
        statistics' means, in place; False (nothing added) where that
        shift would lose more than four digits of a column's spread.

        With ``P`` the block's shifted products, ``u`` its shifted sums and
        ``w`` its weight, the centred sums over all rows grow by ``P - u u'
        / (W + w)`` (the block's centring and the between-block term of
        :meth:`merge` in one rank-one update), and the means by ``u / (W +
        w)``. The update cancels a fraction ``w (u / w)^2 / spread^2`` of a
        product: a block whose mean moved far from the running one, in units
        of its own and the running spread, is refused.
        """
        d, k = self.mean.size, self.ymean.size
        weight = float(products[-1, -1])
        sums = products[-1, :-1]
        moved = sums / weight
        spread = np.maximum(
            np.diag(products)[:-1] / weight - moved * moved,
            np.r_[np.diag(self.xx), self.yy] / self.weight,
        )
        if not np.all(moved * moved <= _SHIFT_LOSS * spread):
            return False
        total = self.weight + weight
        self.xx += products[:d, :d]
        self.xx = blas.dger(
            -1.0 / total, sums[:d], sums[:d], a=self.xx.T, overwrite_a=True
        ).T
        self.xy = (
            self.xy + products[:d, d : d + k] - np.outer(sums[:d], sums[d:]) / total
        )
        self.yy = self.yy + np.diag(products)[d : d + k] - sums[d:] ** 2 / total
        self.mean = self.mean + sums[:d] / total
        self.ymean = self.ymean + sums[d:] / total
        self.weight = total
        return True

    def r2_score(self, coef, intercept) -> float:
        """The R^2 of ``X @ coef.T + intercept`` (original units; ``coef``
        of shape ``(k, d)``) on these rows, from the statistics alone: the
        residual sum of squares of each target is the square of its mean
        residual plus the centred quadratic form. Averaged over targets, with
        scikit-learn's values for a constant target (1.0 if predicted
        exactly, else 0.0)."""
        g = np.asarray(coef, dtype=np.float64) * self.ref  # (k, d), scaled units
        b = np.asarray(intercept, dtype=np.float64).reshape(-1)
        total = self.yref**2 * self.yy
        mean_residual = self.yref * self.ymean - g @ self.mean - b
        spread = (
            total
            - 2 * self.yref * np.einsum("kd,dk->k", g, self.xy)
            + np.einsum("kd,de,ke->k", g, self.xx, g)
        )
        residual = np.maximum(spread, 0.0) + self.weight * mean_residual**2
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(total > 0, 1 - residual / total, 0.0)
        r2 = np.where((total == 0) & (residual == 0), 1.0, r2)
        return float(np.mean(r2))

    def ordinary(self) -> bool:
        """:meth:`finite` and not :meth:`tiny`, in one look at the
        diagonal (a NaN fails both comparisons): what most data are."""
        second = np.concatenate((np.diagonal(self.xx), self.yy))
        floor = _TINY * _TINY * max(self.weight, 1e-300)
        return bool(second.max() < np.inf and second.min() >= floor)

    def finite(self) -> bool:
        return bool(
            np.all(np.isfinite(np.diag(self.xx))) and np.all(np.isfinite(self.yy))
        )

    def tiny(self) -> bool:
        """Whether a spread may have underflowed (a root mean square below
        ``1e-140``, zero included): the caller then looks at magnitudes."""
        second = np.r_[np.diag(self.xx), self.yy] / max(self.weight, 1e-300)
        return bool(np.any(second < _TINY * _TINY))


def gram_stats(X: Matrix, Y: Float64Array, s: Float64Array) -> GramStats:
    """:class:`GramStats` of in-memory data, one row block at a time.

    Sparse ``X`` uses sparse products when centring by formula is harmless
    and is densified one block at a time otherwise. Where squares overflow,
    the values are divided by each column's largest magnitude and the pass is
    repeated.
    """
    stats = _sparse_gram_stats(X, Y, s) if sp.issparse(X) else None
    if stats is None:
        stats = blockwise_gram_stats(X, Y, s)
    if stats.ordinary():
        return stats
    ref, yref = _maxabs(X), np.max(np.abs(Y), axis=0)
    if stats.finite() and not (out_of_range(ref) or out_of_range(yref)):
        return stats  # columns that are zero or constant, not tiny
    return blockwise_gram_stats(X, Y, s, reference(ref), reference(yref))


def reference(maxabs):
    """What to divide each column by: its largest magnitude (1 if zero)."""
    return np.where(maxabs > 0, maxabs, 1.0)


def out_of_range(maxabs) -> bool:
    """Whether a column's largest magnitude calls for :func:`reference`."""
    return bool(np.any((maxabs > _HUGE) | ((maxabs > 0) & (maxabs < _TINY))))


def blockwise_gram_stats(X, Y, s, ref=None, yref=None):
    """:class:`GramStats` of ``X`` (dense or sparse, any float dtype) one row
    block at a time, each block centred at its own means and merged in
    place (:meth:`GramStats.absorb`).

    Large inputs are split into two row ranges reduced by two threads
    (numpy's products release the GIL) while BLAS runs one thread each, and
    the two results merged: the same exact merge a cluster performs.

    Dense float ``X`` in C or F order, or with rows at a stride, goes
    through the compiled pass
    (:func:`sk_adam._kernel._gram_rows`: one read of the rows, tiles
    centred at their own means and merged the same way) once it is built:
    once this process's numpy passes have cost what building it does
    (:data:`sk_adam._kernel.PAYS_AFTER`).
    """
    compilable = _compiled_input(X, Y)
    kernel = compiled_stats() if compilable else None
    if kernel is not None:
        return _compiled_gram_stats(kernel, X, Y, s, ref, yref)
    start = time.perf_counter()
    uniform = bool(s.size) and s.min() == s.max()

    def part(bounds):
        return _reduce_rows(X, Y, s, ref, yref, uniform, *bounds)

    # BLAS one thread per Python thread while the two run
    stats = _by_halves(part, X, _THREADED_FLOPS, lambda: blas_threads(1))
    if compilable:
        count_spent("stats", time.perf_counter() - start)
    return stats


def _by_halves(part, X, flops, around=nullcontext):
    """``part((0, n))``, or where ``X`` has at least ``flops`` multiply-adds
    (and two CPUs), ``part`` of its two row halves in two threads (within
    the context ``around()``), merged exactly (as a cluster merges)."""
    n, d = X.shape
    if n * d * d < flops or usable_cpus() < 2:
        return part((0, n))
    with around(), ThreadPoolExecutor(2) as pool:
        first, second = pool.map(part, [(0, n // 2), (n // 2, n)])
    return first.merge(second)


def _compiled_input(X, Y) -> bool:
    """Whether the compiled pass reads ``X``: a dense float32 or float64
    array in C or F order, or whose rows are contiguous at a stride
    (columns cut from a wider C-ordered array), of at most
    :data:`_COMPILED_MAX_WIDTH` columns with the targets (other layouts
    would compile other versions)."""
    return (
        isinstance(X, np.ndarray)
        and X.dtype in (np.float32, np.float64)
        and (
            X.flags.c_contiguous
            or X.flags.f_contiguous
            or X.strides[1] == X.itemsize <= X.strides[0] // X.shape[1]
        )
        and X.shape[1] + Y.shape[1] <= _COMPILED_MAX_WIDTH
    )


def _compiled_gram_stats(kernel, X, Y, s, ref, yref) -> GramStats:
    """:class:`GramStats` from the compiled pass, by halves in two threads
    from :data:`_COMPILED_THREADED_FLOPS` (the kernel holds no lock)."""
    d, k = X.shape[1], Y.shape[1]
    scaled = ref is not None
    X = np.asarray(X)  # a memmap's plain array
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    s = np.ascontiguousarray(s, dtype=np.float64)
    ref_ = np.ones(d) if ref is None else np.asarray(ref, dtype=np.float64)
    yref_ = np.ones(k) if yref is None else np.asarray(yref, dtype=np.float64)
    tile = stats_tile(d + k)

    def part(bounds):
        weight, mean, ymean, xx, xy, yy = kernel(
            X, Y, s, ref_, yref_, scaled, *bounds, tile
        )
        if weight == 0:
            return GramStats.zeros(d, k, ref, yref)
        return GramStats(weight, mean, ymean, xx, xy, yy, ref_, yref_)

    return _by_halves(part, X, _COMPILED_THREADED_FLOPS)


_CONTROLLER = None


def blas_threads(limit: int):
    """A context in which BLAS runs at most ``limit`` threads."""
    return _blas().limit(limits=limit, user_api="blas")


def _blas():
    """threadpoolctl's controller, made once (it inspects the loaded
    libraries: 0.4 ms)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def _reduce_rows(X, Y, s, ref, yref, uniform, start, stop) -> GramStats:
    """The statistics of rows ``start:stop``, block by block, merged in
    place.

    The first block is centred at its own means (:func:`_centred_products`).
    Each later one is shifted by the means so far and its products, sums
    and weight taken by one BLAS call (:func:`_shifted_products`), then
    merged by :meth:`GramStats.absorb_shifted`; where the shift would cost
    more than four digits of a column's spread (a trend, a column constant
    so far), that block is centred exactly instead.
    """
    d, k = X.shape[1], Y.shape[1]
    stats = GramStats.zeros(d, k, ref, yref)
    step = max(1, _BLOCK_BYTES // (8 * max(d, 1)))
    size = max(0, min(step, stop - start))
    narrow, wide = None, None
    for lo in range(start, stop, step):
        rows = slice(lo, min(lo + step, stop))
        weights = s[rows]
        if uniform:
            weight = (rows.stop - lo) * float(s[lo])
        else:
            weight = float(np.add.reduce(weights))
        if weight == 0:
            continue
        y_block = np.array(Y[rows], dtype=np.float64)
        if yref is not None:
            y_block /= yref
        if stats.weight > 0 and d <= _SHIFTED_MAX_FEATURES:
            if wide is None:
                wide = np.empty((size, d + k + 1))
            products = _shifted_products(
                X[rows], y_block, weights, uniform, ref, wide, stats
            )
            if stats.absorb_shifted(products):
                continue
        if narrow is None:
            narrow = np.empty((size, d))
        stats.absorb(
            *_centred_products(X[rows], y_block, weights, weight, uniform, ref, narrow)
        )
    return stats


def _shifted_products(rows, y_block, s, uniform, ref, wide, running):
    """``P = B' S B`` for the block ``B = [X - mean, Y - ymean, 1]`` (the
    running statistics' means; rows as float64 in ``wide``): its shifted
    products, sums (last row) and weight (last entry) in one BLAS call,
    the block read once and written once."""
    m, d = rows.shape
    k = y_block.shape[1]
    block = wide[:m]
    if ref is not None or sp.issparse(rows):
        _fill(block[:, :d], rows, ref)
        block[:, :d] -= running.mean
    else:
        np.subtract(rows, running.mean, out=block[:, :d])
    np.subtract(y_block, running.ymean, out=block[:, d : d + k])
    block[:, d + k] = 1.0
    if not uniform:
        block *= np.sqrt(s)[:, None]
    products = block.T @ block  # BLAS syrk: the same buffer, transposed
    if uniform:
        products *= s[0]
    return products


def _fill(block, rows, ref) -> None:
    """``block[...] = rows / ref`` in float64 (sparse rows densified)."""
    if sp.issparse(rows) and rows.dtype == np.float64:
        rows.toarray(out=block)  # scipy writes only into its own dtype
    elif sp.issparse(rows):
        block[...] = rows.toarray()
    else:
        block[...] = rows
    if ref is not None:
        block /= ref


def _centred_products(rows, y_block, s, weight, uniform, ref=None, out=None):
    """Weight, means and weighted centred products of one block of rows
    (dense or sparse, any float dtype), centred into the float64 buffer
    ``out`` (``y_block`` is overwritten).

    Dense rows are read twice: once for their means, once to write them
    centred into the buffer, which the product then reads; nothing else
    touches the block.
    """
    m = rows.shape[0]
    block = np.empty(rows.shape) if out is None else out[:m]
    if ref is not None or sp.issparse(rows):
        _fill(block, rows, ref)
        rows = block
    # weighted sums as matrix-vector products: BLAS reads a narrow block
    # six times faster than add.reduce over its first axis
    mean = np.asarray(s @ rows, dtype=np.float64) / weight
    ymean = (s @ y_block) / weight
    np.subtract(rows, mean, out=block)
    y_block -= ymean
    weighted = y_block * s[:, None]
    yy = np.einsum("ik,ik->k", weighted, y_block)
    xy = block.T @ weighted
    if uniform:
        xx = block.T @ block  # BLAS syrk: the same buffer, transposed
        xx *= s[0]
    else:
        block *= np.sqrt(s)[:, None]
        xx = block.T @ block
    return weight, mean, ymean, xx, xy, yy


def _maxabs(X):
    if sp.issparse(X):
        return np.asarray(abs(X).max(axis=0).toarray(), dtype=np.float64).ravel()
    return _dense_maxabs(X)


def _sparse_gram_stats(X, Y, s):
    """Statistics from sparse products, or None where centring by the formula
    ``X'SX - W mu mu'`` would lose more than 4 digits (then go blockwise)."""
    mean, spread = _sparse_column_stats(X, s, center=True)
    if _needs_exact_centering(mean, spread):
        return None
    X = X if X.format in ("csr", "csc") else sp.csr_array(X)
    weighted = sp.csr_array(X.multiply(s[:, None]))
    weight = float(np.sum(s))
    ymean = (s @ Y) / weight
    Yc = Y - ymean
    mean = mean / weight if weight != 1.0 else mean
    xx = np.asarray((X.T @ weighted).toarray(), dtype=np.float64)
    xx -= weight * np.outer(mean, mean)
    xy = np.asarray(weighted.T @ Yc, dtype=np.float64)
    yy = np.einsum("i,ik,ik->k", s, Yc, Yc)
    d, k = X.shape[1], Y.shape[1]
    return GramStats(weight, mean, ymean, xx, xy, yy, np.ones(d), np.ones(k))


def target_stats(stats: GramStats, center: bool) -> tuple[Float64Array, Float64Array]:
    """The targets' weighted offsets and spreads, from :class:`GramStats`.

    The same quantities as :func:`column_stats` of ``Y`` (means and standard
    deviations when ``center``, else zeros and root mean squares), read off
    merged statistics instead of the rows: what a distributed fit has.
    """
    mean = stats.ymean * stats.yref
    second = stats.yy / stats.weight
    if not center:
        second = second + stats.ymean**2
    spread = stats.yref * np.sqrt(np.clip(second, 0.0, None))
    offset = mean if center else np.zeros(mean.size)
    return offset, spread


def _triangle(rows: Float64Array) -> Float64Array:
    """The triangular factor ``R`` of a QR decomposition of ``rows``
    (``R.T @ R == rows.T @ rows``), of shape ``(min(m, q), q)``; ``rows`` is
    overwritten. Householder QR is backward stable column by column, so
    columns of any scale keep their own relative precision."""
    m, q = rows.shape
    if m == 0:
        return np.zeros((0, q))
    factored, _, _, info = lapack.dgeqrf(np.asfortranarray(rows), overwrite_a=True)
    if info != 0:  # pragma: no cover - LAPACK refuses only invalid arguments
        raise np.linalg.LinAlgError(f"dgeqrf failed with info={info}")
    return np.triu(factored[: min(m, q)])


def _factor_rows(block, y_block, s):
    """Weight, means, and the rows ``sqrt(s) * ([X, Y] - means)`` of a
    block (``block`` float64, overwritten)."""
    weight = float(np.sum(s))
    mean = (s @ block) / weight
    ymean = (s @ y_block) / weight
    root = np.sqrt(s)[:, None]
    rows = np.empty((block.shape[0], block.shape[1] + y_block.shape[1]))
    np.subtract(block, mean, out=rows[:, : block.shape[1]])
    np.subtract(y_block, ymean, out=rows[:, block.shape[1] :])
    rows *= root
    return weight, mean, ymean, rows


#: Block size of LAPACK's triangular-pentagonal QR in :func:`_on_triangle`
#: (1,365 rows below a triangle of 36 columns: 199 us at 8, 364 us at 32,
#: 455 us for ``dgeqrf`` of the stack; 963 x 51: 226, 380 and 570 us).
_TP_BLOCK = 8


def _on_triangle(r: Float64Array, rows: Float64Array) -> Float64Array:
    """The triangular factor of ``[r; rows]``, ``r`` upper triangular: by
    LAPACK's triangular-pentagonal QR (``dtpqrt``), which works on ``rows``
    and leaves ``r``'s zeros alone (Householder reflections, backward
    stable as :func:`_triangle`; about half its time). ``r`` and ``rows``
    may be overwritten (as :func:`_triangle` overwrites its argument). A
    trapezoidal ``r`` (fewer rows seen than columns) goes through
    :func:`_triangle`."""
    q = rows.shape[1]
    if r.shape[0] < q:
        return _triangle(np.vstack([r, rows]))
    a, _, _, info = lapack.dtpqrt(
        0, min(_TP_BLOCK, q), np.asfortranarray(r), np.asfortranarray(rows),
        overwrite_a=1, overwrite_b=1,
    )  # fmt: skip
    if info != 0:  # pragma: no cover - LAPACK refuses only invalid arguments
        raise np.linalg.LinAlgError(f"dtpqrt failed with info={info}")
    return np.triu(a)


@dataclass
class FactorStats:
    """The centred weighted rows of ``(X / ref, Y / yref)`` as a triangular
    factor, mergeable exactly.

    ``r.T @ r`` equals the weighted sums of centred products of
    :class:`GramStats` (``[[xx, xy], [xy.T, Y'SY]]``), but ``r`` is computed
    from the rows by Householder QR, never from their products: it resolves
    the columns to the precision of their values, where the products square
    the condition number (a standardized design of condition number 1e8
    keeps eight digits here and none in its Gram matrix). Blocks are merged
    as :meth:`GramStats.merge` merges them, with the between-block term as
    one more row: ``r`` of ``[r_a; r_b; sqrt(w_a w_b / w) (mean_b -
    mean_a)]``: a tall-skinny QR, in one pass, that a distributed reduction
    computes the same way.

    Attributes
    ----------
    weight : float
        Sum of the sample weights.
    count : int
        Number of rows of positive weight.
    mean, ymean : ndarray of shape (d,) and (k,)
        Weighted means.
    r : ndarray of shape (m, d + k)
        Upper triangular (trapezoidal when fewer rows than columns were
        seen), ``m <= d + k``.
    ref, yref : ndarray of shape (d,) and (k,)
        Divisors applied to the values first (as in :class:`GramStats`).
    """

    weight: float
    count: int
    mean: Float64Array
    ymean: Float64Array
    r: Float64Array
    ref: Float64Array
    yref: Float64Array

    @classmethod
    def zeros(cls, d: int, k: int, ref=None, yref=None) -> FactorStats:
        return cls(
            0.0,
            0,
            np.zeros(d),
            np.zeros(k),
            np.zeros((0, d + k)),
            np.ones(d) if ref is None else ref,
            np.ones(k) if yref is None else yref,
        )

    def add(self, X, Y, s, out=None) -> FactorStats:
        """Add one row block (dense or sparse, any float dtype) in place;
        returns self. ``out`` is an optional float64 buffer of at least the
        block's shape."""
        n, d = X.shape
        if n == 0 or not np.sum(s) > 0:
            return self
        block = np.empty((n, d)) if out is None else out[:n]
        _fill(block, X, self.ref)
        weight, mean, ymean, rows = _factor_rows(block, Y / self.yref, s)
        return self._merge(weight, np.count_nonzero(s), mean, ymean, rows)

    def merge(self, other: FactorStats) -> FactorStats:
        """Add ``other``'s rows to these statistics (in place); returns self."""
        if other.weight == 0:
            return self
        return self._merge(other.weight, other.count, other.mean, other.ymean, other.r)

    def _merge(self, weight, count, mean, ymean, rows) -> FactorStats:
        self.count += int(count)
        if self.weight == 0:
            self.weight, self.mean, self.ymean = weight, mean, ymean
            self.r = _triangle(np.array(rows))
            return self
        total = self.weight + weight
        root = np.sqrt(self.weight * weight / total)
        between = root * np.r_[mean - self.mean, ymean - self.ymean]
        self.r = _on_triangle(self.r, np.vstack([rows, between[None, :]]))
        self.mean = self.mean + (mean - self.mean) * (weight / total)
        self.ymean = self.ymean + (ymean - self.ymean) * (weight / total)
        self.weight = total
        return self


#: Bytes of the row steps :func:`factor_stats` factors one at a time (one
#: thread; 250,000 rows, QR factors of 7 / 20 columns and a target, each
#: step merged by a QR of the stack: steps of 256 rows 78 / 104 ms, of
#: this size 21 / 59 ms, the whole block at once 43 ms at 7; 100,000 x 50:
#: 93 and 75 ms).
_FACTOR_STEP_BYTES = 384 * 2**10


def factor_stats(X: Matrix, Y: Float64Array, s: Float64Array, ref=None, yref=None):
    """:class:`FactorStats` of in-memory data, one row block at a time.

    Blocks hold :data:`_FACTOR_STEP_BYTES` of float64 values (at least
    256 rows and four times the columns), where LAPACK's QR runs in cache
    and the merges are few; ``ref`` and ``yref`` are those of the
    :class:`GramStats` of the same data. Large inputs are factored by
    halves in two threads, as the statistics are (LAPACK and numpy release
    the GIL), and the halves merged exactly; BLAS runs one thread.
    """
    d = X.shape[1]
    k = Y.shape[1]
    step = max(256, 4 * (d + k), _FACTOR_STEP_BYTES // (8 * (d + k)))

    def part(bounds):
        lo, hi = bounds
        stats = FactorStats.zeros(d, k, ref, yref)
        buf = np.empty((min(step, hi - lo), d))
        for start in range(lo, hi, step):
            rows = slice(start, min(start + step, hi))
            stats.add(X[rows], Y[rows], s[rows], out=buf)
        return stats

    # one BLAS thread: LAPACK's QR of steps this small runs slower on more
    # (1e6 x 35 in one Python thread: 465 ms with two, 422 ms with one;
    # with a QR of the stacked rows, 1.0 s and 0.49 s)
    with blas_threads(1):
        return _by_halves(part, X, _THREADED_FLOPS)
