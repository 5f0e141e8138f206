r"""The working coordinates: where Adam's parameters live.

The problem is solved in *working coordinates*

.. math::

    \tilde x_j = (x_j - \mu_j) / \sigma_j, \qquad
    \tilde y_k = (y_k - \nu_k) / \tau_k,

where the offsets and scales are the weighted means and standard deviations
(``standardize=True``; root mean squares and no offsets without an intercept)
or zeros and ones (``standardize=False``). The parameters are packed in one
``(p, k)`` array, ``p = d + 1`` with the intercept in the last row when it is
a parameter of the optimisation, ``p = d`` without. On the full-batch
statistics path Adam may work in *whitened* coordinates :math:`w = T
\theta`, with :math:`T^\top G T = I` for the working Gram matrix :math:`G`
(:mod:`sk_adam._datafit` finds :math:`T`): there the objective is
:math:`\tfrac12 \lVert \theta - \theta^* \rVert^2` plus a constant, with
:math:`\lVert \theta^* \rVert^2 = R^2 \le 1`, however correlated the
columns are.

:class:`Coordinates` is the map between the data's units and the working
coordinates, built from the rows (:meth:`Coordinates.from_data`) or from
merged statistics (:meth:`Coordinates.from_stats`); it knows nothing about
the objective or the optimiser.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from ._statistics import (
    GramStats,
    Matrix,
    column_stats,
    is_varying,
    spread_around,
    target_stats,
)

__all__ = [
    "Coordinates",
    "Layout",
    "target_scales",
    "target_scales_from_stats",
]

Float64Array = NDArray[np.float64]


@dataclass(frozen=True)
class Layout:
    """What the working coordinates are made of: the one place where
    ``fit_intercept`` and ``standardize`` are turned into offsets, scales and
    an intercept parameter.

    Attributes
    ----------
    fit_intercept, standardize : bool
        The estimator's parameters.
    stream : bool, default=False
        True for the coordinates a stream's first ``partial_fit`` call fixes
        from its chunk.
    """

    fit_intercept: bool
    standardize: bool
    stream: bool = False

    @property
    def center(self) -> bool:
        """Whether the offsets are the weighted means (else zero, and the
        scales are root mean squares)."""
        return self.standardize and self.fit_intercept

    @property
    def intercept(self) -> bool:
        """Whether the intercept is a parameter of Adam: when it is fitted
        without standardizing (centring makes it exact otherwise), and in
        streams, whose later chunks may have another mean."""
        return self.fit_intercept and (self.stream or not self.standardize)


@dataclass
class Coordinates:
    """The map between the data's units and the working coordinates.

    ``x_offset``, ``x_scale``, ``varying`` are as returned by
    :func:`column_stats`, ``y_offset`` and ``y_scale`` the same for the
    targets; ``intercept`` says whether the intercept is a parameter of the
    optimisation (its working value is the last row of the parameters).
    ``axes`` and ``axis_scale``, when not None, whiten: the optimiser's
    parameters ``theta`` map to the standardized ones by ``w = axes @
    (axis_scale * theta)`` (unit columns ``axes``, their lengths
    ``axis_scale``, 0 on an axis held at zero), and back by ``theta =
    unwhiten @ w`` (a left inverse on the axes that are not held). Models
    saved before ``unwhiten`` existed have orthonormal ``axes`` and no
    ``unwhiten``: ``theta = (axes.T @ w) / axis_scale`` there.
    """

    x_offset: Float64Array
    x_scale: Float64Array
    varying: NDArray[np.bool_]
    y_offset: Float64Array
    y_scale: Float64Array
    intercept: bool
    axes: Float64Array | None = None
    axis_scale: Float64Array | None = None
    unwhiten: Float64Array | None = None

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
    def from_data(cls, X, Y, s, layout: Layout) -> Coordinates:
        """Weighted statistics of the rows, or the identity map."""
        d, k = X.shape[1], Y.shape[1]
        if not layout.standardize:
            return cls.identity(d, k, layout.intercept)
        y_offset, y_scale = target_scales(Y, s, layout)
        x_offset, x_scale, varying = column_stats(X, s, layout.center)
        return cls(x_offset, x_scale, varying, y_offset, y_scale, layout.intercept)

    @classmethod
    def from_stats(
        cls,
        stats: GramStats,
        y_offset: Float64Array,
        y_scale: Float64Array,
        layout: Layout,
    ) -> Coordinates:
        """The same map from merged :class:`~sk_adam._statistics.GramStats`.

        ``y_offset`` and ``y_scale`` are the targets' (:func:`target_scales`
        or :func:`target_scales_from_stats`); the features' are as for
        :meth:`from_data`.
        """
        center, intercept = layout.center, layout.intercept
        d = stats.mean.size
        W = stats.weight
        mean = stats.mean  # in units of stats.ref
        moved = np.zeros(d) if center else mean  # weighted mean - offset
        # the diagonal of the centred second moments around the offsets
        second = (np.diag(stats.xx) + W * (moved * moved)) / W
        offset = mean * stats.ref if center else np.zeros(d)
        spread = stats.ref * np.sqrt(np.clip(second, 0.0, None))
        if not layout.standardize:
            ones = np.ones(d)
            varying = np.ones(d, dtype=bool)
            return cls(offset, ones, varying, y_offset, y_scale, intercept)
        varying = is_varying(spread, offset)
        x_scale = np.where(varying, spread, 1.0)
        return cls(offset, x_scale, varying, y_offset, y_scale, intercept)

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
        if self.unwhiten is not None:
            params = self.unwhiten @ params
        elif self.axes is not None:
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
        axes, axis_scale, unwhiten = self.axes, self.axis_scale, self.unwhiten
        if axes is not None:
            axes, axis_scale = _extended(axes), np.r_[axis_scale, 1.0]
        if unwhiten is not None:
            unwhiten = _extended(unwhiten)
        return replace(
            self, intercept=True, axes=axes, axis_scale=axis_scale, unwhiten=unwhiten
        )

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
            spread = spread_around(X, s, held, offset)
        free = is_varying(spread, offset) & np.isfinite(spread)
        if not free.any():
            return self
        varying, x_scale = self.varying.copy(), self.x_scale.copy()
        varying[held[free]] = True
        x_scale[held[free]] = spread[free]
        return replace(self, varying=varying, x_scale=x_scale)

    def whitened(self, T: Float64Array, unwhiten: Float64Array) -> Coordinates:
        """This map followed by ``w = T theta`` (``T`` of shape ``(p, p)``,
        zero columns for the axes held at zero) and ``theta = unwhiten @
        w``."""
        scale = np.linalg.norm(T, axis=0)
        axes = T / np.where(scale > 0, scale, 1.0)
        return replace(self, axes=axes, axis_scale=scale, unwhiten=unwhiten)

    @property
    def whitening(self) -> Float64Array | None:
        """``T`` with ``w = T theta``, or None."""
        if self.axes is None:
            return None
        return self.axes * self.axis_scale


def _extended(matrix: Float64Array) -> Float64Array:
    """``matrix`` with one more row and column, the identity's."""
    p = matrix.shape[0]
    return np.block([[matrix, np.zeros((p, 1))], [np.zeros((1, p)), 1.0]])


def target_scales(
    Y: Float64Array, s: Float64Array, layout: Layout
) -> tuple[Float64Array, Float64Array]:
    """The targets' working offsets and scales from their rows: weighted
    means (when ``layout.center``) and spreads (one for a constant target)
    when standardizing, else zeros and ones."""
    k = Y.shape[1]
    if not layout.standardize:
        return np.zeros(k), np.ones(k)
    offset, scale, _ = column_stats(Y, s, layout.center)
    return offset, scale


def target_scales_from_stats(
    stats: GramStats, layout: Layout
) -> tuple[Float64Array, Float64Array]:
    """:func:`target_scales` read off merged statistics instead of the rows
    (what a distributed fit has)."""
    k = stats.ymean.size
    if not layout.standardize:
        return np.zeros(k), np.ones(k)
    offset, spread = target_stats(stats, layout.center)
    return offset, np.where(is_varying(spread, offset), spread, 1.0)
