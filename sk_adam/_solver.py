"""The run: Adam iterated until a stopping rule fires.

The solver owns how a fit proceeds and ends, and nothing else: it is given
an *epoch* (:mod:`sk_adam._epochs`: one iteration over the data), the
parameters and Adam state to advance, and a frozen :class:`SolverSettings`;
it never sees the estimator, the data or the datafit. What it owns:

- the **tol rule** (stop once the training MSE is below ``tol``), the
  **stall rule** (stop when the best MSE improved by at most a fraction
  ``stall_tol`` over the last ``window`` iterations) and its certified
  form, the **optimum rule** (stop as soon as the MSE is within a fraction
  ``stall_tol`` of the least-squares minimum, where the epoch knows that
  distance exactly: whitened statistics);
- the **plateau decay** (:class:`PlateauDecay`): a stall while the MSE in
  the window still moves is Adam circling the minimum, which a tenth of the
  learning rate cures; the run goes back to its best iterate and goes on;
- the **best iterate** (the kept coefficients are those of the lowest
  criterion, or the first below ``tol``), **divergence** (a non-finite MSE
  ends the run, keeping the best finite iterate), the **warnings** of a
  run that did not converge, **progress** lines (``verbose``) and a
  **callback** after every iteration (the history recorder).

:func:`solve` runs a fit; :func:`run_epoch` runs the single epoch of a
``partial_fit`` call, where a divergence is an error (:class:`Diverged`),
since there is no earlier iterate of the call to fall back on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._adam import AdamState, IterateAverage

__all__ = [
    "Diverged",
    "PlateauDecay",
    "Run",
    "SolverSettings",
    "run_epoch",
    "shortfall_tolerance",
    "solve",
    "stall_window",
]

#: A stall whose window saw the criterion this far (relative) above its best
#: is Adam circling the minimum, which a smaller learning rate cures; below
#: it the MSE is flat and the fit has converged (see ``stall_decays``).
CIRCLING_RTOL = 1e-8
#: Changes of the criterion below this fraction of its starting value are
#: round-off (the statistics path evaluates the MSE to about 1e-16 of the
#: targets' second moment): an exact fit, whose best MSE sits at that level
#: (and may read a tiny negative number), counts as stalled there.
ROUNDOFF_RTOL = 1e-15
#: The optimum rule fires once the MSE lies less than this fraction of the
#: starting MSE (at zero parameters, unless warm-started) above the
#: least-squares minimum: in whitened
#: coordinates, where that excess is ``||theta - theta*||^2``, the parameters
#: are then within 1e-10 of the solution in standard deviations of ``y``
#: (coefficients as exact as the closed form's to about 1e-10 relative on a
#: well-conditioned design). Adam gets there in 300-470 iterations from zero
#: with the default parameters, whatever the number of features.
OPTIMUM_RTOL = 1e-20
#: A fit that stalls while its MSE is still above the least-squares minimum
#: by more than this fraction of the targets' variance (its R^2 that much
#: short) warns: the stall rule fired on slow progress, not at the optimum.
#: Full batch converges to round-off; mini-batches settle within their noise
#: (on 200,000 x 50 with defaults, 3e-6 to 2e-5 short), hence a wider bound.
SHORTFALL_WARN = {False: 1e-5, True: 1e-4}


def shortfall_tolerance(batched: bool) -> float:
    """The R^2 shortfall above which a stalled fit warns (see
    :data:`SHORTFALL_WARN`)."""
    return SHORTFALL_WARN[bool(batched)]


def stall_window(n_iter_no_change, batched: bool) -> int | None:
    """``n_iter_no_change`` with "auto" resolved: 200 iterations in full
    batch, 5 epochs with mini-batches."""
    if n_iter_no_change == "auto":
        return 5 if batched else 200
    return n_iter_no_change


@dataclass(frozen=True)
class SolverSettings:
    """What a run is told (see ``AdamRegressor``'s parameters).

    Attributes
    ----------
    alpha : float
        The learning rate the run starts with.
    max_iter : int
        Most iterations.
    tol : float
        MSE threshold of the tol rule, in squared units of ``y`` (0: off).
    window : int or None
        Window of the stall rule (None: off).
    stall_tol : float
        Relative improvement over the window below which the run stalls.
    stall_decays : int
        Most plateau decays of the learning rate.
    verbose : int
        Print progress when positive: at iterations 1-10, 20, ..., 100,
        200, ...; every iteration from 2 on.
    unit : str
        What an iteration is called in progress lines: "iteration" (full
        batch) or "epoch" (mini-batches).
    shortfall_tol : float
        A run the stall rule ends while its R^2 is more than this short of
        least squares warns (see :func:`solve`'s ``shortfall``).
    """

    alpha: float
    max_iter: int
    tol: float
    window: int | None
    stall_tol: float
    stall_decays: int
    verbose: int = 0
    shortfall_tol: float = SHORTFALL_WARN[False]
    unit: str = "iteration"


class PlateauDecay:
    """The learning rate, divided by :attr:`FACTOR` at each decay, at most
    ``allowed`` times.

    >>> decay = PlateauDecay(0.1, allowed=1)
    >>> decay.decay(), decay.rate, decay.decay(), decay.decays
    (True, 0.01, False, 1)
    """

    #: What each decay divides the learning rate by.
    FACTOR = 10.0

    def __init__(self, rate: float, allowed: int) -> None:
        self.rate = float(rate)
        self.allowed = allowed
        self.decays = 0

    @classmethod
    def rate_after(cls, alpha: float, decays: int) -> float:
        """The rate a run that started at ``alpha`` ends with after
        ``decays`` decays (to round-off), for a stream to continue at."""
        return alpha / cls.FACTOR**decays

    def decay(self) -> bool:
        """Divide the rate, if a decay is left; whether it was."""
        if self.decays >= self.allowed:
            return False
        self.rate /= self.FACTOR
        self.decays += 1
        return True


@dataclass
class Run:
    """What a run leaves: the kept iterate and how it got there.

    ``curve`` is the training MSE per iteration in squared units of ``y``;
    ``warnings`` the messages of a run that did not converge, for the
    caller to issue where its user sees them.
    """

    params: np.ndarray
    state: AdamState
    curve: np.ndarray
    best_iter: int
    reason: str
    validation_scores: np.ndarray | None
    decays: int
    warnings: tuple[str, ...] = ()
    #: the average of the iterates a stream reports (``partial_fit``)
    average: IterateAverage | None = None


class Diverged(ValueError):
    """A ``partial_fit`` epoch left a non-finite MSE or parameters."""


class _Units:
    """Decisions are taken on MSEs divided by ``max(y_scale)**2``, so that
    they stay finite where the MSE in squared units of ``y`` overflows."""

    def __init__(self, y_scale) -> None:
        self.unit = float(np.max(y_scale))
        self.weights = (y_scale / self.unit) ** 2 / y_scale.size

    def to_data(self, scaled):
        return scaled * self.unit * self.unit


class _Progress:
    """The criterion's path through a run: the stall rule and the best
    iterate (a copy of the parameters and the Adam state at it).

    The criterion is the training MSE, or the validation MSE when a
    validation set is watched (its R^2 per iteration kept as scores).
    """

    def __init__(self, settings, units, validation, params, state, start):
        self.settings, self.units, self.validation = settings, units, validation
        self.scores = None if validation is None else []
        self.loss = [start]  # loss[t]: training MSE of iteration t
        self.best = [self._criterion(start, params)]  # lowest criterion to t
        self.value = [self.best[0]]  # the criterion of iteration t
        if self.scores:
            self.scores.pop()  # the starting point's score is not an iteration's
        self.best_params, self.best_state = params.copy(), state.copy()
        self.best_iter = 0
        self.floor = None  # the criterion's round-off, from its first value
        self.minimum = None  # the least-squares MSE, where the epoch knows it
        self.window_start = 0  # the window starts afresh after a decay

    def _criterion(self, train_mse, params):
        if self.validation is None:
            return train_mse
        mse, score = self.validation(params)
        self.scores.append(score)
        unit = self.units.unit
        return float(np.mean(mse / unit / unit))

    def record(self, t, current, params, state) -> None:
        """Iteration ``t`` left the (finite) training MSE ``current``."""
        value = self._criterion(current, params)
        if self.floor is None:
            first = self.best[0] if np.isfinite(self.best[0]) else value
            self.floor = ROUNDOFF_RTOL * abs(first)
        self.value.append(value)
        self.best.append(min(value, self.best[t - 1]))
        if value < self.best[t - 1]:
            self.best_params[...] = params
            self.best_state.assign(state)
            self.best_iter = t

    def extend(self, t, losses, best_step) -> int:
        """Iterations ``t + 1, ...`` left ``losses`` (the training MSEs; the
        last one may be non-finite, which is not recorded), run where the
        best iterate was kept by the epoch itself, at ``best_step`` of them
        (-1: none better). Returns the last iteration."""
        if self.floor is None:
            first = self.best[0] if np.isfinite(self.best[0]) else losses[0]
            self.floor = ROUNDOFF_RTOL * abs(first)
        self.loss.extend(losses.tolist())
        finite = losses if np.isfinite(losses[-1]) else losses[:-1]
        self.value.extend(finite.tolist())
        self.best.extend(
            np.minimum.accumulate(np.r_[self.best[t], finite])[1:].tolist()
        )
        if best_step >= 0:
            self.best_iter = t + best_step + 1
        return t + losses.size

    def quiet(self, t, max_iter) -> int:
        """How many of the iterations after ``t`` (at least 1, at most to
        ``max_iter``) cannot fire the stall rule, whatever their MSE.

        The best MSE never rises, and what is left to gain never grows: so
        the rule cannot fire at ``t' `` unless ``best[t' - window]`` is
        already within today's margin of today's best, which first holds
        at some index ``j`` (the window having started by then).
        """
        window, room = self.settings.window, max_iter - t
        if window is None:
            return room
        best = self.best
        left = best[t] if self.minimum is None else best[t] - self.minimum
        margin = self.settings.stall_tol * max(abs(left), self.floor or 0.0)
        recent = np.asarray(best[self.window_start : t + 1])
        j = self.window_start + int(np.argmax(recent <= best[t] + margin))
        return max(1, min(j + window - 1 - t, room))

    def stalled(self, t) -> str | None:
        """None, or "flat" (converged) or "circling" when the stall rule
        fires at iteration ``t``.

        Where the minimum is known, improvements are measured against what
        is left to gain above it (the stall rule is then the safety net of
        the optimum rule: it fires when Adam no longer closes the gap), else
        against the best MSE."""
        window, best = self.settings.window, self.best
        if window is None or t - window < self.window_start:
            return None
        left = best[t] if self.minimum is None else best[t] - self.minimum
        level = max(abs(left), self.floor)
        if best[t - window] - best[t] > self.settings.stall_tol * level:
            return None
        rise = max(self.value[t - window + 1 : t + 1]) - best[t]
        return "circling" if rise > CIRCLING_RTOL * abs(best[t]) else "flat"

    def rewind(self, t, params, state) -> None:
        """Back to the best iterate; the window starts afresh at ``t``."""
        params[...] = self.best_params
        state.assign(self.best_state)
        self.window_start = t


def solve(
    epoch,
    params: np.ndarray,
    state: AdamState,
    settings: SolverSettings,
    *,
    y_scale: np.ndarray,
    validation: Callable | None = None,
    callback: Callable | None = None,
    shortfall: Callable | None = None,
) -> Run:
    """Iterate ``epoch.run`` until a stopping rule fires.

    Parameters
    ----------
    epoch : epoch
        ``start``, ``run`` and ``restart`` as in :mod:`sk_adam._epochs`,
        built on ``state``.
    params : ndarray of shape (n_params, n_targets)
        The starting point, advanced in place.
    state : AdamState
        Adam's state, advanced in place by the epoch.
    settings : SolverSettings
    y_scale : ndarray of shape (n_targets,)
        The targets' working scales: MSEs are reported in squared units of
        ``y``, averaged over targets.
    validation : callable, optional
        ``validation(params) -> (mse per target, R^2)`` on held-out rows;
        the stall rule and the best iterate then follow its MSE.
    callback : callable, optional
        ``callback(params, state, rate)`` after every iteration.
    shortfall : callable, optional
        ``shortfall(params)``: how far the training MSE at ``params`` lies
        above the least-squares minimum, as a fraction of the targets'
        variance (a lower bound). Asked of the kept iterate when the stall
        rule ended the run: above ``settings.shortfall_tol`` the run warns.
    """
    units = _Units(y_scale)
    allowed = settings.stall_decays if validation is None else 0
    decay = PlateauDecay(settings.alpha, allowed)
    known = epoch.start(params)
    with np.errstate(over="ignore", invalid="ignore"):
        start = np.inf if known is None else known @ units.weights
    if known is not None and not np.isfinite(start):
        raise ValueError(
            "The training MSE at the starting point is not finite: the values "
            "of X or y are so large that their squares overflow float64. "
            "Rescale the data or use standardize=True."
        )
    progress = _Progress(settings, units, validation, params, state, start)
    reason, t = _iterate(epoch, params, state, settings, decay, progress, callback)
    run = _result(params, state, settings, decay, progress, reason, t)
    if reason == "stall" and shortfall is not None:
        short = shortfall(run.params)
        if short > settings.shortfall_tol:
            run.warnings += (_stalled_short(settings, short),)
    return run


def _stalled_short(settings, short) -> str:
    return (
        f"Adam stopped by the stall rule (the best MSE improved by at most "
        f"stall_tol={settings.stall_tol} over n_iter_no_change="
        f"{settings.window} iterations) while its R^2 is still at least "
        f"{short:.2g} short of the least-squares fit: progress was slow, not "
        f"finished. Raise n_iter_no_change or lower stall_tol; with "
        f"mini-batches also a smaller batch_size or more stall_decays; or fit "
        f"in full batch (batch_size=None), which converges further."
    )


#: The stop codes of an epoch's compiled steps (``run_steps``).
_STOP_CODES = {0: None, 1: "tol", 2: "optimum", 3: "diverged"}

#: Numpy iterations between two asks whether the compiled steps pay yet.
ASK_EVERY = 256


def _iterate(epoch, params, state, settings, decay, progress, callback):
    """The loop of :func:`solve`; returns the rule that ended it and the
    last iteration.

    Where the epoch runs many steps in one compiled call (a whitened
    problem), the iterations that cannot fire the stall rule
    (:meth:`_Progress.quiet`) run that way, with the tol and optimum rules
    and the best iterate kept inside the call: the same iterations, the
    same decisions, without Python between them."""
    t = 0
    progress.tol, progress.gap_tol = _thresholds(settings, progress, epoch)
    quick = _quick_steps(epoch, settings, progress, callback)
    progress.clock = asked = time.perf_counter()
    # non-finite values are detected below; numpy need not warn about them
    with np.errstate(over="ignore", invalid="ignore"):
        while t < settings.max_iter:
            if quick is None and t % ASK_EVERY == 0 < t:
                # numpy iterations so far: the compiled loop may pay now
                now = time.perf_counter()
                quick = _quick_steps(epoch, settings, progress, callback, now - asked)
                asked = now
            count = progress.quiet(t, settings.max_iter) if quick else 1
            if settings.verbose:  # stop where a progress line is due
                count = min(count, _next_report(t, settings.verbose) - t)
            if count > 1:
                t, stop = quick(params, decay.rate, count, t)
                if settings.verbose and np.isfinite(progress.loss[t]):
                    _report(
                        settings, t, progress.units.to_data(progress.loss[t]), progress
                    )
            else:
                t += 1
                stop = _one_iteration(
                    epoch, params, state, decay, progress, callback, t
                )
            if stop is None:
                stop = _stall(epoch, params, state, decay, progress, t)
            if stop is not None:
                return stop, t
    return "max_iter", t


def _thresholds(settings, progress, epoch):
    """Once per run: the tol rule's threshold (-inf when off: tol=0
    switches it off, since a fit from statistics can report an MSE a
    round-off below zero) and the optimum rule's (-inf when off: it is the
    stall rule's certified form, on the training MSE, so not with a
    validation set). The optimum rule measures against the MSE of zero
    parameters, the starting MSE of a cold start: a warm start from a
    solution has the same threshold as the fit that found it."""
    unit = progress.units.unit
    tol = settings.tol / unit / unit if settings.tol > 0 else -np.inf
    certify = settings.window is not None and progress.validation is None
    null = epoch.null_loss() if certify else None
    scale = progress.loss[0] if null is None else null @ progress.units.weights
    gap = OPTIMUM_RTOL * abs(scale) if certify else -np.inf
    return tol, gap


def _one_iteration(epoch, params, state, decay, progress, callback, t):
    """Iteration ``t``: one epoch, then the rules that look at its MSE."""
    settings = progress.settings
    current = epoch.run(params, decay.rate) @ progress.units.weights
    progress.loss.append(current)
    if callback is not None:
        callback(params, state, decay.rate)
    if not np.isfinite(current):
        return "diverged"
    progress.record(t, current, params, state)
    if settings.verbose:
        _report(settings, t, progress.units.to_data(current), progress)
    if current < progress.tol:
        return "tol"
    gap = epoch.gap() if progress.gap_tol > -np.inf else None
    if gap is not None:
        gap = gap @ progress.units.weights
        progress.minimum = current - gap
        if gap <= progress.gap_tol:
            return "optimum"
    return None


def _stall(epoch, params, state, decay, progress, t):
    """The stall rule at iteration ``t``: "stall", or None (also after a
    plateau decay, which goes back to the best iterate and goes on)."""
    stall = progress.stalled(t)
    if stall == "circling" and decay.decay():
        # circling, not converged: back to the best point, with a tenth of
        # the learning rate
        settings = progress.settings
        if settings.verbose:
            unit = settings.unit
            print(
                f"{unit} {t}: the best MSE stalled while the MSE kept moving; "
                f"learning rate divided by {PlateauDecay.FACTOR:g} (now "
                f"{decay.rate:.3g}, decay {decay.decays} of {decay.allowed}), "
                f"going on from {unit} {progress.best_iter}"
            )
        progress.rewind(t, params, state)
        epoch.restart(params)
        return None
    return None if stall is None else "stall"


def _quick_steps(epoch, settings, progress, callback, spent=0.0):
    """``quick(params, rate, count, t) -> (t, stop)``, running ``count``
    iterations after ``t`` in one compiled call, or None where the epoch
    has none (or has not built it yet: ``spent`` is the seconds of numpy
    iterations since the last ask, see :meth:`FullBatchStep.stepper`) or
    every iteration must be seen (a callback, a validation set; progress
    lines are printed between calls)."""
    if callback is not None or progress.validation is not None:
        return None
    stepper = getattr(epoch, "stepper", None)
    run_steps = stepper(spent) if stepper is not None else None
    if run_steps is None:
        return None
    weights, tol, gap_tol = progress.units.weights, progress.tol, progress.gap_tol

    def quick(params, rate, count, t):
        best = (progress.best[t], progress.best_params, progress.best_state)
        losses, code, best_step = run_steps(
            params, rate, count, best, weights, tol, gap_tol
        )
        if np.isfinite(losses[-1]):
            progress.minimum = losses[-1] - epoch.gap() @ weights
        return progress.extend(t, losses, best_step), _STOP_CODES[code]

    return quick


def _result(params, state, settings, decay, progress, reason, t) -> Run:
    units = progress.units
    with np.errstate(over="ignore", invalid="ignore"):
        # (the Gram path's MSE may be a tiny negative number for exact fits)
        curve = units.to_data(np.maximum(np.array(progress.loss[1 : t + 1]), 0.0))
        start_mse = units.to_data(progress.loss[0])
    current = reason in ("tol", "optimum")  # the iterate that stopped the run
    kept = t if current else progress.best_iter
    if settings.verbose:
        unit = settings.unit
        print(f"Stopped at {unit} {t} by the {reason} rule; keeping {unit} {kept}.")
    messages = _unconverged(settings, reason, t, progress.best_iter, curve, start_mse)
    scores = progress.scores
    if scores is not None:
        scores = np.asarray(scores[: len(curve)])
    if not current:
        params, state = progress.best_params, progress.best_state
    return Run(params, state, curve, kept, reason, scores, decay.decays, messages)


def _unconverged(settings, reason, t, best_iter, curve, start_mse) -> tuple:
    """The warnings of a run that did not converge."""
    messages = []
    if reason == "diverged":
        messages.append(
            f"Adam diverged at iteration {t}: the training MSE became "
            f"{curve[-1]}. The coefficients of iteration {best_iter} (the best "
            f"finite ones) are kept. Reduce alpha (now {settings.alpha}) or use "
            f"standardize=True."
        )
    elif reason == "max_iter":
        messages.append(
            f"Adam reached max_iter={settings.max_iter} before the MSE fell "
            f"below tol={settings.tol} or stopped improving (n_iter_no_change="
            f"{settings.window}, stall_tol={settings.stall_tol}). Increase "
            f"max_iter, or alpha if the loss curve is still falling steadily."
        )
    if (
        reason not in ("tol", "optimum")
        and best_iter == 0
        and np.min(curve) > start_mse * (1 + 1e-8)
    ):
        messages.append(
            f"No Adam iteration improved on the starting point (MSE "
            f"{start_mse:.6g}); the starting coefficients are kept. "
            f"alpha={settings.alpha} is probably far too large for this data."
        )
    return tuple(messages)


def run_epoch(epoch, params, state, rate, *, y_scale, callback=None) -> float:
    """One epoch of a ``partial_fit`` call; returns its training MSE in
    squared units of ``y``.

    Raises
    ------
    Diverged
        When the MSE or the parameters are not finite; ``params`` and the
        Adam state are then spoilt, and the caller keeps its own.
    """
    units = _Units(y_scale)
    with np.errstate(over="ignore", invalid="ignore"):
        loss = epoch.run(params, rate)
    if callback is not None:
        callback(params, state, rate)
    scaled = float(loss @ units.weights)
    with np.errstate(over="ignore"):
        mse = units.to_data(scaled)
    if not (np.isfinite(scaled) and np.all(np.isfinite(params))):
        raise Diverged(
            f"Adam diverged in partial_fit (training MSE {mse}); the "
            f"coefficients were not updated. Reduce alpha (now {rate}) or "
            f"scale the data."
        )
    return mse


def _next_report(t, verbose=1):
    """The first iteration after ``t`` that :func:`_report` prints."""
    if t < 10 or verbose >= 2:
        return t + 1
    cadence = 10 ** (len(str(t)) - 1)
    return (t // cadence + 1) * cadence


def _report(settings, t, mse, progress):
    """A progress line for iteration ``t``, where one is due."""
    cadence = 1 if settings.verbose >= 2 else 10 ** max(0, len(str(t)) - 1)
    if t % cadence == 0:
        elapsed = time.perf_counter() - progress.clock
        print(f"{settings.unit} {t} MSE {mse:.6g} ({elapsed:.2f} s)")
