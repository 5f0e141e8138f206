"""The weighted least-squares datafit: statistics, gradient and MSE.

Everything the solver needs to know about the data lives here, apart from the
optimiser (:mod:`sk_adam._adam`) and the estimator (:mod:`sk_adam._regressor`).

Notation: ``X`` is ``(n, d)``, dense or scipy sparse, float32 or float64, and
is never copied whole or modified; ``Y`` is ``(n, k)``; ``s`` are the sample
weights normalised to sum to one. The problem is solved in *working
coordinates*

.. math::

    \\tilde x_j = (x_j - \\mu_j) / \\sigma_j, \\qquad
    \\tilde y_k = (y_k - \\nu_k) / \\tau_k,

where the offsets and scales are the weighted means and standard deviations
(``standardize=True``; root mean squares and no offsets without an intercept)
or zeros and ones (``standardize=False``). Per target the objective is

.. math::

    f_k(w, b) = \\tfrac12 \\sum_i s_i
    (\\tilde y_{ik} - \\tilde x_i \\cdot w_k - b_k)^2 ,

where the intercept ``b`` is a parameter when it is fitted without
standardization, and in streams (otherwise the centring makes it exact).
The parameters are packed in one ``(p, k)`` array, ``p = d + 1`` with the
intercept in the last row, ``p = d`` without. On the full-batch statistics
path Adam may work in *whitened* coordinates :math:`w = V \\operatorname{diag}(a)
\theta`, with :math:`V` the eigenvectors of the working Gram matrix and
:math:`a_i = \\lambda_i^{-1/2}` (:func:`principal_axes`): there the objective is
:math:`\tfrac12 \\lVert \theta - \theta^* \rVert^2` plus a constant, with
:math:`\\lVert \theta^* \rVert^2 = R^2 \\le 1`, however correlated the
columns are.

What is here:

:class:`Coordinates`
    The map between the data's units and the working coordinates.
:class:`GramStats`, :func:`gram_stats`
    The sufficient statistics, one row block at a time, mergeable exactly (a
    distributed reduction merges them the same way).
:class:`DirectLeastSquares`
    The full-batch objective from products with ``X`` at every evaluation,
    ``O(nnz(X) k)``; centring and scaling are applied implicitly, so ``X`` is
    used as given.
:class:`GramLeastSquares`
    The full-batch objective from :math:`G = \tilde X^\top S \tilde X`,
    :math:`c = \tilde X^\top S \tilde Y` and :math:`\tilde Y^\top S \tilde
    Y`; every evaluation costs ``O(p^2 k)`` whatever ``n`` is.
:class:`BatchLeastSquares`
    Gradients on row subsets, for mini-batches and ``partial_fit``.

:func:`least_squares_problem` builds a full-batch problem, choosing between
the two implementations (:func:`use_gram`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

Array = NDArray[np.floating]
Float64Array = NDArray[np.float64]
Matrix = Array | sp.sparray | sp.spmatrix

#: Upper bound on the float64 row block used when reducing over ``X``.
_BLOCK_BYTES = 2 * 2**20
#: ``whiten='auto'`` whitens when the working Gram matrix's condition number
#: (over the non-constant columns) exceeds this; below it, Adam in the
#: feature coordinates reaches the closed form's R^2 to 1e-6 within the
#: default iterations on the designs of examples/plot_accuracy.py.
_WHITEN_CONDITION = 1e4
#: Principal axes whose eigenvalue is below this many times the eigenvalues'
#: round-off (``p * eps * largest``) are numerically null: they are frozen at
#: zero, which gives the minimum-norm solution along them.
_NULL_ROUNDOFF = 100.0
#: A column whose spread is below this fraction of its mean is constant.
_CONSTANT_RTOL = 1e3 * np.finfo(np.float64).eps
#: Largest (mean / std)^2 for which the sparse Gram matrix may be centred by
#: the formula X'SX - mu mu' (it loses log10 of this many digits).
_SPARSE_CENTERING_RATIO = 1e4
#: precompute=True: refuse a Gram matrix larger than this.
_MAX_GRAM_BYTES = 2 * 2**30
#: precompute="auto": no Gram matrix above this many features.
_AUTO_MAX_FEATURES = 2048


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


def _varying(spread: Float64Array, offset: Float64Array) -> NDArray[np.bool_]:
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
    years or large offsets with a small spread. Where squares overflow, the
    values are divided by the column's largest magnitude first.
    """
    if sp.issparse(X):
        offset, spread = _sparse_column_stats(X, s, center)
    else:
        offset = _dense_mean(X, s) if center else np.zeros(X.shape[1])
        with np.errstate(over="ignore", invalid="ignore"):
            # squares that overflow are retried below, divided by the maximum
            spread = _dense_spread(X, s, offset, ref=None)
        if not np.all(np.isfinite(spread)):
            ref = _dense_maxabs(X)
            spread = _dense_spread(X, s, offset, ref=np.where(ref > 0, ref, 1.0))
    varying = _varying(spread, offset)
    return offset, np.where(varying, spread, 1.0), varying


def _spread_around(X: Matrix, s: Float64Array, columns, offset) -> Float64Array:
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


def use_gram(X: Matrix, precompute: bool | str) -> bool:
    """Whether to solve from the Gram matrix (``precompute='auto'`` rule).

    The Gram path costs one pass over ``X`` (``O(n d^2)`` dense) and then
    ``O(d^2)`` per iteration; the direct path costs ``O(nnz(X))`` per
    iteration. ``'auto'`` takes the Gram path when the ``d x d`` matrix is
    no larger than the data (``n >= d`` and ``d <= 2048``; the two paths
    then cost about the same, within a factor 1.5 either way on dense data
    from 100 x 50 to 3000 x 1000, and only the Gram path can whiten) and, for
    sparse ``X``, when an iteration on it is no dearer than on the stored
    entries (``d^2 <= 2 nnz``).
    """
    n, d = X.shape
    if precompute is True and 8 * (d + 1) ** 2 > _MAX_GRAM_BYTES:
        raise ValueError(
            f"precompute=True needs a {d} x {d} float64 Gram matrix "
            f"({8 * d * d / 2**30:.1f} GiB), more than the "
            f"{_MAX_GRAM_BYTES / 2**30:.0f} GiB allowed. Use "
            f"precompute='auto' or False to work from products with X."
        )
    if precompute != "auto":
        return bool(precompute)
    if d > _AUTO_MAX_FEATURES or n < d:
        return False
    return not sp.issparse(X) or d * d <= 2 * X.nnz


@dataclass
class Coordinates:
    """The map between the data's units and the working coordinates.

    ``x_offset``, ``x_scale``, ``varying`` are as returned by
    :func:`column_stats`, ``y_offset`` and ``y_scale`` the same for the
    targets; ``intercept`` says whether the intercept is a parameter of the
    optimisation (its working value is the last row of the parameters).
    ``axes`` and ``axis_scale``, when not None, whiten: the optimiser's
    parameters ``theta`` map to the standardized ones by ``w = axes @
    (axis_scale * theta)`` (see :func:`principal_axes`).
    """

    x_offset: Float64Array
    x_scale: Float64Array
    varying: NDArray[np.bool_]
    y_offset: Float64Array
    y_scale: Float64Array
    intercept: bool
    axes: Float64Array | None = None
    axis_scale: Float64Array | None = None

    @classmethod
    def identity(cls, d: int, k: int, intercept: bool) -> Coordinates:
        return cls(
            np.zeros(d),
            np.ones(d),
            np.ones(d, dtype=bool),
            np.zeros(k),
            np.ones(k),
            intercept,
        )

    @classmethod
    def from_data(cls, X, Y, s, *, center, standardize, intercept) -> Coordinates:
        """Weighted statistics of the data, or the identity map."""
        d, k = X.shape[1], Y.shape[1]
        if not standardize:
            return cls.identity(d, k, intercept)
        y_offset, y_scale, _ = column_stats(Y, s, center)
        x_offset, x_scale, varying = column_stats(X, s, center)
        return cls(x_offset, x_scale, varying, y_offset, y_scale, intercept)

    @property
    def n_params(self) -> int:
        return self.x_scale.size + int(self.intercept)

    def to_original(self, params: Float64Array, fit_intercept: bool):
        """Coefficients ``(k, d)`` and intercepts ``(k,)`` in the data's units."""
        d = self.x_scale.size
        if self.axes is not None:
            params = self.axes @ (self.axis_scale[:, None] * params)
        coef = (params[:d] / self.x_scale[:, None] * self.y_scale).T
        if not fit_intercept:
            return coef, np.zeros(params.shape[1])
        intercept = self.y_offset - coef @ self.x_offset
        if self.intercept:
            intercept = intercept + self.y_scale * params[d]
        return coef, intercept

    def to_working(self, coef: Float64Array, intercept: Float64Array):
        """Working parameters ``(p, k)`` for ``coef (k, d)``, ``intercept (k,)``."""
        d = self.x_scale.size
        params = np.zeros((self.n_params, coef.shape[0]))
        params[:d] = coef.T * self.x_scale[:, None] / self.y_scale
        params[:d][~self.varying] = 0.0
        if self.intercept:
            params[d] = (
                intercept - self.y_offset + coef @ self.x_offset
            ) / self.y_scale
        if self.axes is not None:
            frozen = self.axis_scale == 0
            scale = np.where(frozen, 1.0, self.axis_scale)
            params = (self.axes.T @ params) / scale[:, None]
            params[frozen] = 0.0
        return params

    def with_intercept(self) -> Coordinates:
        """The same map with the intercept as a parameter (for streams).

        Whitening is extended by the identity on the new parameter.
        """
        if self.intercept:
            return self
        axes, axis_scale = self.axes, self.axis_scale
        if axes is not None:
            p = axes.shape[0]
            axes = np.block([[axes, np.zeros((p, 1))], [np.zeros((1, p)), 1.0]])
            axis_scale = np.r_[axis_scale, 1.0]
        return replace(self, intercept=True, axes=axes, axis_scale=axis_scale)

    def with_new_variation(self, X: Matrix, s: Float64Array) -> Coordinates:
        """The same map, with the columns held at zero so far set free where
        they vary in ``X`` (for streams).

        ``fit`` sees every row: a column that is constant in them carries no
        information, and ``varying`` holds its coefficient at exactly zero. A
        stream has seen only its first rows, and a column constant there (a
        feature that has not turned up yet) may vary later: in the first
        chunk where it does (by the rule of :func:`column_stats`, around its
        offset, over the rows of positive weight ``s``), it is set free,
        scaled by its spread there. Its working parameter and moments are
        still zero, so the new scale changes nothing that was learned.
        Whitened coordinates are kept as they are: their axes span what
        ``fit`` saw.
        """
        held = np.flatnonzero(~self.varying)
        if held.size == 0 or self.axes is not None:
            return self
        offset = self.x_offset[held]
        with np.errstate(over="ignore", invalid="ignore"):
            spread = _spread_around(X, s, held, offset)
        free = _varying(spread, offset) & np.isfinite(spread)
        if not free.any():
            return self
        varying, x_scale = self.varying.copy(), self.x_scale.copy()
        varying[held[free]] = True
        x_scale[held[free]] = spread[free]
        return replace(self, varying=varying, x_scale=x_scale)

    @property
    def whitening(self) -> Float64Array | None:
        """``T`` with ``w = T theta``, or None."""
        if self.axes is None:
            return None
        return self.axes * self.axis_scale


def principal_axes(
    gram: Float64Array, varying: NDArray[np.bool_], whiten: bool | str
) -> tuple[Float64Array, Float64Array] | None:
    """The whitening of the working coordinates, or None for none.

    Parameters
    ----------
    gram : ndarray of shape (p, p)
        The working Gram matrix (with the intercept's row and column last
        when the intercept is a parameter).
    varying : ndarray of shape (d,)
        The non-constant columns. Constant columns keep their own axis with
        scale zero, so their coefficients stay exactly zero.
    whiten : bool or 'auto'
        'auto' whitens when the condition number of the Gram matrix over the
        non-constant columns exceeds ``_WHITEN_CONDITION`` (a singular one
        counts as infinite).

    Returns
    -------
    axes : ndarray of shape (p, p)
        Orthonormal eigenvectors of ``gram`` (the identity on constant
        columns).
    axis_scale : ndarray of shape (p,)
        ``1 / sqrt(eigenvalue)`` per axis, and 0 on the axes that are
        numerically null (eigenvalue below ``_NULL_ROUNDOFF`` times the
        round-off ``p * eps * largest eigenvalue``) and on constant columns.
        With ``T = axes * axis_scale``, ``T.T @ gram @ T`` is the identity on
        the other axes, up to round-off.
    """
    p, d = gram.shape[0], varying.size
    kept = np.flatnonzero(np.r_[varying, np.ones(p - d, dtype=bool)])
    if whiten is False or kept.size == 0:
        return None
    eigenvalues, vectors = np.linalg.eigh(gram[np.ix_(kept, kept)])
    largest = eigenvalues[-1]
    if not largest > 0:
        return None
    if whiten == "auto":
        smallest = eigenvalues[0]
        if smallest > 0 and largest <= _WHITEN_CONDITION * smallest:
            return None
    null = _NULL_ROUNDOFF * kept.size * np.finfo(np.float64).eps * largest
    axes = np.eye(p)
    axes[np.ix_(kept, kept)] = vectors
    axis_scale = np.zeros(p)
    axis_scale[kept] = np.where(
        eigenvalues > null, 1.0 / np.sqrt(np.maximum(eigenvalues, null)), 0.0
    )
    return axes, axis_scale


def least_squares_problem(
    X: Matrix,
    Y: Float64Array,
    s: Float64Array,
    *,
    fit_intercept: bool,
    standardize: bool,
    precompute: bool | str,
    whiten: bool | str = False,
) -> tuple[DirectLeastSquares | GramLeastSquares, Coordinates]:
    """Build the full-batch working-coordinate problem and its coordinates.

    ``whiten`` (see :func:`principal_axes`) applies to the statistics path;
    ``whiten=True`` when the direct path is chosen is an error.
    """
    # overflow is detected (and worked around, or reported) by the callers
    with np.errstate(over="ignore", invalid="ignore"):
        return _least_squares_problem(
            X, Y, s, fit_intercept, standardize, precompute, whiten
        )


def _least_squares_problem(X, Y, s, fit_intercept, standardize, precompute, whiten):
    center = standardize and fit_intercept
    intercept = fit_intercept and not standardize
    if use_gram(X, precompute):
        if standardize:
            y_offset, y_scale, _ = column_stats(Y, s, fit_intercept)
        else:
            y_offset, y_scale = np.zeros(Y.shape[1]), np.ones(Y.shape[1])
        problem = GramLeastSquares.from_stats(
            gram_stats(X, Y, s), y_offset, y_scale, center, standardize, intercept
        )
        problem = problem.whitened(whiten)
        coords = problem.coords
    elif whiten is True:
        n, d = X.shape
        raise ValueError(
            f"whiten=True needs the Gram matrix of the features, which "
            f"precompute={precompute!r} does not compute for this "
            f"{n} x {d} {'sparse ' if sp.issparse(X) else ''}input. Set "
            f"precompute=True, or whiten='auto' or False."
        )
    else:
        coords = Coordinates.from_data(
            X, Y, s, center=center, standardize=standardize, intercept=intercept
        )
        problem = DirectLeastSquares(
            X, (Y - coords.y_offset) / coords.y_scale, s, coords
        )
    return problem, coords


class BatchLeastSquares:
    """Gradients of the objective on row subsets (mini-batches, chunks).

    The objective of a batch is its weighted mean squared error (weights
    normalised within the batch), in the working coordinates ``coords``,
    which are fixed beforehand (from the whole training set in ``fit``, from
    the first chunk in ``partial_fit``). Targets are passed already in working
    units, 1-D when there is one target; sample weights as None when they are
    all equal. Each call makes a handful of numpy calls: with batches of a few
    hundred rows their fixed cost, not the arithmetic, sets the speed.
    """

    def __init__(self, coords: Coordinates, dtype, n_targets: int) -> None:
        self.coords = coords
        d = coords.x_scale.size
        self._d = d
        self._one = n_targets == 1
        self._center = bool(np.any(coords.x_offset))
        self._constant = np.flatnonzero(~coords.varying)
        self._intercept = coords.intercept
        self._offset = coords.x_offset if self._one else coords.x_offset[:, None]
        self._scale = coords.x_scale if self._one else coords.x_scale[:, None]
        self._neg_inv_scale = -1.0 / self._scale
        self._dtype = dtype
        self._u = np.empty(d if self._one else (d, n_targets))
        self._mse = np.empty(n_targets)
        self._factor = np.empty_like(self._neg_inv_scale)
        self._factor_weight = None
        self._whitening = coords.whitening
        self._inner = np.empty((coords.n_params, n_targets))

    def gradient(self, X, Y, s, params, out):
        """Gradient at ``params`` into ``out``; returns the batch's MSE per
        target (working units) and its total weight, or None if it is zero.

        With whitened coordinates (``w = T theta``) the gradient is taken at
        ``T theta`` and returned as ``T.T g``.
        """
        T = self._whitening
        if T is None:
            return self._gradient(X, Y, s, params, out)
        result = self._gradient(X, Y, s, T @ params, self._inner)
        if result is not None:
            np.matmul(T.T, self._inner, out=out)
        return result

    def _gradient(self, X, Y, s, params, out):
        if self._one and s is None and self._dtype == np.float64 and not sp.issparse(X):
            return self._gradient_one(X, Y, params, out)
        d = self._d
        if s is None:
            weight = X.shape[0]
        else:
            weight = float(np.sum(s))
            if weight == 0.0:
                return None
        w = params[:d, 0] if self._one else params[:d]
        u = np.divide(w, self._scale, out=self._u)
        pred = X @ (u if self._dtype == np.float64 else u.astype(self._dtype))
        r = np.subtract(Y, pred, out=pred if pred.dtype == np.float64 else None)
        if self._center or self._intercept:
            shift = self.coords.x_offset @ u
            if self._intercept:
                shift = shift - params[d]
            r += shift
        z = r if s is None else (r * s if self._one else r * s[:, None])
        if self._one:
            mse = np.array([np.dot(z, r) / weight])
        else:
            mse = np.einsum("ik,ik->k", z, r) / weight
        zt = z if self._dtype == np.float64 else z.astype(self._dtype)
        g = X.T @ zt
        total = z.sum(axis=0)
        if self._center:
            g -= self._offset * total
        g *= self._neg_inv_scale
        g /= weight
        if self._one:
            out[:d, 0] = g
        else:
            out[:d] = g
        if self._constant.size:
            out[self._constant] = 0.0
        if self._intercept:
            out[d] = -total / weight
        return mse, weight

    def _gradient_one(self, X, y, params, out):
        """The common case (dense float64, one target, equal weights), with
        as few numpy calls as possible."""
        d = self._d
        n = X.shape[0]
        u = np.divide(params[:d, 0], self._scale, out=self._u)
        r = X @ u
        np.subtract(y, r, out=r)
        if self._center or self._intercept:
            shift = float(self._offset @ u)
            if self._intercept:
                shift -= float(params[d, 0])
            r += shift
        self._mse[0] = np.dot(r, r) / n
        g = X.T @ r
        total = float(np.add.reduce(r))
        if self._center:
            g -= self._offset * total
        if self._factor_weight != n:  # -1 / (scale * n), cached per batch size
            np.divide(self._neg_inv_scale, n, out=self._factor)
            self._factor_weight = n
        np.multiply(g, self._factor, out=out[:d, 0])
        if self._constant.size:
            out[self._constant] = 0.0
        if self._intercept:
            out[d, 0] = -total / n
        return self._mse, n


@dataclass
class DirectLeastSquares:
    """The objective evaluated with products with ``X`` (see module notes).

    :meth:`evaluate` returns the per-target MSE at ``params`` and keeps the
    weighted residuals that the next :meth:`gradient` needs, so one iteration
    costs one product with ``X`` and one with ``X.T``. Products are computed
    in ``X``'s own dtype (float32 stays float32: no upcast copy of ``X``);
    everything else is float64 and preallocated.
    """

    X: Matrix
    Y_work: Float64Array
    s: Float64Array
    coords: Coordinates

    def __post_init__(self) -> None:
        n, k = self.Y_work.shape
        d = self.X.shape[1]
        dtype = self.X.dtype
        self.n_params = d + int(self.coords.intercept)
        self.n_targets = k
        self._sparse = sp.issparse(self.X)
        self._XT = self.X.T  # a transposed view, made once
        self._native = dtype == np.float64
        self._center = bool(np.any(self.coords.x_offset))
        self._constant = np.flatnonzero(~self.coords.varying)
        # equal weights: work with the residual itself, and fold the common
        # weight into the final scaling of the gradient and the MSE
        self._uniform = bool(np.all(self.s == self.s[0]))
        self._s0 = float(self.s[0])
        divisor = -self.coords.x_scale / (self._s0 if self._uniform else 1.0)
        self._divisor = divisor[:, None]
        self._scale = self.coords.x_scale[:, None]
        self._offset = self.coords.x_offset[:, None]

        # one target: 1-D views, so that BLAS and scipy use their
        # matrix-vector kernels
        def vec(a):
            return a[:, 0] if k == 1 else a

        self._vec = vec
        self._y = vec(self.Y_work)
        self._s = self.s if k == 1 else self.s[:, None]
        self._u = np.empty((d, k))
        self._u_native = self._u if self._native else np.empty((d, k), dtype)
        # sparse products allocate their own results
        self._pred = None if self._sparse else vec(np.empty((n, k), dtype))
        self._r = None if self._native else vec(np.empty((n, k)))
        self._weighted = None if self._uniform else vec(np.empty((n, k)))
        self._z_native = None if self._native else vec(np.empty((n, k), dtype))
        self._z = None
        dense32 = not (self._sparse or self._native)
        self._xtz = vec(np.empty((d, k), dtype)) if dense32 else None
        self._shift = np.empty(k)
        self._total = np.empty(k)
        self._mse = np.empty(k)
        self._dk = np.empty((d, k))

    def evaluate(self, params: Float64Array) -> Float64Array:
        """Per-target weighted MSE (working units) at ``params``."""
        d = self.X.shape[1]
        u = np.divide(params[:d], self._scale, out=self._u)
        if not self._native:
            self._u_native[...] = u
        u_native = self._vec(self._u_native)
        if self._sparse:
            pred = self.X @ u_native
        else:
            pred = np.matmul(self.X, u_native, out=self._pred)
        # in float64 the residual overwrites the prediction while it is still
        # in cache; in float32 it goes to a float64 buffer
        r = np.subtract(self._y, pred, out=pred if self._native else self._r)
        if self._center or self.coords.intercept:
            shift = np.matmul(self.coords.x_offset, u, out=self._shift)
            if self.coords.intercept:
                shift -= params[d]
            r += shift
        z = r if self._uniform else np.multiply(self._s, r, out=self._weighted)
        self._z = z
        mse = self._mse
        if r.ndim == 1:
            mse[0] = np.dot(z, r)
        else:
            np.einsum("ik,ik->k", z, r, out=mse)
        if self._uniform:
            mse *= self._s0
        return mse

    def gradient(self, out: Float64Array) -> Float64Array:
        """Gradient at the parameters of the last :meth:`evaluate`."""
        d = self.X.shape[1]
        z = self._z
        if self._native:
            z_native = z
        else:
            z_native = self._z_native
            z_native[...] = z
        grad = out[:d]
        # X'z lands in grad (dense float64), a buffer (float32) or a new
        # array (sparse); the final division writes it into grad
        if self._sparse:
            xtz = self._XT @ z_native
        elif self._native:
            xtz = np.matmul(self._XT, z, out=self._vec(grad))
        else:
            xtz = np.matmul(self._XT, z_native, out=self._xtz)
        if self._center or self.coords.intercept:
            total = self._total
            total[...] = np.sum(z, axis=0)
            if self._center:
                offset_total = np.multiply(self._offset, total, out=self._dk)
                xtz -= self._vec(offset_total)
            if self.coords.intercept:
                np.multiply(total, -self._s0 if self._uniform else -1.0, out=out[d])
        np.divide(xtz, self._vec(self._divisor), out=self._vec(grad))
        if self._constant.size:
            out[self._constant] = 0.0
        return out


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
    def from_stats(cls, stats, y_offset, y_scale, center, scale, intercept):
        """The working-coordinate problem from merged :class:`GramStats`.

        ``y_offset`` and ``y_scale`` are the target's working offsets and
        scales; the feature offsets are the weighted means (``center``) or
        zero, the scales the spreads around them (``scale``) or one.
        """
        d = stats.mean.size
        W = stats.weight
        mean = stats.mean  # in units of stats.ref
        moved = np.zeros(d) if center else mean  # weighted mean - offset
        dy = stats.ymean - y_offset / np.where(stats.yref > 0, stats.yref, 1.0)
        gxx = (stats.xx + W * np.outer(moved, moved)) / W
        gxy = (stats.xy + W * np.outer(moved, dy)) / W
        gyy = (stats.yy + W * dy**2) / W
        ref = stats.ref
        offset = mean * ref if center else np.zeros(d)
        spread = ref * np.sqrt(np.clip(np.diag(gxx), 0.0, None))
        varying = _varying(spread, offset) if scale else np.ones(d, dtype=bool)
        x_scale = np.where(varying, spread, 1.0) if scale else np.ones(d)
        factor = ref / x_scale
        yfactor = stats.yref / y_scale
        gram = gxx * np.outer(factor, factor)
        cross = gxy * np.outer(factor, yfactor)
        yy = gyy * yfactor**2
        gram[~varying] = 0.0
        gram[:, ~varying] = 0.0
        cross[~varying] = 0.0
        if intercept:  # raw coordinates: the column sums and target sums
            colsum = mean * ref
            gram = np.block(
                [[gram, colsum[:, None]], [colsum[None, :], np.ones((1, 1))]]
            )
            cross = np.vstack([cross, dy * yfactor])
        coords = Coordinates(offset, x_scale, varying, y_offset, y_scale, intercept)
        return cls(gram, cross, yy, coords)

    def whitened(self, whiten: bool | str) -> GramLeastSquares:
        """This problem in the coordinates of :func:`principal_axes`.

        With ``T = axes * axis_scale``, ``gram`` becomes ``T.T G T`` (the
        identity, with zeros on frozen axes, up to round-off) and ``cross``
        ``T.T c``; the MSE at ``theta`` equals the original's at ``T theta``.
        Returns ``self`` when no whitening is chosen, and when the statistics
        are not finite (the caller reports that).
        """
        if self.coords.axes is not None:
            raise ValueError("this problem is whitened already")
        if not np.all(np.isfinite(self.gram)):
            return self
        found = principal_axes(self.gram, self.coords.varying, whiten)
        if found is None:
            return self
        axes, axis_scale = found
        T = axes * axis_scale
        return replace(
            self,
            gram=T.T @ self.gram @ T,
            cross=T.T @ self.cross,
            coords=replace(self.coords, axes=axes, axis_scale=axis_scale),
        )

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

    @classmethod
    def from_block(cls, X, Y, s, ref=None, yref=None, out=None) -> GramStats:
        """Statistics of one row block (dense or sparse, any float dtype).

        ``out`` is an optional float64 buffer of at least the block's shape.
        """
        n, d = X.shape
        k = Y.shape[1]
        stats = cls.zeros(d, k, ref, yref)
        weight = float(np.sum(s))
        if weight == 0 or n == 0:
            return stats
        block = np.empty((n, d)) if out is None else out[:n]
        if sp.issparse(X):
            X.toarray(out=block)
        else:
            block[...] = X
        y_block = np.array(Y, dtype=np.float64)
        if ref is not None:
            block /= ref
        if yref is not None:
            y_block /= yref
        mean = (s @ block) / weight
        ymean = (s @ y_block) / weight
        block -= mean
        y_block -= ymean
        weighted = y_block * s[:, None]
        stats.yy = np.einsum("ik,ik->k", weighted, y_block)
        stats.xy = block.T @ weighted
        if np.all(s == s[0]):
            stats.xx = (block.T @ block) * s[0]
        else:
            block *= np.sqrt(s)[:, None]
            stats.xx = block.T @ block
        stats.weight, stats.mean, stats.ymean = weight, mean, ymean
        return stats

    def merge(self, other: GramStats) -> GramStats:
        """Add ``other``'s rows to these statistics (in place); returns self."""
        if other.weight == 0:
            return self
        if self.weight == 0:
            self.weight, self.mean, self.ymean = other.weight, other.mean, other.ymean
            self.xx, self.xy, self.yy = other.xx, other.xy, other.yy
            return self
        total = self.weight + other.weight
        factor = self.weight * other.weight / total
        dx = other.mean - self.mean
        dy = other.ymean - self.ymean
        self.xx = self.xx + other.xx + factor * np.outer(dx, dx)
        self.xy = self.xy + other.xy + factor * np.outer(dx, dy)
        self.yy = self.yy + other.yy + factor * dy**2
        self.mean = self.mean + dx * (other.weight / total)
        self.ymean = self.ymean + dy * (other.weight / total)
        self.weight = total
        return self

    def finite(self) -> bool:
        return bool(
            np.all(np.isfinite(np.diag(self.xx))) and np.all(np.isfinite(self.yy))
        )


def gram_stats(X: Matrix, Y: Float64Array, s: Float64Array) -> GramStats:
    """:class:`GramStats` of in-memory data, one row block at a time.

    Sparse ``X`` uses sparse products when centring by formula is harmless
    and is densified one block at a time otherwise. Where squares overflow,
    the values are divided by each column's largest magnitude and the pass is
    repeated.
    """
    if sp.issparse(X):
        sparse = _sparse_gram_stats(X, Y, s)
        if sparse is not None:
            return sparse
    stats = _blockwise_gram_stats(X, Y, s)
    if not stats.finite():
        ref = _maxabs(X)
        yref = np.max(np.abs(Y), axis=0)
        stats = _blockwise_gram_stats(
            X, Y, s, np.where(ref > 0, ref, 1.0), np.where(yref > 0, yref, 1.0)
        )
    return stats


def _blockwise_gram_stats(X, Y, s, ref=None, yref=None):
    d, k = X.shape[1], Y.shape[1]
    buf = _block_buffer(X)
    stats = GramStats.zeros(d, k, ref, yref)
    for rows in _row_blocks(X):
        stats.merge(GramStats.from_block(X[rows], Y[rows], s[rows], ref, yref, buf))
    return stats


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
