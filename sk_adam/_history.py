"""Adam's state after each iteration: :class:`AdamHistory` and its recorder.

The solver (:mod:`sk_adam._solver`) calls a callback after every iteration;
:class:`Recorder` is the callback that keeps a row of moments, steps and
coefficients per iteration, and turns them into an :class:`AdamHistory`.
"""

from __future__ import annotations

import numpy as np

from ._coordinates import Coordinates

__all__ = ["AdamHistory", "Recorder"]


class AdamHistory:
    """Adam's state after each iteration (see ``AdamRegressor.history_``).

    Attributes
    ----------
    moment1hat, moment2hat : ndarray
        Bias-corrected first and second moment estimates,
        ``(n_iter, n_params[, n_targets])``, in the working coordinates.
    step : ndarray
        The effective step ``alpha * moment1hat / (sqrt(moment2hat) +
        epsilon)`` of the iteration's last update, same shape.
    coef : ndarray
        Coefficients in the data's units, ``(n_iter[, n_targets],
        n_features)``.
    intercept : ndarray
        Intercepts, ``(n_iter[, n_targets])``.
    n_iter : int
        The number of rows.

    Notes
    -----
    ``partial_fit`` adds a row per call without copying the rows before it:
    they are kept in pieces whose sizes halve from the oldest to the newest
    (at most ``log2(n_iter) + 1`` of them; a row is copied at most that many
    times over a stream), joined into single arrays when an attribute is
    first read.
    """

    def __init__(self, moment1hat, moment2hat, step, coef, intercept):
        self._pieces = ((moment1hat, moment2hat, step, coef, intercept),)

    def _columns(self):
        """The five arrays, the pieces joined (once: the result is kept)."""
        if len(self._pieces) > 1:
            self._pieces = (_join(self._pieces),)
        return self._pieces[0]

    moment1hat = property(lambda self: self._columns()[0])
    moment2hat = property(lambda self: self._columns()[1])
    step = property(lambda self: self._columns()[2])
    coef = property(lambda self: self._columns()[3])
    intercept = property(lambda self: self._columns()[4])

    @property
    def n_iter(self) -> int:
        return sum(piece[2].shape[0] for piece in self._pieces)

    def __repr__(self) -> str:
        shape = self._pieces[0][2].shape[1:]
        return f"AdamHistory(n_iter={self.n_iter}, row shape {shape})"

    def _then(self, later: AdamHistory) -> AdamHistory:
        """This history followed by ``later``'s rows, sharing their arrays."""
        pieces = self._pieces + later._pieces
        # sizes kept decreasing, like the bits of a binary counter
        while len(pieces) > 1 and _rows(pieces[-2]) <= _rows(pieces[-1]):
            pieces = (*pieces[:-2], _join(pieces[-2:]))
        joined = AdamHistory.__new__(AdamHistory)
        joined._pieces = pieces
        return joined


def _rows(piece) -> int:
    return piece[2].shape[0]


def _join(pieces):
    return tuple(np.concatenate(column) for column in zip(*pieces, strict=True))


class Recorder:
    """Collects one row of :class:`AdamHistory` per iteration.

    Parameters
    ----------
    coords : Coordinates
        The working coordinates, to report the coefficients in the data's
        units.
    epsilon : float
        Adam's epsilon, to report the effective step.
    fit_intercept : bool
        Whether the intercept is reported (else it is 0).
    """

    def __init__(self, coords: Coordinates, epsilon: float, fit_intercept: bool):
        self.coords = coords
        self.epsilon = epsilon
        self.fit_intercept = fit_intercept
        self.rows = []

    def __call__(self, params, state, rate):
        """Record the iteration that left ``params``, ``state`` and was run
        at learning rate ``rate``."""
        m_hat = state.moment1 / (1.0 - state.beta1_power)
        v_hat = state.moment2 / (1.0 - state.beta2_power)
        step = rate * m_hat / (np.sqrt(v_hat) + self.epsilon)
        coef, intercept = self.coords.to_original(params, self.fit_intercept)
        self.rows.append((m_hat, v_hat, step, coef, intercept))

    def history(self, one_d, previous=None):
        """The recorded rows as an :class:`AdamHistory`, after ``previous``."""
        if not self.rows:
            return previous
        m_hat, v_hat, step, coef, intercept = (
            np.stack(column) for column in zip(*self.rows, strict=True)
        )
        if one_d:  # drop the target axis, as coef_ does for 1-D y
            m_hat, v_hat, step = m_hat[..., 0], v_hat[..., 0], step[..., 0]
            coef, intercept = coef[:, 0], intercept[:, 0]
        new = AdamHistory(m_hat, v_hat, step, coef, intercept)
        if previous is None:
            return new
        # the target axis follows the latest call's y, as coef_ does: a fit
        # on y of shape (n, 1) continued by partial_fit on y of shape (n,)
        previous = _with_target_axis(previous, not one_d)
        if previous._pieces[0][2].shape[1] == step.shape[1] - 1:
            # partial_fit after a standardized fit made the intercept a
            # parameter: it had no moments and no steps before (once a stream)
            old = previous._columns()
            pad = [(0, 0)] * step.ndim
            pad[1] = (0, 1)
            previous = AdamHistory(*(np.pad(a, pad) for a in old[:3]), *old[3:])
        return previous._then(new)


def _with_target_axis(history: AdamHistory, target_axis: bool) -> AdamHistory:
    """``history`` of one target with its target axis added or dropped."""
    has_axis = history._pieces[0][3].ndim == 3  # coef: (n_iter, k, d)
    if has_axis == target_axis:
        return history
    m_hat, v_hat, step, coef, intercept = history._columns()
    if target_axis:
        return AdamHistory(
            m_hat[..., None], v_hat[..., None], step[..., None],
            coef[:, None], intercept[:, None],
        )  # fmt: skip
    return AdamHistory(
        m_hat[..., 0], v_hat[..., 0], step[..., 0], coef[:, 0], intercept[:, 0]
    )
