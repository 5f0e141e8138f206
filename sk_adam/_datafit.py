r"""The weighted least-squares objective, behind one protocol.

Per target the objective, in the working coordinates of
:mod:`sk_adam._coordinates`, is

.. math::

    f_k(w, b) = \tfrac12 \frac{\sum_i s_i
    (\tilde y_{ik} - \tilde x_i \cdot w_k - b_k)^2}{\sum_i s_i},

where the intercept ``b`` is a parameter when it is fitted without
standardization, and in streams (otherwise the centring makes it exact).

Every objective answers the epochs of :mod:`sk_adam._epochs` through the
:class:`Datafit` protocol: :meth:`~Datafit.evaluate` the per-target MSE at
the parameters, then :meth:`~Datafit.gradient` at the same parameters.

:class:`GramLeastSquares`
    The full-batch objective from :math:`G = \tilde X^\top S \tilde X`,
    :math:`c = \tilde X^\top S \tilde Y` and :math:`\tilde Y^\top S
    \tilde Y`; every evaluation costs ``O(p^2 k)`` whatever ``n`` is.
:class:`RowLeastSquares`
    The objective on rows of ``X``, by products with them: all the rows
    (full batch, ``O(nnz(X) k)`` per evaluation) or the rows of a mini-batch
    or chunk, chosen by :meth:`~RowLeastSquares.select`. Centring and scaling
    are applied implicitly, so ``X`` is used as given, never copied whole.

:func:`least_squares_problem` builds a full-batch problem, choosing between
the two (:func:`use_gram`, the ``precompute`` policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.linalg import lapack

from ._coordinates import (
    Coordinates,
    Layout,
    target_scales_from_stats,
)
from ._statistics import FactorStats, GramStats, Matrix, factor_stats, gram_stats

__all__ = [
    "Datafit",
    "GramLeastSquares",
    "RowLeastSquares",
    "WhitenedLeastSquares",
    "block_resolved",
    "excess_mse",
    "gram_problem",
    "least_squares_problem",
    "shortfall",
    "use_gram",
    "whitens",
]

Float64Array = NDArray[np.float64]

#: Row products write into kept buffers from this many rows on (a full
#: batch: no allocation per iteration); below, into new arrays, which costs
#: less per call (a mini-batch of 256 x 50: about 1 us of 19).
_REUSE_FROM = 2048
#: precompute=True: refuse a Gram matrix larger than this.
_MAX_GRAM_BYTES = 2 * 2**30
#: precompute="auto": no Gram matrix above this many features.
_AUTO_MAX_FEATURES = 2048
#: Whitening from the Gram matrix's Cholesky factor is exact enough (an R^2
#: within 1e-10 of least squares) while the standardized design's condition
#: number, as LAPACK estimates it from the factor, is below this; above it
#: (or where the factor does not exist), the whitening comes from a QR of the
#: rows (:class:`~sk_adam._statistics.FactorStats`).
_GRAM_CONDITION = 1e4
#: A block of rows is judged as resolved by its Gram matrix only below a
#: quarter of :data:`_GRAM_CONDITION` (:func:`block_resolved`): the whole
#: design, centred and scaled as a whole, can be a little worse than its
#: blocks.
_BLOCK_MARGIN = 4.0
#: Directions of the standardized design whose singular value is below this
#: many times ``eps * largest`` per column are at the precision of the
#: values themselves: no fit can resolve them, and they are held at zero
#: (the minimum-norm solution, as lstsq's cutoff gives).
_RANK_RTOL = 1.0
#: A held direction is reported when it carries more than this fraction of a
#: target's variance and more than ``_HELD_NOISE`` times the residual
#: variance per remaining degree of freedom: the share that a direction set
#: by round-off alone (at random in the residual's space) would carry on
#: average, so that only a direction the data determine is reported.
_HELD_SIGNAL = 1e-6
_HELD_NOISE = 100.0


class Datafit(Protocol):
    """What an epoch asks of an objective (the solver never sees one).

    ``params`` are ``(n_params, n_targets)`` float64 arrays in the working
    coordinates of ``coords``; MSEs are per target, in working units.
    """

    coords: Coordinates
    n_params: int
    n_targets: int

    def evaluate(self, params: Float64Array) -> Float64Array:
        """Per-target weighted MSE at ``params``; keeps what
        :meth:`gradient` needs."""

    def gradient(self, out: Float64Array) -> Float64Array:
        """The gradient at the parameters of the last :meth:`evaluate`,
        written into ``out`` and returned."""

    def gap(self) -> Float64Array | None:
        """How far the MSE of the last :meth:`evaluate` lies above the
        least-squares minimum, per target, where that is known exactly
        (:class:`WhitenedLeastSquares`), else None."""


class RowLeastSquares:
    """The objective on rows of ``X``, from products with them.

    :meth:`select` chooses the rows (all of them once for a full-batch fit;
    each mini-batch or chunk in turn otherwise); :meth:`evaluate` then
    returns their weighted MSE at ``params`` and keeps the weighted
    residuals that :meth:`gradient` needs, so one step costs one product
    with the rows and one with their transpose. Products are computed in
    ``X``'s own dtype (float32 stays float32: no upcast copy of ``X``);
    everything else is float64, in buffers kept from one call to the next.
    With one target, 1-D vectors are used throughout, so that BLAS and scipy
    run their matrix-vector kernels. With whitened coordinates (``w = T
    theta``) the objective is taken at ``T theta`` and its gradient returned
    as ``T.T g``.

    A mini-batch of a few hundred rows costs two small products and a
    handful of vector operations: a few microseconds of arithmetic, where
    the fixed cost of each numpy call counts as much, hence the lean code.

    Parameters
    ----------
    coords : Coordinates
        The working coordinates, fixed beforehand (from the whole training
        set in ``fit``, from the first chunk of a stream).
    dtype : numpy dtype
        The dtype of the rows that :meth:`select` will be given.
    n_targets : int
        Number of targets ``k``.
    """

    def __init__(self, coords: Coordinates, dtype, n_targets: int) -> None:
        d = coords.x_scale.size
        one = n_targets == 1
        self.coords = coords
        self.n_params = coords.n_params
        self.n_targets = n_targets
        self._d, self._one = d, one
        self._dtype = np.dtype(dtype)
        self._native = self._dtype == np.float64
        self._center = bool(np.any(coords.x_offset))
        self._intercept = coords.intercept
        self._shifted = self._center or coords.intercept
        self._constant = np.flatnonzero(~coords.varying)
        self._whitening = coords.whitening
        # per-feature vectors shaped like a target's column of parameters
        self._scale = coords.x_scale if one else coords.x_scale[:, None]
        self._offset = coords.x_offset if one else coords.x_offset[:, None]
        self._factor = np.empty_like(self._scale)  # -1 / (scale * weight)
        self._factor_weight = None
        shape = (d,) if one else (d, n_targets)
        self._u = np.empty(shape)
        self._u_native = self._u if self._native else np.empty(shape, dtype)
        self._xtz = None if self._native else np.empty(shape, dtype)
        self._theta = np.empty((self.n_params, n_targets))
        self._inner = np.empty((self.n_params, n_targets))
        self._mse = np.empty(n_targets)
        self._capacity, self._sparse = -1, None

    @classmethod
    def full_batch(cls, X, Y_work, s, coords) -> RowLeastSquares:
        """All the rows of ``X`` at once, targets ``(n, k)`` in working units
        and weights ``s`` (equal weights are recognised and folded into the
        final scaling)."""
        problem = cls(coords, X.dtype, Y_work.shape[1])
        uniform = bool(np.all(s == s[0]))
        y = Y_work[:, 0] if Y_work.shape[1] == 1 else Y_work
        problem.select(X, y, None if uniform else s)
        return problem

    def _rows_shape(self, m: int) -> tuple[int, ...]:
        return (m,) if self._one else (m, self.n_targets)

    def _buffers(self, m: int, sparse: bool) -> None:
        """Row buffers for ``m`` rows (kept, and reused for fewer); the
        weighted residuals' only when weights come (:meth:`select`)."""
        shape = self._rows_shape(m)
        self._pred = None if sparse else np.empty(shape, self._dtype)
        self._r = None if self._native else np.empty(shape)
        self._z_native = None if self._native else np.empty(shape, self._dtype)
        self._weighted = None
        self._capacity, self._sparse = m, sparse

    def select(self, X: Matrix, Y: Float64Array, s: Float64Array | None) -> float:
        """Work on these rows from now on; returns their total weight.

        ``Y`` are their targets in working units (1-D with one target),
        ``s`` their weights, None when they are all equal. A total weight
        of zero means that the rows carry no information.
        """
        m = X.shape[0]
        sparse = sp.issparse(X)
        if m > self._capacity or sparse != self._sparse:
            self._buffers(m, sparse)
        if s is not None and self._weighted is None:
            self._weighted = np.empty(self._rows_shape(self._capacity))
        self.X, self._XT, self._y, self._m = X, X.T, Y, m
        if s is None:
            self._s = None
            self.weight = float(m)
        else:
            self._s = s if self._one else s[:, None]
            self.weight = float(np.add.reduce(s))
        return self.weight

    def evaluate(self, params: Float64Array) -> Float64Array:
        """Per-target weighted MSE (working units) at ``params``."""
        if self._whitening is not None:
            params = np.matmul(self._whitening, params, out=self._theta)
        d, m = self._d, self._m
        w = params[:d, 0] if self._one else params[:d]
        u = np.divide(w, self._scale, out=self._u)
        if not self._native:
            self._u_native[...] = u
        if self._sparse or m < _REUSE_FROM:
            pred = self.X @ self._u_native
        else:
            pred = np.matmul(self.X, self._u_native, out=self._pred[:m])
        # in float64 the residual overwrites the prediction while it is still
        # in cache; in float32 it goes to a float64 buffer
        r = np.subtract(self._y, pred, out=pred if self._native else self._r[:m])
        if self._shifted:  # the residual's constant part: offset @ u - b
            if self._one:
                shift = float(self._offset @ u)
                if self._intercept:
                    shift -= float(params[d, 0])
            else:
                shift = self.coords.x_offset @ u
                if self._intercept:
                    shift -= params[d]
            r += shift
        z = r if self._s is None else np.multiply(self._s, r, out=self._weighted[:m])
        self._z = z
        mse = self._mse
        if self._one:
            mse[0] = np.dot(z, r) / self.weight
        else:
            np.einsum("ik,ik->k", z, r, out=mse)
            mse /= self.weight
        return mse

    def gap(self) -> None:
        """Not known without solving."""

    def gradient(self, out: Float64Array) -> Float64Array:
        """Gradient at the parameters of the last :meth:`evaluate`."""
        T = self._whitening
        target = out if T is None else self._inner
        self._gradient(target)
        if T is not None:
            np.matmul(T.T, target, out=out)
        return out

    def _gradient(self, out: Float64Array) -> None:
        d, z = self._d, self._z
        grad = out[:d, 0] if self._one else out[:d]
        if self._native:
            z_native = z
        else:
            z_native = self._z_native[: self._m]
            z_native[...] = z
        # X'z lands in grad (dense float64), a buffer (float32) or a new
        # array (sparse); the final scaling writes it into grad
        if self._sparse or self._m < _REUSE_FROM:
            xtz = self._XT @ z_native
        else:
            xtz = np.matmul(self._XT, z_native, out=grad if self._native else self._xtz)
        if self._shifted:
            total = np.add.reduce(z, axis=0)
            if self._center:
                xtz -= self._offset * total
            if self._intercept:
                out[d] = -total / self.weight
        if self._factor_weight != self.weight:  # cached per batch weight
            np.divide(-1.0 / self.weight, self._scale, out=self._factor)
            self._factor_weight = self.weight
        np.multiply(xtz, self._factor, out=grad)
        if self._constant.size:
            out[self._constant] = 0.0


@dataclass
class GramLeastSquares:
    """The objective evaluated from its sufficient statistics.

    Attributes
    ----------
    gram : ndarray of shape (p, p)
        :math:`\\tilde X^\\top S \\tilde X`, with the intercept's row and
        column (the weighted column sums, and 1) when it is a parameter.
    cross : ndarray of shape (p, k)
        :math:`\\tilde X^\\top S \\tilde Y` (and the weighted target sums).
    yy : ndarray of shape (k,)
        :math:`\\sum_i s_i \\tilde y_{ik}^2`.
    coords : Coordinates
        The working coordinates, including the whitening when there is one.

    Notes
    -----
    The MSE ``yy - 2 w.c + w.G w`` cancels near the optimum: evaluated as
    written it is accurate only to about ``1e-16 * yy`` in absolute terms, and
    coefficients chosen by comparing such values would be resolved only to
    the square root of that. So each target keeps an *anchor*, the best point
    evaluated so far, and a new point ``w = a + delta`` is evaluated as

    .. math::

        \\mathrm{MSE}(w) = \\mathrm{MSE}(a)
        + \\delta^\top \\left(2 (G a - c) + G w - G a\right),

    whose error shrinks with ``delta``. Comparisons between nearby iterates
    are then as precise as the gradient, while the absolute level keeps the
    ``1e-16 * yy`` error of the first evaluation (so a value may be a tiny
    negative number for an exact fit).
    """

    gram: Float64Array
    cross: Float64Array
    yy: Float64Array
    coords: Coordinates

    def __post_init__(self) -> None:
        p, k = self.cross.shape
        self.n_params = p
        self.n_targets = k
        self._gp = np.empty((p, k))
        self._delta = np.empty((p, k))
        self._tmp = np.empty((p, k))
        self._mse = np.empty(k)
        self._anchor: Float64Array | None = None

    def _set_anchor(self, params, gp, mse, which=slice(None)):
        self._anchor[:, which] = params[:, which]
        self._anchor_gp[:, which] = gp[:, which]
        self._anchor_grad2[:, which] = 2.0 * (gp[:, which] - self.cross[:, which])
        self._anchor_mse[which] = mse[which]

    @classmethod
    def from_stats(
        cls, stats: GramStats, coords: Coordinates, center: bool
    ) -> GramLeastSquares:
        """The working-coordinate problem from merged :class:`GramStats`.

        ``coords`` is the map :meth:`Coordinates.from_stats` made from the
        same statistics (not whitened); ``center`` whether its feature
        offsets are the weighted means.
        """
        d = stats.mean.size
        W = stats.weight
        mean = stats.mean  # in units of stats.ref
        moved = np.zeros(d) if center else mean  # weighted mean - offset
        yref = np.where(stats.yref > 0, stats.yref, 1.0)
        dy = stats.ymean - coords.y_offset / yref
        gxx = (stats.xx + W * np.outer(moved, moved)) / W
        gxy = (stats.xy + W * np.outer(moved, dy)) / W
        gyy = (stats.yy + W * dy**2) / W
        varying = coords.varying
        factor = stats.ref / coords.x_scale
        yfactor = stats.yref / coords.y_scale
        gram = gxx * np.outer(factor, factor)
        cross = gxy * np.outer(factor, yfactor)
        yy = gyy * yfactor**2
        gram[~varying] = 0.0
        gram[:, ~varying] = 0.0
        cross[~varying] = 0.0
        if coords.intercept:  # raw coordinates: the column sums and target sums
            colsum = mean * stats.ref
            gram = np.block(
                [[gram, colsum[:, None]], [colsum[None, :], np.ones((1, 1))]]
            )
            cross = np.vstack([cross, dy * yfactor])
        return cls(gram, cross, yy, coords)

    minimum = None  # the least-squares MSE is not known in advance

    def gap(self) -> None:
        """Not known without solving."""

    def evaluate(self, params: Float64Array) -> Float64Array:
        """Per-target weighted MSE (working units) at ``params``."""
        gp = np.matmul(self.gram, params, out=self._gp)
        mse = self._mse
        if self._anchor is None:  # first evaluation: the formula as written
            np.subtract(gp, 2.0 * self.cross, out=self._tmp)
            np.einsum("jk,jk->k", params, self._tmp, out=mse)
            mse += self.yy
            self._anchor = np.empty_like(params)
            self._anchor_gp = np.empty_like(params)
            self._anchor_grad2 = np.empty_like(params)
            self._anchor_mse = np.empty_like(mse)
            self._set_anchor(params, gp, mse)
            return mse
        delta = np.subtract(params, self._anchor, out=self._delta)
        tmp = np.subtract(gp, self._anchor_gp, out=self._tmp)
        tmp += self._anchor_grad2
        np.einsum("jk,jk->k", delta, tmp, out=mse)
        mse += self._anchor_mse
        improved = mse < self._anchor_mse
        if improved.any():
            self._set_anchor(params, gp, mse, improved)
        return mse

    def gradient(self, out: Float64Array) -> Float64Array:
        """Gradient at the parameters of the last :meth:`evaluate`."""
        return np.subtract(self._gp, self.cross, out=out)


@dataclass
class WhitenedLeastSquares:
    """The objective in whitened coordinates, where its Hessian is the
    identity: ``MSE(theta) = minimum + ||theta - cross||^2`` per target.

    Attributes
    ----------
    cross : ndarray of shape (p, k)
        The least-squares solution in these coordinates (zero on the axes
        held at zero), with ``||cross||^2`` the fit's R^2 in units of the
        targets' working variance.
    minimum : ndarray of shape (k,)
        The least-squares MSE per target (working units), computed as the
        norm of a residual, without cancellation.
    coords : Coordinates
        The working coordinates, whitened.
    notes : tuple of str
        What the caller should tell its user (a held direction that carries
        signal).

    Each evaluation costs ``O(p k)``; the distance to the minimum is known
    exactly at every iterate (:meth:`gap`), which the solver's optimum rule
    uses: without cancellation, so that it is resolved far below the MSE's
    own round-off.
    """

    cross: Float64Array
    minimum: Float64Array
    coords: Coordinates
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        p, k = self.cross.shape
        self.n_params, self.n_targets = p, k
        self._diff = np.empty((p, k))
        self._gap = np.empty(k)
        self._mse = np.empty(k)

    def evaluate(self, params: Float64Array) -> Float64Array:
        """Per-target weighted MSE (working units) at ``params``."""
        diff = np.subtract(params, self.cross, out=self._diff)
        np.einsum("jk,jk->k", diff, diff, out=self._gap)
        return np.add(self.minimum, self._gap, out=self._mse)

    def null_loss(self) -> Float64Array:
        """The MSE per target at ``theta = 0`` (``minimum + ||cross||^2``):
        the scale against which the optimum rule measures the gap, the same
        whatever point a fit starts from."""
        return self.minimum + np.einsum("jk,jk->k", self.cross, self.cross)

    def gap(self) -> Float64Array:
        """How far the MSE of the last :meth:`evaluate` lies above the
        least-squares minimum, per target."""
        return self._gap

    def gradient(self, out: Float64Array) -> Float64Array:
        """Gradient at the parameters of the last :meth:`evaluate`."""
        np.copyto(out, self._diff)
        return out


def _kept(coords: Coordinates) -> NDArray[np.intp]:
    """The parameters that are not held at zero: varying columns, and the
    intercept when it is a parameter."""
    return np.flatnonzero(np.r_[coords.varying, np.ones(int(coords.intercept), bool)])


def whitens(whiten: bool | str, layout: Layout) -> bool:
    """Whether the full-batch problem is whitened: ``whiten`` True, or
    'auto' with standardized coordinates (``standardize=False`` asks for
    Adam on the data as given)."""
    return whiten is True or (whiten == "auto" and layout.standardize)


def block_resolved(stats: GramStats) -> bool:
    """Whether one block's Gram matrix resolves the block's own
    standardized design, judged as :func:`cholesky_whitened` judges a whole
    design with a margin of :data:`_BLOCK_MARGIN` (columns constant in the
    block left out). A block that is not resolved brings its QR factors
    with its statistics (see :mod:`sk_adam._blocks`): a design the Gram
    matrix does not resolve is, as a rule, not resolved in its blocks
    either (near-collinear columns, polynomial features), and the pass
    then brings everything the whitening needs."""
    spread = np.diagonal(stats.xx)
    varying = np.flatnonzero(spread > 0)
    if varying.size == 0:
        return True
    root = np.sqrt(spread[varying])
    corr = stats.xx[np.ix_(varying, varying)] / np.outer(root, root)
    return _resolving_factor(corr, _BLOCK_MARGIN) is not None


def _resolving_factor(gram, margin: float = 1.0):
    """The lower Cholesky factor ``L`` of ``gram``, or None where it does
    not exist or the estimated condition number of ``L`` (the design's)
    exceeds ``_GRAM_CONDITION / margin``: the Gram matrix then no longer
    resolves the design."""
    L, info = lapack.dpotrf(gram, lower=1, clean=1)
    if info != 0:
        return None
    rcond, info = lapack.dtrcon(L, norm="1", uplo="L")
    if info != 0 or not rcond * _GRAM_CONDITION >= margin:
        return None
    return L


def cholesky_whitened(problem: GramLeastSquares) -> WhitenedLeastSquares | None:
    """``problem`` whitened by the Cholesky factor of its Gram matrix, ``G =
    L L'`` and ``w = L^{-T} theta`` (on the constant columns, zero), or None
    where the factor does not exist or the design's estimated condition
    number exceeds ``_GRAM_CONDITION`` (the Gram matrix then no longer
    resolves it: see :func:`factor_whitened`). Costs ``O(p^3 / 3)``.

    The triangular map keeps the order of the columns: an orthogonal
    standardized design is whitened by the identity, and the first axis is
    the first feature.
    """
    kept, p = _kept(problem.coords), problem.n_params
    if kept.size == 0 or not np.all(np.isfinite(problem.gram)):
        return None
    L = _resolving_factor(problem.gram[np.ix_(kept, kept)])
    if L is None:
        return None
    inverse, _ = lapack.dtrtri(L, lower=1)
    cross = np.zeros_like(problem.cross)
    cross[kept] = inverse @ problem.cross[kept]
    T, unwhiten = np.zeros((p, p)), np.zeros((p, p))
    T[np.ix_(kept, kept)] = inverse.T
    unwhiten[np.ix_(kept, kept)] = L.T
    minimum = problem.yy - np.einsum("jk,jk->k", cross, cross)
    coords = problem.coords.whitened(T, unwhiten)
    return WhitenedLeastSquares(cross, minimum, coords)


def _design_factor(stats: FactorStats, coords: Coordinates, center: bool):
    """``F`` and ``z`` with ``MSE(w) = ||F w - z||^2`` per target column
    (working coordinates, kept columns only): the rows of ``stats.r``
    scaled to the working units, and, where the working coordinates are not
    centred, one row for the means (and the intercept's column)."""
    d = stats.mean.size
    root = np.sqrt(stats.weight)
    factor = stats.ref / coords.x_scale
    yfactor = np.where(stats.yref > 0, stats.yref, 1.0) / coords.y_scale
    F = stats.r[:, :d] * (factor / root)
    z = stats.r[:, d:] * (yfactor / root)
    moved = np.zeros(d) if center else stats.mean * factor
    dy = (stats.ymean * stats.yref - coords.y_offset) / coords.y_scale
    if coords.intercept:
        F = np.hstack([F, np.zeros((F.shape[0], 1))])
        moved = np.r_[moved, 1.0]
    F = np.vstack([F, moved[None, :]])[:, _kept(coords)]
    return F, np.vstack([z, dy[None, :]])


def factor_whitened(
    stats: FactorStats, coords: Coordinates, center: bool
) -> WhitenedLeastSquares:
    """The problem whitened by the singular value decomposition of the
    design's triangular factor (:class:`~sk_adam._statistics.FactorStats`):
    ``F = U S V'`` and ``w = V S^{-1} theta``, the principal axes of the
    standardized design scaled to unit curvature.

    ``S`` is as precise as the values of the design (a condition number of
    ``1e12`` keeps four digits), not as its Gram matrix. Directions whose
    singular value is below ``_RANK_RTOL * p * eps`` times the largest are
    below that precision: they are held at zero, which is the minimum-norm
    solution along them, and a held direction that carries more than
    ``_HELD_SIGNAL`` of a target's variance is reported in ``notes``.
    """
    kept, p = _kept(coords), coords.n_params
    F, z = _design_factor(stats, coords, center)
    U, S, Vt = np.linalg.svd(F, full_matrices=False)
    cut = (
        _RANK_RTOL * max(kept.size, 1) * np.finfo(np.float64).eps * S[:1].max(initial=0)
    )
    free = S > cut
    projected = U.T @ z
    cross = np.zeros((p, z.shape[1]))
    T, unwhiten = np.zeros((p, p)), np.zeros((p, p))
    axes = kept[: S.size]  # one parameter per singular value, in order
    T[np.ix_(kept, axes[free])] = Vt[free].T / S[free]
    unwhiten[np.ix_(axes[free], kept)] = Vt[free] * S[free, None]
    cross[axes[free]] = projected[free]
    residual = z - U[:, free] @ projected[free]
    minimum = np.einsum("ik,ik->k", residual, residual)
    dof = max(stats.count - int(free.sum()) - 1, 1)
    notes = _held_signal(projected[~free], z, minimum / dof)
    return WhitenedLeastSquares(cross, minimum, coords.whitened(T, unwhiten), notes)


def _held_signal(held, z, noise) -> tuple[str, ...]:
    """The note for directions held at zero that carry signal: more than
    ``_HELD_SIGNAL`` of a target's variance, and more than ``_HELD_NOISE``
    times the residual ``noise`` per degree of freedom."""
    if held.shape[0] == 0:
        return ()
    variance = np.einsum("ik,ik->k", z[:-1], z[:-1])  # the centred part
    carried = held * held
    signal = (carried > _HELD_SIGNAL * variance) & (carried > _HELD_NOISE * noise)
    if not signal.any():
        return ()
    share = float(np.max(carried.sum(axis=0) / np.where(variance > 0, variance, 1)))
    return (
        f"{int(signal.any(axis=1).sum())} direction(s) of the standardized "
        f"design have singular values at the precision of its values (below "
        f"{_RANK_RTOL:g} x n_features x eps of the largest) yet carry "
        f"{share:.2g} of the target's variance: no fit on these values "
        f"resolves them, and the coefficients are the minimum-norm ones along "
        f"them. Remove the near-duplicate columns, or compute the features in "
        f"higher precision.",
    )


def use_gram(X: Matrix, precompute: bool | str) -> bool:
    """Whether to solve from the statistics (``precompute='auto'`` rule).

    The statistics cost one pass over ``X`` (``O(n d^2)`` dense) and a
    ``d x d`` matrix, then ``O(d)`` per iteration once whitened; the direct
    path costs ``O(nnz(X))`` per iteration and cannot whiten. ``'auto'``
    takes the statistics whenever the matrix is small (``d <= 2048``: at
    most 32 MiB), whatever ``n`` is (a design wider than tall is then
    whitened too, and solved to its minimum-norm fit), and, for sparse
    ``X``, when an iteration on it is no dearer than on the stored entries
    (``d^2 <= 2 nnz``).
    """
    d = X.shape[1]
    if precompute is True and 8 * (d + 1) ** 2 > _MAX_GRAM_BYTES:
        raise ValueError(
            f"precompute=True needs a {d} x {d} float64 Gram matrix "
            f"({8 * d * d / 2**30:.1f} GiB), more than the "
            f"{_MAX_GRAM_BYTES / 2**30:.0f} GiB allowed. Use "
            f"precompute='auto' or False to work from products with X."
        )
    if precompute != "auto":
        return bool(precompute)
    if d > _AUTO_MAX_FEATURES:
        return False
    return not sp.issparse(X) or d * d <= 2 * X.nnz


def gram_problem(
    stats: GramStats,
    y_offset: Float64Array,
    y_scale: Float64Array,
    layout: Layout,
    whiten: bool | str,
    exact=None,
) -> GramLeastSquares | WhitenedLeastSquares:
    """The full-batch problem on merged statistics (in memory or from a
    cluster), whitened when ``whiten`` is True, or 'auto' and the
    coordinates are standardized.

    The whitening comes from the Cholesky factor of the Gram matrix
    (:func:`cholesky_whitened`) where that resolves the design, else from
    ``exact(ref, yref)``, the design's
    :class:`~sk_adam._statistics.FactorStats` (a second pass over the rows,
    taken only then; :func:`factor_whitened`).
    """
    with np.errstate(over="ignore", invalid="ignore"):  # the solver reports
        coords = Coordinates.from_stats(stats, y_offset, y_scale, layout)
        problem = GramLeastSquares.from_stats(stats, coords, layout.center)
        # 'auto' whitens standardized coordinates; standardize=False asks
        # for Adam on the data as given
        if not whitens(whiten, layout):
            return problem
        if not np.all(np.isfinite(problem.gram)):
            return problem
        whitened = cholesky_whitened(problem)
        if whitened is None and exact is not None and _kept(coords).size:
            whitened = factor_whitened(
                exact(stats.ref, stats.yref), coords, layout.center
            )
        return problem if whitened is None else whitened


def least_squares_problem(
    X: Matrix,
    Y: Float64Array,
    s: Float64Array,
    *,
    fit_intercept: bool,
    standardize: bool,
    precompute: bool | str,
    whiten: bool | str = False,
) -> tuple[RowLeastSquares | GramLeastSquares | WhitenedLeastSquares, Coordinates]:
    """Build the full-batch working-coordinate problem and its coordinates.

    ``whiten`` (see :func:`gram_problem`) applies to the statistics path;
    ``whiten=True`` when the direct path is chosen is an error.
    """
    layout = Layout(fit_intercept, standardize)
    # overflow is detected (and worked around, or reported) by the solver
    with np.errstate(over="ignore", invalid="ignore"):
        if use_gram(X, precompute):
            stats = gram_stats(X, Y, s)
            # the targets' scales come with the statistics (no second pass)
            y_offset, y_scale = target_scales_from_stats(stats, layout)

            def exact(ref, yref):
                return factor_stats(X, Y, s, ref, yref)

            problem = gram_problem(stats, y_offset, y_scale, layout, whiten, exact)
            return problem, problem.coords
        if whiten is True:
            n, d = X.shape
            raise ValueError(
                f"whiten=True needs the statistics of the features, which "
                f"precompute={precompute!r} does not compute for this "
                f"{n} x {d} {'sparse ' if sp.issparse(X) else ''}input. Set "
                f"precompute=True, or whiten='auto' or False."
            )
        coords = Coordinates.from_data(X, Y, s, layout)
        Y_work = (Y - coords.y_offset) / coords.y_scale
        return RowLeastSquares.full_batch(X, Y_work, s, coords), coords


def excess_mse(problem: Datafit, params: Float64Array, steps: int) -> Float64Array:
    """A lower bound, per target, on how far the MSE at ``params`` lies above
    the least-squares minimum (working units).

    For least squares the excess is :math:`g^\\top H^{+} g` (``g`` the
    gradient of half the MSE, ``H`` its Hessian); ``steps`` iterations of
    conjugate gradients on :math:`H \\delta = g` give :math:`g^\\top
    \\delta_k`, which grows to it from below (exactly after as many steps as
    ``H`` has distinct eigenvalues). Products with ``H`` are differences of
    gradients, exact for a quadratic, taken over a step as long as
    ``params`` so that round-off stays relative. ``problem`` is evaluated
    at other points: use it after the run.
    """
    g0 = np.empty((problem.n_params, problem.n_targets))
    problem.evaluate(params)
    problem.gradient(g0)
    size = max(float(np.max(np.abs(params))), 1.0)
    moved, g1 = np.empty_like(params), np.empty_like(g0)

    def hessian_times(v):
        h = size / max(float(np.max(np.abs(v))), 1e-300)
        np.add(params, h * v, out=moved)
        problem.evaluate(moved)
        return (problem.gradient(g1) - g0) / h

    r, direction = g0.copy(), g0.copy()
    delta = np.zeros_like(g0)
    rr = np.einsum("ij,ij->j", r, r)
    for _ in range(steps):
        if not np.any(rr > 0):
            break
        hd = hessian_times(direction)
        curvature = np.einsum("ij,ij->j", direction, hd)
        step = np.divide(rr, curvature, out=np.zeros_like(rr), where=curvature > 0)
        delta += step * direction
        r -= step * hd
        rr_next = np.einsum("ij,ij->j", r, r)
        beta = np.divide(rr_next, rr, out=np.zeros_like(rr), where=rr > 0)
        direction = r + beta * direction
        rr = rr_next
    return np.maximum(np.einsum("ij,ij->j", g0, delta), 0.0)


def shortfall(problem: Datafit, variance: Float64Array, steps: int | None = None):
    """``params -> float``: the largest over targets of :func:`excess_mse`
    divided by the targets' ``variance`` (working units): how far short of
    the least-squares fit an R^2 at ``params`` is, at least. Conjugate
    gradients take ``steps`` products with the Hessian (by default 30 on the
    statistics, where each costs ``O(p^2)``, and 3 on rows, where each is a
    pass over ``X``: on 200,000 x 50 the four passes cost about a twentieth
    of a mini-batch fit)."""
    if steps is None:
        steps = 30 if isinstance(problem, GramLeastSquares) else 3
    steps = min(steps, problem.n_params)

    def short(params):
        with np.errstate(all="ignore"):
            excess = excess_mse(problem, params, steps)
            return float(np.nan_to_num(np.max(excess / variance), nan=np.inf))

    return short
