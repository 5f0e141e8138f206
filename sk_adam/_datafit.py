"""The weighted least-squares datafit: statistics, residuals, gradient, MSE.

Everything the solver needs to know about the data lives here, apart from the
optimiser (:mod:`sk_adam._adam`) and the estimator (:mod:`sk_adam._regressor`).

Notation: ``X`` is ``(n, d)``, dense or scipy sparse, float32 or float64 and is
never copied or modified; ``Y`` is ``(n, k)``; ``s`` are the sample weights
normalised to sum to one. The problem is solved in *working coordinates*

.. math::

    \\tilde x_j = (x_j - \\mu_j) / \\sigma_j, \\qquad
    \\tilde y_k = (y_k - \\nu_k) / \\tau_k,

where the offsets and scales are either the weighted means and standard
deviations (``standardize=True``) or zeros and ones (``standardize=False``).
The centred and scaled matrix is never formed: products with
:math:`\\tilde X` are computed from products with ``X``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

Array = NDArray[np.floating]
Float64Array = NDArray[np.float64]

#: Rows per block when reducing over a dense ``X``; bounds temporaries to
#: about ``_BLOCK_BYTES`` whatever ``n`` is.
_BLOCK_BYTES = 4 * 2**20


def _row_blocks(n_rows: int, n_cols: int):
    step = max(1, _BLOCK_BYTES // (8 * max(n_cols, 1)))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def column_stats(
    X: Array | sp.sparray | sp.spmatrix, s: Float64Array, center: bool
) -> tuple[Float64Array, Float64Array, NDArray[np.bool_]]:
    """Weighted offsets, scales and the non-constant mask of the columns of X.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n, d)
        The data; read block by block (dense) or through its non-zeros
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
    years or large offsets with a small spread. Values are divided by the
    column's largest magnitude before squaring, so values whose squares would
    overflow still give a finite scale.
    """
    n_rows, d = X.shape
    if sp.issparse(X):
        offset, spread, maxabs = _sparse_column_stats(X, s, center)
    else:
        offset = np.zeros(d)
        maxabs = np.zeros(d)
        for rows in _row_blocks(n_rows, d):
            block = np.asarray(X[rows], dtype=np.float64)
            if center:
                offset += s[rows] @ block
            np.maximum(maxabs, np.abs(block).max(axis=0), out=maxabs)
        ref = np.where(maxabs > 0, maxabs, 1.0)
        sq = np.zeros(d)
        for rows in _row_blocks(n_rows, d):
            block = np.asarray(X[rows], dtype=np.float64)
            block = (block - offset) / ref
            sq += s[rows] @ (block * block)
        spread = ref * np.sqrt(sq)
    varying = spread > 1e3 * np.finfo(np.float64).eps * np.abs(offset)
    varying &= spread > 0
    scale = np.where(varying, spread, 1.0)
    return offset, scale, varying


def _sparse_column_stats(X, s, center):
    """Column statistics from the stored entries of a CSR or CSC matrix."""
    n_rows, d = X.shape
    if not X.has_canonical_format:  # duplicates would be counted apart
        X = X.copy()
        X.sum_duplicates()
    if X.format == "csc":
        col = np.repeat(np.arange(d), np.diff(X.indptr))
        rows = X.indices
    elif X.format == "csr":
        col = X.indices
        rows = np.repeat(np.arange(n_rows), np.diff(X.indptr))
    else:
        return _sparse_column_stats(sp.csr_array(X), s, center)
    data = np.asarray(X.data, dtype=np.float64)
    w = s[rows]
    maxabs = np.zeros(d)
    np.maximum.at(maxabs, col, np.abs(data))
    offset = np.bincount(col, weights=w * data, minlength=d) if center else np.zeros(d)
    ref = np.where(maxabs > 0, maxabs, 1.0)
    # stored entries contribute s (x - mu)^2; implicit zeros contribute s mu^2
    dev = (data - offset[col]) / ref[col]
    sq = np.bincount(col, weights=w * dev * dev, minlength=d)
    w_stored = np.bincount(col, weights=w, minlength=d)
    sq += np.clip(1.0 - w_stored, 0.0, None) * (offset / ref) ** 2
    return offset, ref * np.sqrt(sq), maxabs


@dataclass
class LeastSquares:
    """Weighted least squares of ``Y`` on ``X`` in working coordinates.

    The objective per target ``k`` is

    .. math::

        f_k(w, b) = \\tfrac12 \\sum_i s_i
        (\\tilde y_{ik} - \\tilde x_i \\cdot w_k - b_k)^2,
        \\qquad \\sum_i s_i = 1,

    and :meth:`gradient` returns its gradient for all targets at once. The
    parameters are packed in one ``(d + 1, k)`` array when the intercept ``b``
    is optimised (its row last), ``(d, k)`` otherwise.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n, d)
    Y_work : ndarray of shape (n, k), float64
        The targets in working coordinates.
    s : ndarray of shape (n,)
        Sample weights summing to one.
    x_offset, x_scale : ndarray of shape (d,)
    varying : ndarray of bool of shape (d,)
        Gradient entries of non-varying columns are set to exactly zero.
    intercept : bool
        Whether the intercept is a parameter of the optimisation.
    """

    X: Array | sp.sparray | sp.spmatrix
    Y_work: Float64Array
    s: Float64Array
    x_offset: Float64Array
    x_scale: Float64Array
    varying: NDArray[np.bool_]
    intercept: bool

    def __post_init__(self) -> None:
        n, k = self.Y_work.shape
        self.n_params = self.X.shape[1] + int(self.intercept)
        self._dtype = self.X.dtype
        self._native = self._dtype == np.float64
        # products with X are computed in X's own dtype (no upcast copy of X)
        self._pred = None if self._native else np.empty((n, k), self._dtype)
        self._xtz = None if self._native else np.empty((self.n_params, k), self._dtype)
        self._weighted = np.empty((n, k), dtype=self._dtype)
        self._center = bool(np.any(self.x_offset))

    def residual(self, params: Float64Array, out: Float64Array) -> Float64Array:
        """``out = Y_work - prediction(params)``, shape ``(n, k)``."""
        d = self.X.shape[1]
        u = params[:d] / self.x_scale[:, None]
        shift = self.x_offset @ u if self._center else 0.0
        if self.intercept:
            shift = shift - params[d]
        u = u.astype(self._dtype, copy=False)
        if sp.issparse(self.X):
            out[...] = self.X @ u
        elif self._native:
            np.matmul(self.X, u, out=out)
        else:
            np.matmul(self.X, u, out=self._pred)
            out[...] = self._pred
        out -= shift
        np.subtract(self.Y_work, out, out=out)
        return out

    def gradient(self, residual: Float64Array, out: Float64Array) -> Float64Array:
        """Gradient of the objective with respect to ``params``, into ``out``."""
        d = self.X.shape[1]
        weighted = self._weighted
        np.multiply(self.s[:, None], residual, out=weighted, casting="unsafe")
        if sp.issparse(self.X):
            out[:d] = self.X.T @ weighted
        elif self._native:
            np.matmul(self.X.T, weighted, out=out[:d])
        else:
            np.matmul(self.X.T, weighted, out=self._xtz[:d])
            out[:d] = self._xtz[:d]
        total = np.einsum("i,ik->k", self.s, residual)
        if self._center:
            out[:d] -= self.x_offset[:, None] * total
        out[:d] /= -self.x_scale[:, None]
        out[:d][~self.varying] = 0.0
        if self.intercept:
            out[d] = -total
        return out

    def mse(self, residual: Float64Array) -> Float64Array:
        """Weighted mean squared residual per target (working units)."""
        return np.einsum("i,ik,ik->k", self.s, residual, residual)
