"""In-memory training data, as the estimator's one fit path sees it.

:class:`ArrayData` holds validated arrays and turns them into what the
solver runs: the full-batch problem and its coordinates, the working
coordinates alone, mini-batch epochs, a validation split. Its dask twin,
:class:`sk_adam._dask.DaskData`, answers the same calls from a cluster, so
that :meth:`AdamRegressor._fit` never asks which kind of input it has.
"""

from __future__ import annotations

import copy

import numpy as np
import scipy.sparse as sp
from sklearn.utils import assert_all_finite

from ._coordinates import Coordinates, Layout, target_scales
from ._datafit import RowLeastSquares, least_squares_problem, shortfall, use_gram
from ._epochs import MiniBatchEpochs, Validation

__all__ = ["ArrayData", "relative_weights"]

#: The R^2 (relative to the targets' spread) that the round-off of a float64
#: intercept may cost before the intercept is summed in extended precision.
INTERCEPT_R2 = 1e-10


def relative_weights(s: np.ndarray) -> np.ndarray:
    """Non-negative finite weights scaled to sum to one.

    Weights are scale-free (a weight of ``c`` counts a row ``c`` times), so
    weights whose sum overflows (or underflows) are divided by the largest
    first, and give the same fit as any multiple of them.
    """
    with np.errstate(over="ignore"):  # an overflowing sum is rescaled below
        total = s.sum()
    if not 0 < total < np.inf and s.size and s.max() > 0:
        s = s / s.max()
        total = s.sum()
    if not total > 0:
        raise ValueError(
            "sample_weight sums to zero: at least one sample must have a "
            "positive weight."
        )
    return s / total


class ArrayData:
    """Validated in-memory rows.

    Parameters
    ----------
    X : {ndarray, CSR or CSC matrix} of shape (n, d)
        float32 or float64, used as given (never copied whole or modified).
    Y : ndarray of shape (n, k)
        Targets, float64.
    s : ndarray of shape (n,)
        Sample weights, non-negative, summing to one.
    one_d : bool
        Whether ``y`` was 1-D (fitted attributes then drop the target axis).
    finite_checked : bool, default=True
        False when the finiteness of ``X`` is left to the epoch (a NaN or inf
        in a row it reads makes the MSE non-finite): :meth:`check_finite`
        then gives scikit-learn's message when the epoch fails.
    """

    def __init__(self, X, Y, s, *, one_d: bool, finite_checked: bool = True):
        self.X, self.Y, self.s = X, Y, s
        self.one_d = one_d
        self.finite_checked = finite_checked
        if not finite_checked and not s.min() > 0:
            # rows of weight zero are never read by an epoch: check them here
            self.check_finite()

    @property
    def dtype(self):
        return self.X.dtype

    @property
    def n_targets(self) -> int:
        return self.Y.shape[1]

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    def check_finite(self) -> None:
        """scikit-learn's check and message for NaN or inf in ``X``."""
        X = self.X
        assert_all_finite(
            X.data if sp.issparse(X) else X,
            estimator_name="AdamRegressor",
            input_name="X",
        )
        self.finite_checked = True

    def split(self, rng, fraction: float) -> tuple[ArrayData, ArrayData]:
        """Training rows and ``fraction`` of the rows held out (at random),
        as two weightings of the same rows."""
        s = self.s
        n = s.size
        n_val = int(np.ceil(fraction * n))
        if n_val < 2 or n_val >= n:
            raise ValueError(
                f"early_stopping=True with validation_fraction={fraction} and "
                f"{n} samples leaves {n_val} validation and {n - n_val} "
                f"training samples; the fit needs at least one, and the "
                f"validation R^2 at least two. Change validation_fraction or "
                f"set early_stopping=False."
            )
        held_out = np.zeros(n, dtype=bool)
        held_out[rng.permutation(n)[:n_val]] = True
        train = np.where(held_out, 0.0, s)
        validation = np.where(held_out, s, 0.0)
        if not (train.sum() > 0 and np.count_nonzero(validation) >= 2):
            raise ValueError(
                "early_stopping=True: fewer than two held-out rows or no "
                "training row has a positive weight, so the validation R^2 or "
                "the fit is undefined; change random_state or "
                "validation_fraction."
            )
        return (
            ArrayData(self.X, self.Y, train / train.sum(), one_d=self.one_d),
            ArrayData(self.X, self.Y, validation / validation.sum(), one_d=self.one_d),
        )

    def exact_intercept(self, coef, intercept, offset):
        """``intercept`` (``(k,)``, for ``coef`` ``(k, d)`` in the data's
        units), or, where computing it as ``y_offset - offset @ coef`` in
        float64 cancels so far that its round-off could move R^2 by more
        than :data:`INTERCEPT_R2`, the weighted mean of ``y - X @ coef``
        summed in extended precision (``np.longdouble``) over dense rows.

        Near-singular designs with offsets have huge coefficients of
        opposite signs: at a standardized condition number of 1e12,
        ``offset @ coef`` is 1e18 for an intercept of 5e11, and the float64
        intercept alone left the fit 2.6e-5 of R^2 short of least squares.
        Sparse rows keep the float64 intercept (scipy has no extended
        precision).
        """
        if sp.issparse(self.X):
            return intercept
        with np.errstate(over="ignore"):  # near float's limit: inf, summed
            cancelled = np.finfo(np.float64).eps * (np.abs(coef) @ np.abs(offset))
            deviation = self.Y - self.s @ self.Y
        top = np.max(np.abs(deviation), axis=0)
        top = np.where((top > 0) & np.isfinite(top), top, 1.0)
        spread = top * np.sqrt(self.s @ (deviation / top) ** 2)  # no overflow
        if not np.any(cancelled > np.sqrt(INTERCEPT_R2) * spread):
            return intercept
        wide = np.longdouble
        total = np.zeros(coef.shape[0], dtype=wide)
        weights = self.s.astype(wide)
        step = max(1, 2**16 // max(self.X.shape[1], 1))
        for start in range(0, self.X.shape[0], step):
            rows = slice(start, start + step)
            residual = self.Y[rows].astype(wide) - self.X[rows].astype(wide) @ (
                coef.T.astype(wide)
            )
            total += weights[rows] @ residual
        return np.asarray(total, dtype=np.float64)

    def validation(self, coords: Coordinates, fit_intercept: bool) -> Validation:
        """The MSE and R^2 on these rows, for ``early_stopping``."""
        return Validation(self.X, self.Y, self.s, coords, fit_intercept)

    def problem(self, layout: Layout, *, precompute, whiten):
        """The full-batch problem and its coordinates (see
        :func:`~sk_adam._datafit.least_squares_problem`).

        When the finiteness of ``X`` is not checked yet, the statistics
        check it: a NaN or inf in ``X`` makes its offsets, scales, Gram
        matrix or cross products non-finite, and only then is ``X`` searched
        for scikit-learn's message (finite statistics prove finite data).
        The products path reads ``X`` only when iterating, so it checks
        first.
        """
        if not self.finite_checked and not use_gram(self.X, precompute):
            self.check_finite()
        problem, coords = least_squares_problem(
            self.X,
            self.Y,
            self.s,
            fit_intercept=layout.fit_intercept,
            standardize=layout.standardize,
            precompute=precompute,
            whiten=whiten,
        )
        if not self.finite_checked:
            summary = [coords.x_offset, coords.x_scale, problem.cross]
            summary.append(getattr(problem, "gram", problem.cross))
            if all(np.all(np.isfinite(a)) for a in summary):
                self.finite_checked = True
            else:
                self.check_finite()  # raises for NaN or inf; else overflow
        return problem, coords

    def coordinates(self, layout: Layout) -> Coordinates:
        """The working coordinates from the rows' weighted statistics."""
        return Coordinates.from_data(self.X, self.Y, self.s, layout)

    def with_new_variation(self, coords: Coordinates) -> Coordinates:
        """``coords`` with the columns constant so far set free where these
        rows vary (streams)."""
        return coords.with_new_variation(self.X, self.s)

    def shortfall(self, coords: Coordinates, problem=None):
        """``params -> float`` for the solver: at least how far short of the
        least-squares R^2 the fit at ``params`` is (on these rows). Built
        when asked: ``problem`` (the run's full-batch problem) or a pass
        over the rows per conjugate-gradient step."""

        def short(params):
            _, spread = target_scales(self.Y, self.s, Layout(True, True))
            variance = (spread / coords.y_scale) ** 2
            if problem is not None:  # a full-batch run: as many steps as
                return shortfall(problem, variance, steps=30)(params)  # ~30 its
            Y_work = (self.Y - coords.y_offset) / coords.y_scale
            full = RowLeastSquares.full_batch(self.X, Y_work, self.s, coords)
            return shortfall(full, variance)(params)

        return short

    def by_rows(self) -> ArrayData:
        """These rows with row access, for mini-batches: CSC input becomes
        CSR (once; a batch is drawn by row indexing)."""
        X = self.X
        if not sp.issparse(X) or X.format == "csr":
            return self
        rows = copy.copy(self)
        rows.X = sp.csr_array(X)
        return rows

    def epochs(
        self, coords, adam, rng, *, size, shuffle, average=None, decay=None
    ) -> MiniBatchEpochs:
        """Mini-batch epochs over these rows (``size`` None: one batch),
        updating ``average`` after every step and scaling each step's rate
        by ``decay``, when given."""
        return MiniBatchEpochs(
            self.X, self.Y, self.s, coords, adam, rng,
            size=size, shuffle=shuffle, average=average, decay=decay,
        )  # fmt: skip
