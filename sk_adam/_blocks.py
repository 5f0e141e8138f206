"""Rows that arrive in blocks: sufficient statistics merged pass by pass.

Data that is not one in-memory array (a dask array's blocks on a cluster, a
file read in chunks) reaches the estimator as row blocks. Every block is
summarised into a :class:`~sk_adam._statistics.GramStats` (``d x d`` and
smaller) together with counts of the values that are not allowed, the
summaries are merged exactly, and the full-batch problem is built from the
merged statistics as for in-memory data: the rows themselves are never held
together. Where the problem is whitened, the same pass brings the QR factors
(:class:`~sk_adam._statistics.FactorStats`) of every block whose own Gram
matrix does not resolve it (:func:`shown_factors`).

:class:`BlockData` is what every kind of blocks shares (the statistics, the
problem, the coordinates, the shortfall and the mini-batch epochs); a kind
(:class:`sk_adam._dask.DaskData`, :class:`sk_adam._files.FileData`) says only
how one pass over its blocks runs and how an epoch loads them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import numpy as np
from sklearn.utils import assert_all_finite

from ._coordinates import Coordinates, Layout, target_scales_from_stats
from ._datafit import (
    GramLeastSquares,
    block_resolved,
    gram_problem,
    shortfall,
    whitens,
)
from ._epochs import BlockEpochs
from ._statistics import (
    FactorStats,
    GramStats,
    blockwise_gram_stats,
    factor_stats,
    out_of_range,
    reference,
)

__all__ = [
    "BlockData",
    "checked_summary",
    "factor_merge",
    "factor_summary",
    "merge",
    "raise_for",
    "shown_factors",
    "summary",
]

#: The estimator named in messages, as scikit-learn's validation names it.
NAME = "AdamRegressor"


def summary(x, y, s, ref=None, yref=None, factors=False) -> tuple:
    """Statistics of one block, with counts of the values that are not
    allowed: NaN and infinite values of X, y and the weights, negative
    weights, and the count of non-zero weights; with ``factors``, the
    block's QR factors where its Gram matrix does not resolve it
    (:func:`shown_factors`), else None.

    X and y are searched only where the statistics do not prove them
    finite: a NaN or infinite value in a row of positive weight makes a
    centred square non-finite (as in memory: ``ArrayData.problem``), so
    a block whose weights are all positive and whose statistics are finite
    holds none, and the pass reads its rows once (three more reads of X
    before: two searches and their counts).
    """
    stats, counts, _ = checked_summary(x, y, s, ref, yref)
    counts[4:] = _weight_counts(s)
    proven = stats.finite() and s.size > 0 and bool(np.min(s) > 0)
    if not proven:
        counts[:4] = _value_counts(x, y)
    shown = None
    if factors and not counts[:7].any():  # (else the pass is an error)
        shown = shown_factors(stats, x, y, s, ref, yref)
    return stats, counts, shown


def checked_summary(x, y, s, ref=None, yref=None, factors=False) -> tuple:
    """:func:`summary` of a block whose values its reader checked (finite,
    weights positive): the counts are known without a look."""
    with np.errstate(over="ignore", invalid="ignore"):
        # in cache-sized pieces with one reused buffer, as for in-memory data
        stats = blockwise_gram_stats(x, y, s, ref, yref)
    counts = np.zeros(8, dtype=np.int64)
    counts[7] = s.size
    shown = shown_factors(stats, x, y, s, ref, yref) if factors else None
    return stats, counts, shown


def shown_factors(stats, x, y, s, ref, yref) -> FactorStats | None:
    """The block's QR factors (:func:`factor_summary`) where its own Gram
    matrix does not resolve it (:func:`~sk_adam._datafit.block_resolved`),
    read from the rows the block's statistics were just taken from; None
    where it does, or where the statistics are not finite (the pass is then
    an error, or taken again on rescaled values). A block without positive
    weight adds nothing: its factors are empty."""
    if stats.weight > 0:
        with np.errstate(over="ignore", invalid="ignore"):
            if not stats.finite() or block_resolved(stats):
                return None
    return factor_summary(x, y, s, ref, yref)


def _value_counts(x, y) -> np.ndarray:
    return np.array(
        [
            np.count_nonzero(np.isnan(x)),
            np.count_nonzero(np.isinf(x)),
            np.count_nonzero(np.isnan(y)),
            np.count_nonzero(np.isinf(y)),
        ]
    )


def _weight_counts(s) -> np.ndarray:
    return np.array(
        [
            np.count_nonzero(np.isnan(s)),
            np.count_nonzero(np.isinf(s)),
            np.count_nonzero(s < 0),
            np.count_nonzero(s),
        ]
    )


def merge(a, b):
    """Two :func:`summary` results as one (exactly: GramStats.merge and
    FactorStats.merge); the factors only where both blocks brought them."""
    with np.errstate(over="ignore", invalid="ignore"):  # reported by the caller
        shown = None if a[2] is None or b[2] is None else a[2].merge(b[2])
        return a[0].merge(b[0]), a[1] + b[1], shown


def raise_for(counts, dtypes) -> None:
    """The error in-memory validation gives for the first value not allowed
    (X, then y, then the weights, of these dtypes), with its very message."""
    checks = (("X", NAME), ("y", NAME), ("sample_weight", None))
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


def factor_summary(x, y, s, ref, yref) -> FactorStats:
    """The :class:`FactorStats` (QR factors) of one block, in cache-sized
    steps of rows (:func:`~sk_adam._statistics.factor_stats`)."""
    return factor_stats(x, np.asarray(y, np.float64), s, ref, yref)


def factor_merge(a: FactorStats, b: FactorStats) -> FactorStats:
    return a.merge(b)


class BlockData:
    """Row blocks, answering what ``fit`` asks of
    :class:`sk_adam._data.ArrayData` from merged statistics.

    The statistics are computed once, on first use, and shared by the
    coordinates and the full-batch problem. A subclass provides one pass
    over its blocks (:meth:`reduce`), the columns' largest magnitudes
    (:meth:`max_abs`, for data whose squares overflow), relative weights
    (:meth:`relative_weights`) and the blocks of one epoch
    (:meth:`epoch_blocks`), or epochs of its own where the steps run where
    the blocks are (:meth:`epochs`, a cluster's).

    Parameters
    ----------
    one_d : bool
        Whether ``y`` was 1-D (fitted attributes then drop the target axis).
    """

    #: Whether the blocks' values were checked as they were read (finite,
    #: weights positive), so that a pass need not count them again.
    checked_values = False

    def __init__(self, *, one_d: bool) -> None:
        self.one_d = one_d
        self._stats = None
        # with the statistics, the QR factors of the blocks that need them
        # (asked for by a whitened problem); all blocks' or None
        self._with_factors = False
        self._factors = None

    # -- what a kind of blocks provides ----------------------------------

    def reduce(self, summarize: Callable, combine: Callable, *args):
        """``summarize(x, y, s, *args)`` of every block, merged with
        ``combine``: one pass over the blocks."""
        raise NotImplementedError

    def max_abs(self) -> tuple[np.ndarray, np.ndarray]:
        """The largest magnitude of every column of X and of Y (a pass)."""
        raise NotImplementedError

    def relative_weights(self) -> None:
        """Divide the weights by the largest (their sum overflowed)."""
        raise NotImplementedError

    def epoch_blocks(self, rng, shuffle: bool) -> Iterator[tuple]:
        """The in-memory ``(x, y, s)`` of every block, in one epoch's order."""
        raise NotImplementedError

    @property
    def dtypes(self) -> tuple:
        """The dtypes of X, Y and the weights (for validation messages)."""
        raise NotImplementedError

    # -- what every kind shares ------------------------------------------

    @property
    def dtype(self):
        return self.dtypes[0]

    def by_rows(self) -> BlockData:
        """Blocks are read as they are: nothing to convert."""
        return self

    def _pass(self, ref=None, yref=None) -> GramStats:
        summarize = checked_summary if self.checked_values else summary
        if self._with_factors:
            summarize = functools.partial(summarize, factors=True)
        stats, counts, self._factors = self.reduce(summarize, merge, ref, yref)
        raise_for(counts, self.dtypes)
        return stats

    def stats(self) -> GramStats:
        """The merged :class:`GramStats`, divided by the columns' largest
        magnitudes where squares overflow; weights whose sum overflows are
        divided by the largest (they are relative, as in memory)."""
        if self._stats is None:
            stats = self._pass()
            if not 0 < stats.weight < np.inf:
                # (the pass refused all-zero weights: the largest is > 0)
                self.relative_weights()
                stats = self._pass()
            if not stats.ordinary():
                # squares overflow or underflow: divide by the largest
                # magnitudes (as gram_stats does in memory)
                ref, yref = self.max_abs()
                ref = np.asarray(ref, dtype=np.float64)
                yref = np.asarray(yref, dtype=np.float64)
                if not stats.finite() or out_of_range(ref) or out_of_range(yref):
                    stats = self._pass(reference(ref), reference(yref))
            self._stats = stats
        return self._stats

    def exact_intercept(self, coef, intercept, offset):
        """``intercept`` as computed from the statistics: summing the
        residuals in extended precision would take another pass over the
        blocks (see :meth:`sk_adam._data.ArrayData.exact_intercept`)."""
        return intercept

    def problem(self, layout: Layout, *, precompute, whiten):
        """The full-batch problem on the merged statistics (always the
        statistics path, whatever ``precompute`` says: the rows are never
        held together).

        Where the Gram matrix cannot resolve the design, the whitening comes
        from its QR factors: a whitened problem asks the statistics pass for
        the factors of every block whose own Gram matrix does not resolve
        it, so that a design whose blocks all show their ill-conditioning
        costs one pass; where some block did not (the ill-conditioning lies
        between blocks, or the statistics were kept from an earlier pass),
        a second pass takes them all."""
        self._with_factors = whitens(whiten, layout)
        stats = self.stats()
        with np.errstate(over="ignore", invalid="ignore"):  # the solver reports
            y_offset, y_scale = target_scales_from_stats(stats, layout)

        problem = gram_problem(stats, y_offset, y_scale, layout, whiten, self.factors)
        return problem, problem.coords

    def factors(self, ref, yref) -> FactorStats:
        """The QR factors of all the rows, divided by ``ref`` and ``yref``
        (those of :meth:`stats`): brought by the statistics pass where every
        block brought its own, else a pass of their own (kept)."""
        if self._factors is None:
            self._factors = self.reduce(factor_summary, factor_merge, ref, yref)
        return self._factors

    def coordinates(self, layout: Layout) -> Coordinates:
        stats = self.stats()
        with np.errstate(over="ignore", invalid="ignore"):  # the solver reports
            y_offset, y_scale = target_scales_from_stats(stats, layout)
            return Coordinates.from_stats(stats, y_offset, y_scale, layout)

    def shortfall(self, coords: Coordinates, problem=None):
        """As :meth:`sk_adam._data.ArrayData.shortfall`, from the merged
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
        """Mini-batch epochs that load the blocks one at a time."""
        return BlockEpochs(
            lambda: self.epoch_blocks(rng, shuffle), coords, adam, rng,
            size=size, shuffle=shuffle,
        )  # fmt: skip
