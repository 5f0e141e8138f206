"""AdamRegressor: least-squares linear regression solved by Adam.

The estimator is a thin assembly (see ``docs/architecture.rst``): it holds
the parameters, checks them against each other in one place
(:meth:`AdamRegressor._check_params`), validates the input, and sends
``fit``, ``partial_fit`` and dask input down one road,
:meth:`AdamRegressor._fit`: the data (:mod:`sk_adam._data`,
:mod:`sk_adam._dask`, :mod:`sk_adam._files`) give the problem and its epochs, the solver
(:mod:`sk_adam._solver`) runs them, and :meth:`AdamRegressor._set_fitted`
sets every fitted attribute.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import warnings
import weakref
from dataclasses import fields
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from ._adam import Adam, AdamState, InverseSqrtDecay, IterateAverage
from ._coordinates import Coordinates, Layout
from ._dask import dask_data, is_dask, predict_dask
from ._data import ArrayData, relative_weights
from ._datafit import RowLeastSquares
from ._epochs import FullBatchStep
from ._files import FileData, FileRows
from ._history import AdamHistory, Recorder
from ._kernel import announcing
from ._solver import (
    Diverged,
    PlateauDecay,
    Run,
    SolverSettings,
    run_epoch,
    shortfall_tolerance,
    solve,
    stall_window,
)
from ._version import __version__

__all__ = ["AdamHistory", "AdamRegressor"]  # AdamHistory: 0.1.0 pickles name it here

#: The ``stacklevel`` at which a warning issued in ``_fit`` names the line
#: that called ``fit`` or ``partial_fit``: above ``_fit`` stand the method,
#: ``_atomic``'s wrapper and ``_restoring``, and ``_fit_context``'s wrapper.
_CALLER = 6


#: ``alpha="auto"``: the article's learning rate, 0.1. In standardized
#: coordinates an optimal coefficient is of order 1, and whitened full-batch
#: fits need 300-470 iterations with it.
ALPHA_AUTO = 0.1

#: ``alpha="auto"`` in a stream (``partial_fit``): step ``t`` is taken at
#: ``0.1 / sqrt(1 + (t - 1) / ALPHA_DECAY_STEPS)`` (:class:`InverseSqrtDecay`).
#: Noisy batch gradients keep Adam moving by about the rate around the
#: minimum: a short stream needs large early steps to get there, a long one
#: small late ones; with the average of the iterates the decay gives both.
#: (A ``fit`` in mini-batches has its stall rule's plateau decays instead:
#: with this decay as well the rule fired after 127 epochs instead of 31 on
#: 200,000 x 50, 2.1 times the time, for R^2 7e-9 instead of 3e-6 short.)
ALPHA_DECAY_STEPS = 10.0

#: Rows per mini-batch of ``partial_fit`` when ``batch_size`` is None: one
#: call is then one epoch over the chunk, as one call of SGDRegressor's or
#: MLPRegressor's ``partial_fit`` is.
STREAM_BATCH = 256


def _recording_average(recorder, average, params, state, rate):
    """``recorder`` called with the average of the iterates, which a stream
    reports, in place of the last iterate."""
    recorder(average.params if average.count else params, state, rate)


#: One lock per estimator instance (weakly held: it goes with the instance),
#: so that calls on one instance from several threads run one at a time.
_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _lock_of(est) -> threading.RLock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(est)
        if lock is None:
            lock = _LOCKS[est] = threading.RLock()
        return lock


def _atomic(method):
    """Run ``method`` alone on its instance, and leave the estimator as it was
    if it raises, even on KeyboardInterrupt: fitted state is never
    half-updated.

    Calls on one instance from several threads (a stream fed by workers)
    are serialized: each ``partial_fit`` continues where the previous one
    left, and none is lost.

    Fitted attributes are only ever replaced, never modified in place, so a
    shallow copy of the instance's attributes is a snapshot. The one object
    that is advanced in place, the random stream ``partial_fit`` continues,
    has its state saved and put back (cheaper than copying the generator on
    every call), when something draws from it: shuffled epochs and the
    validation split.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with _lock_of(self):
            return _restoring(method, self, *args, **kwargs)

    return wrapper


def _restoring(method, self, *args, **kwargs):
    """``method(self, ...)``, with the instance put back if it raises."""
    saved = dict(self.__dict__)
    random = saved.get("_random")
    if not (self.shuffle or self.early_stopping):
        random = None  # not drawn from: nothing to put back
    random_state = None if random is None else random.get_state()
    try:
        return method(self, *args, **kwargs)
    except BaseException:
        self.__dict__.clear()
        self.__dict__.update(saved)
        if random is not None:
            random.set_state(random_state)
        raise


class AdamRegressor(RegressorMixin, BaseEstimator):
    r"""Linear least-squares regression fitted by the Adam optimizer.

    Minimises, for each target, the weighted mean squared error

    .. math::

        f(w, b) = \frac{1}{2} \frac{\sum_i s_i (y_i - x_i \cdot w - b)^2}
                  {\sum_i s_i}

    with Adam (Kingma & Ba, 2015), full batch by default. With :math:`g_t` the
    gradient of :math:`f` at the current coefficients (on a mini-batch when
    ``batch_size`` is set), each Adam step :math:`t = 1, 2, \dots` performs

    .. math::

        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2, \\
        \hat m_t &= \frac{m_t}{1 - \beta_1^t}, \qquad
        \hat v_t = \frac{v_t}{1 - \beta_2^t}, \\
        w_t &= w_{t-1} - \alpha\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon},

    element-wise, from :math:`m_0 = v_0 = 0`. With ``fit_intercept=False`` and
    ``standardize=False`` the iterates are exactly those of
    ``torch.optim.Adam(lr=alpha, betas=(beta1, beta2), eps=epsilon)`` on
    :math:`f`.

    Parameters
    ----------
    alpha : float > 0 or "auto", default="auto"
        The learning rate of Adam, as in the article this estimator follows:
        the largest change of a coefficient in one iteration is about
        ``alpha``. **It is not a regularisation strength** as in
        :class:`~sklearn.linear_model.Ridge` or
        :class:`~sklearn.linear_model.Lasso`; this estimator has no penalty.
        Its unit depends on ``standardize``:

        - ``standardize=True``: coefficients are moved in standardized units
          (standard deviations of ``y`` per standard deviation of the
          feature), in which an optimal coefficient is typically of order 1,
          so the default suits most data;
        - ``standardize=False``: coefficients (and the intercept) are moved in
          the units of the data as given, so ``alpha`` must be chosen for the
          scale of the coefficients you expect;
        - whitened fits (``whitened_``, see ``whiten``): the parameters are
          principal axes scaled to unit curvature, and ``alpha`` is the step
          along each in standard deviations of ``y`` (the whole distance to
          the solution is at most 1).

        ``"auto"`` is the article's 0.1 in every ``fit``, and in a stream
        (``partial_fit``) 0.1 decaying with the stream's steps: step ``t``
        is taken at

        .. math::

            \alpha_t = \frac{0.1}{\sqrt{1 + (t - 1 - t_0) / 10}}

        (:math:`t_0`: 0, or the step at the last :meth:`reset_schedule`),
        0.01 after about 1,000 steps, 0.001 after 100,000. Noisy batch
        gradients keep Adam moving by about the rate around the minimum; a
        ``fit`` in mini-batches lets its stall rule divide the rate by 10
        at each stall (see ``stall_decays``), a stream, which has no
        stopping rule, takes this decay, and its coefficients are the
        average of its iterates (see ``average``). A number is used as a
        constant rate everywhere (divided only by the stall rule's decays).

    beta1 : float in [0, 1), default=0.9
        Decay rate of the first-moment (mean gradient) estimate.

    beta2 : float in [0, 1), default=0.999
        Decay rate of the second-moment (mean squared gradient) estimate.

    epsilon : float > 0, default=1e-8
        Added to :math:`\sqrt{\hat v_t}` (outside the square root) to keep
        steps finite; in units of the gradient.

    tol : float >= 0, default=0.0
        **An MSE threshold, not an improvement threshold** (unlike ``tol`` in
        scikit-learn's :class:`~sklearn.linear_model.SGDRegressor`). After
        each iteration the training mean squared error of the current
        coefficients is computed (weighted by ``sample_weight``, averaged over
        targets, in squared units of ``y``, whatever ``standardize`` is); as
        soon as it is below ``tol`` the fit stops and keeps those
        coefficients. The default 0 switches this rule off, since no fixed
        number suits every scale of ``y``; the stall rule
        (``n_iter_no_change``, ``stall_tol``) then ends the fit.

    max_iter : int >= 1, default=50_000
        Maximum number of Adam iterations (full passes over the data). Ending
        here without the ``tol`` or stall rule firing raises a
        :class:`~sklearn.exceptions.ConvergenceWarning`.

    n_iter_no_change : int >= 1, "auto" or None, default="auto"
        Window of the **stall rule**, which carries scikit-learn's usual
        "improvement" meaning of a tolerance: with :math:`L^*_t` the lowest
        training MSE seen up to iteration :math:`t` (the starting point
        included), the fit stops at iteration :math:`t` when

        .. math::

            L^*_{t - n} - L^*_t \le \text{stall\_tol} \cdot L^*_t,
            \qquad n = \text{n\_iter\_no\_change},

        that is, when the best MSE improved by at most a fraction
        ``stall_tol`` over the last ``n`` iterations. Because it compares best
        values over a window, it does not fire while the MSE is still falling
        by more than that fraction, even if Adam's iterates oscillate. On
        whitened fits, which know the least-squares minimum
        :math:`L_{\min}`, the right-hand side is :math:`\text{stall\_tol}
        \cdot (L^*_t - L_{\min})`, what is left to gain: the rule then fires
        only when Adam stops closing the gap (the optimum rule, see
        ``whiten``, normally ends the fit first). None disables both rules.
        ``"auto"``: 200 iterations in full batch, where an
        iteration is cheap and Adam's overshoots can last that long; 5 epochs
        with mini-batches, as in SGDRegressor and MLPRegressor, where an epoch
        is a pass over the data and its MSE is noisy (with ``stall_decays``
        this is a learning-rate schedule: a 200,000 x 50 fit with batches of
        256 and the default ``alpha`` stops after 31 epochs and 3 decays,
        3.2e-6 of R^2 from least squares).

    stall_tol : float >= 0, default=1e-10
        Relative improvement of the best MSE over ``n_iter_no_change``
        iterations below which the fit is considered stalled (see above).
        A stall is slow progress, not proof of the optimum: when the stall
        rule ends a fit, a few conjugate-gradient steps bound from below how
        far the kept coefficients' R^2 is from least squares (on the
        training data, in full batch), and a
        :class:`~sklearn.exceptions.ConvergenceWarning` with the remedy is
        raised when it is more than 1e-5 short (1e-4 with mini-batches,
        whose noise settles a little above the optimum). Not checked with
        ``early_stopping``, which stops on held-out rows by design.

    stall_decays : int >= 0, default=3
        How many times a stall may divide the learning rate by 10 instead of
        ending the fit. With a constant learning rate Adam can circle above
        the minimum: the best MSE stops improving while the MSE keeps moving
        (on a 2000 x 1000 random design it rises to five times its best
        excess). When the stall rule fires and the MSE in its window rose
        more than 1e-8 (relative) above the best, Adam goes back to the best
        coefficients (with their moments), continues with the learning rate
        divided by 10 and the window starts afresh; each such decay brings the
        fit about 100 times closer (there: R^2 gaps 1.3e-6, 1.6e-8, 2.7e-11).
        A stall with a flat MSE (converged) ends the fit at once. 0 keeps the
        article's constant learning rate. Not used with ``early_stopping``,
        whose stall ends the fit. ``alpha_decays_`` counts the decays.

    fit_intercept : bool, default=True
        Whether to fit an intercept. If False the data are assumed centred.

    standardize : bool, default=True
        If True, Adam runs in standardized coordinates: features and target
        are centred (when ``fit_intercept``) and scaled by their weighted
        means and standard deviations (root mean squares when not centred),
        as glmnet does by default; ``coef_`` and ``intercept_`` are reported
        in the original units. The intercept is then exact at every
        iteration and not a parameter of Adam. Constant features get a zero
        coefficient. ``X`` is never copied: the centring and scaling are
        applied implicitly. If False, Adam runs on the data as given, with the
        intercept (when fitted) as one more parameter.

    precompute : {"auto", True, False}, default="auto"
        How the full-batch gradient is computed; both give the same iterates
        (to round-off).

        - ``True``: from the sufficient statistics :math:`X^\top S X`,
          :math:`X^\top S y` and :math:`y^\top S y` (centred and scaled as
          above), computed in one blockwise pass over ``X`` in float64. Each
          iteration then costs :math:`O(d^2)` per target, independent of the
          number of samples. The training MSE is obtained from the same
          statistics, accurate to about :math:`10^{-15}` times the variance
          of ``y`` in absolute terms, so a ``tol`` below that is not reached.
        - ``False``: two products with ``X`` per iteration (:math:`O(nnz(X))`),
          in the dtype of ``X``.
        - ``"auto"``: the statistics whenever the :math:`d \times d` matrix
          is small (``n_features <= 2048``, at most 32 MiB), whatever the
          number of samples, so that designs wider than tall are whitened
          too (for sparse ``X`` also ``n_features**2 <= 2 * nnz``); the
          products otherwise.

    whiten : {"auto", True, False}, default="auto"
        Whether Adam works on whitened coordinates instead of one coordinate
        per feature; full batch on the sufficient statistics only
        (``precomputed_`` True).

        Adam scales each coordinate by its own gradient history, which undoes
        differences of scale between features but not correlations between
        them: on designs such as polynomial features the iterations it needs
        grow with the condition number, and a degree-5 polynomial on [0, 1]
        is still 2e-3 short of the least-squares R^2 after 50,000 iterations.
        Whitened, the parameters are ``theta`` with ``w = T theta`` and
        ``T' G T = I`` for the working Gram matrix ``G``; the objective
        becomes ``||theta - theta*||^2 / 2`` plus a constant, with
        ``||theta*||^2`` the R^2 of the fit, and the distance to the
        solution is known at every iteration: the fit stops (the optimum
        rule, ``stop_reason_ == "optimum"``) once the MSE is within 1e-20
        of the MSE of zero coefficients (the starting MSE of a cold start)
        above the least-squares minimum, after 300-470 iterations with the
        default parameters however correlated the columns are. ``alpha``
        is then the step per axis in units of the target's standard
        deviation. ``T`` comes from

        - the Cholesky factor of ``G`` (``T = L^{-T}``, which keeps the
          columns' order: the identity on an orthogonal design) where ``G``
          resolves the design (estimated condition number of the
          standardized design below 1e4);
        - otherwise a QR of the centred rows, computed block by block in a
          second pass (a tall-skinny QR; on the cluster for dask input),
          and its singular value decomposition ``R = U S V'``: ``T = V /
          S``, the principal axes. It resolves the design to the precision
          of its values, where ``G`` squares the condition number. Axes
          whose singular value is below ``n_features * eps`` of the largest
          are below that precision and stay at zero (the minimum-norm
          solution along them, as ``lstsq``'s cutoff gives); a
          ``UserWarning`` says so if they carry signal.

        Constant features keep a zero coefficient.

        - ``"auto"``: whiten standardized coordinates (``standardize=True``)
          whenever the statistics are used; ``standardize=False`` runs Adam
          on the data as given.
        - ``True``: always whiten; an error when the sufficient statistics are
          not used (``precompute=False``) and with mini-batches.
        - ``False``: never; Adam on the features, as in the article.

        ``whitened_`` says whether the last fit whitened. ``moment1_``,
        ``moment2_`` and the moments in ``history_`` are then per whitened
        axis. Mini-batches and a first ``partial_fit`` never whiten; a
        ``partial_fit`` after a whitened fit continues in its coordinates.

    warm_start : bool, default=False
        If True, ``fit`` starts from the ``coef_`` and ``intercept_`` of the
        previous fit and continues its optimiser: Adam's moments
        (``moment1_``, ``moment2_``) and step count ``t_`` are kept, so that
        the first steps are as small as the last ones were instead of about
        ``alpha`` in every coordinate, which is what fresh moments give.
        They are kept where the working coordinates are of the same kind
        (the same number of parameters, whitened or not; on other data the
        coordinates are recomputed, and the moments carry over as a scale);
        otherwise the moments start afresh. A warm start from a whitened fit
        that converged stops after one iteration (``"optimum"``); other
        fits stop after at most one stall window. The stall rule's decays
        start again from ``alpha``. Otherwise ``fit`` starts from zero.

    batch_size : int >= 1 or None, default=None
        ``None``: ``fit`` in full batch, one Adam step per iteration, the
        article's algorithm; ``partial_fit`` in mini-batches of 256 rows
        (see ``partial_fit``). An integer: one iteration (epoch) passes over
        the training rows in mini-batches of this size, one Adam step per
        batch; the gradient of a batch is its own weighted mean. A
        ``batch_size`` of at least the number of samples makes ``fit`` a
        full-batch fit (the same iterates and stopping rules as ``None``),
        with a warning. Mini-batches are drawn
        from in-memory data by row indexing (CSC input is converted to CSR
        once for this). With numba installed (the ``fast`` extra), dense
        one-target data runs each epoch as one compiled loop, with the same
        batches and results equal to round-off.

    shuffle : bool, default=True
        Whether to shuffle the rows before each epoch (mini-batches only;
        for ``partial_fit``, the rows of each chunk). Fewer than 4,096 rows
        are shuffled by ``RandomState.permutation``; more by a keyed hash
        permutation (four keys drawn from ``random_state``), which is
        cheaper to draw and batches rows like a uniform shuffle (see
        :ref:`shuffled-order`). The order does not depend on numba being
        installed.

    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling and the validation split. The same integer gives
        the same batches in the same order, and the same results (to the
        last bit, as a rule: vectorised sums over arrays placed elsewhere in
        memory, after pickling or on another dask worker, can differ in it).

    average : {"auto", True, False}, default="auto"
        Whether a stream (``partial_fit``) reports the average of its
        iterates instead of the last one; ``"auto"``: when ``alpha`` is
        ``"auto"`` too, whose decaying rate brings Adam to the minimum
        early in a stream. Mini-batch Adam keeps moving by
        about the learning rate around the minimum; the average keeps the
        centre of that motion. It weighs recent iterates more (iterate
        :math:`j` of :math:`k` by about :math:`(j/k)^3`, see
        :class:`~sk_adam._adam.IterateAverage`), so that it forgets the
        stream's first steps. One pass over 200,000 x 50 in chunks of 20,000
        (three problems): R^2 3.6e-6 to 4.9e-6 short of least squares,
        against 4.5e-4 to 7.3e-4 for the last iterate. An average lags
        behind iterates that are still on their way, which a small constant
        rate can leave them at the end of a stream: two passes at
        ``alpha=1e-3`` over the same data end at R^2 0.9956 averaged and
        0.9961 for the last iterate, hence no average by default with a
        number for ``alpha``. Adam itself continues from its last iterate;
        :meth:`reset_schedule` restarts the average. ``fit`` reports its
        best iterate and is not affected.

    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (at random) and, after
        each iteration, compute the validation MSE and R^2; the stall rule
        then watches the validation MSE instead of the training MSE, and the
        coefficients with the best validation MSE are kept. The ``tol`` rule
        still watches the training MSE.

    validation_fraction : float in (0, 1), default=0.1
        Fraction of the rows held out when ``early_stopping=True``. It must
        leave at least one row on each side.

    record_history : bool, default=False
        If True, keep Adam's state after every iteration in ``history_``: the
        bias-corrected moments, the effective step and the coefficients. It
        costs four arrays of ``n_iter_ x n_params x n_targets`` floats (about
        32 bytes per parameter per iteration) and a copy per iteration; off,
        nothing is recorded.

    verbose : int, default=0
        1: print the training MSE and the elapsed time at iterations 1-10,
        then every 10 up to 100, every 100 up to 1000, and so on; each
        decay of the learning rate, with the rate and the iteration Adam
        goes on from; which rule ended the fit; and the first build of a
        compiled loop in this process. 2 or more: a line at every
        iteration. A line says "iteration" in full batch and "epoch" with
        mini-batches; each ``partial_fit`` call prints one line.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        Coefficients in the units of the data, in the dtype of ``X`` (float32
        stays float32). They are those of the iterate with the lowest training
        MSE; when the ``tol`` rule fires this is the first iterate below
        ``tol``.

    intercept_ : float or ndarray of shape (n_targets,)
        Intercept (0.0 when ``fit_intercept=False``), in the dtype of ``X``.

    n_iter_ : int
        Iterations run by the last call to ``fit`` (>= 1), plus one for each
        later call to ``partial_fit``. An iteration is one Adam step (full
        batch) or one epoch (mini-batches, or one ``partial_fit`` call).

    loss_curve_ : ndarray of shape (n_iter,)
        Training MSE (as defined under ``tol``) per iteration: of the
        coefficients after the step (full batch), or the weighted running mean
        of the batch MSEs before their steps during the epoch (mini-batches
        and ``partial_fit``), which costs no extra pass over the data.

    t_ : int
        Adam steps taken to reach the kept coefficients; the next step is
        number ``t_ + 1``.

    moment1_, moment2_ : ndarray of shape (n_params, n_targets)
        Adam's first and second moment estimates at the kept coefficients,
        in the working coordinates (standardized units when
        ``standardize=True``; per principal axis when ``whitened_``; the
        last row is the intercept when it is a parameter). ``partial_fit``
        continues from them.

    history_ : AdamHistory or None
        With ``record_history=True``: per iteration (after its last step),
        ``moment1hat`` and ``moment2hat`` (the bias-corrected moments),
        ``step`` (``alpha * moment1hat / (sqrt(moment2hat) + epsilon)``),
        all of shape ``(n_iter_, n_params)`` in the working coordinates, and
        ``coef`` ``(n_iter_, n_features)`` and ``intercept`` ``(n_iter_,)`` in
        the data's units; with 2-D ``y`` a target axis follows the iteration
        axis. ``partial_fit`` appends one row per call, whose ``coef`` and
        ``intercept`` are those the model reports (the average, when
        averaging). None otherwise.

    validation_scores_ : ndarray of shape (n_iter,) or None
        Validation R^2 after each iteration (``early_stopping=True`` only).

    best_validation_score_ : float or None
        Best value in ``validation_scores_``.

    best_iter_ : int
        Iteration whose coefficients were kept (0 is the starting point).

    stop_reason_ : str
        One of "tol", "optimum", "stall", "max_iter", "diverged",
        "partial_fit": which rule ended the last fit ("optimum": the MSE was
        within 1e-20 of the MSE of zero coefficients above the least-squares
        minimum, which whitened fits know; see ``whiten``); "partial_fit" after a
        ``partial_fit`` call, which runs one epoch and no stopping rule.

    alpha_decays_ : int
        How many times the stall rule divided the learning rate by 10 (see
        ``stall_decays``); Adam ended with ``alpha / 10**alpha_decays_``,
        which ``partial_fit`` continues with until :meth:`reset_schedule`.

    precomputed_ : bool
        Whether the last fit ran on the sufficient statistics (see
        ``precompute``); always False with mini-batches.

    whitened_ : bool
        Whether Adam ran on whitened coordinates (see ``whiten``).

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during fit, when ``X`` has string column names.

    Notes
    -----
    **fit, warm_start and partial_fit.** ``fit`` solves from scratch: fresh
    moments, ``t`` from 1, ``n_iter_`` and ``loss_curve_`` for this call only;
    with ``warm_start=True`` it starts from the previous coefficients and
    moments and continues the step count, but runs its own stopping rules
    and counts only its own iterations. ``partial_fit(X, y)`` continues the
    optimiser exactly where it stands (``t_``, ``moment1_``, ``moment2_``,
    after a ``fit`` too) and does one epoch over the given rows: mini-batches
    of ``batch_size`` rows (256 when it is None; one batch of all the rows
    when the chunk is smaller), each one Adam step, at the stream's rate
    (see ``alpha``), the rows shuffled when ``shuffle``; then ``coef_`` is
    set to the average of the stream's iterates (see ``average``), one
    entry appended to ``loss_curve_`` and one to ``n_iter_``. No stopping
    rule runs.

    **standardize under partial_fit.** The statistics of a stream are not
    known in advance, so the first ``partial_fit`` call fixes the working
    coordinates from its own rows (weighted means and standard deviations,
    as ``fit`` does on all rows), and the intercept is then a parameter of
    Adam so that later chunks with another mean are still fitted. After a
    ``fit``, ``partial_fit`` keeps the coordinates of that fit. A column that
    was constant so far (a feature that has not turned up yet) has no scale:
    its coefficient is held at zero until a chunk in which it varies, which
    sets it free, scaled by its spread there. A first chunk with a much
    smaller spread than the rest makes the later steps badly scaled: give
    the first call a representative sample, or scale the data yourself and
    use ``standardize=False``. The parameters those coordinates were made
    with (``fit_intercept``, ``standardize``, and ``whiten`` for whitened
    ones) cannot change between calls: ``partial_fit`` refuses, and ``fit``
    starts anew.

    **Threads and failures.** Calls on one instance from several threads
    run one at a time (a stream fed by workers loses no update); a call
    that raises, or is interrupted, leaves the estimator as it was.

    See Also
    --------
    sklearn.linear_model.LinearRegression : The closed-form solution.
    sklearn.linear_model.SGDRegressor : Stochastic gradient descent.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.linear_model import LinearRegression
    >>> from sk_adam import AdamRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> adam = AdamRegressor().fit(X, y)
    >>> ols = LinearRegression().fit(X, y)
    >>> print(f"{adam.score(X, y):.6f} {ols.score(X, y):.6f}")
    0.517748 0.517748
    >>> adam.stop_reason_
    'optimum'
    """

    _parameter_constraints: ClassVar[dict] = {
        "alpha": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "beta1": [Interval(Real, 0, 1, closed="left")],
        "beta2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
            None,
        ],
        "stall_tol": [Interval(Real, 0, None, closed="left")],
        "stall_decays": [Interval(Integral, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "standardize": ["boolean"],
        "precompute": ["boolean", StrOptions({"auto"})],
        "whiten": ["boolean", StrOptions({"auto"})],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "warm_start": ["boolean"],
        "average": ["boolean", StrOptions({"auto"})],
        "record_history": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        alpha="auto",
        beta1=0.9,
        beta2=0.999,
        epsilon=1e-8,
        tol=0.0,
        max_iter=50_000,
        n_iter_no_change="auto",
        stall_tol=1e-10,
        stall_decays=3,
        fit_intercept=True,
        standardize=True,
        precompute="auto",
        whiten="auto",
        batch_size=None,
        shuffle=True,
        random_state=None,
        early_stopping=False,
        validation_fraction=0.1,
        warm_start=False,
        average="auto",
        record_history=False,
        verbose=0,
    ):
        self.alpha = alpha
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.tol = tol
        self.max_iter = max_iter
        self.n_iter_no_change = n_iter_no_change
        self.stall_tol = stall_tol
        self.stall_decays = stall_decays
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.precompute = precompute
        self.whiten = whiten
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.random_state = random_state
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.average = average
        self.record_history = record_history
        self.verbose = verbose

    def __getstate__(self):
        # a copy: on Python >= 3.11 the base class hands out the live __dict__
        state = dict(super().__getstate__())
        state.pop("_curve_buffer", None)  # spare room only, see _extended_curve
        if hasattr(self, "coef_"):
            state["_sk_adam_version"] = __version__
        return state

    def __setstate__(self, state):
        saved = state.get("_sk_adam_version")
        if saved is not None and not isinstance(saved, str):
            raise ValueError(
                f"This model's saved state gives {saved!r} as the sk-adam "
                f"version that wrote it, which is not a version: the file is "
                f"damaged or was not written by sk-adam. Refit the model."
            )
        if saved is not None and saved != __version__:
            if saved.split(".")[0] != __version__.split(".")[0]:
                raise ValueError(
                    f"This model was saved by sk-adam {saved}, whose fitted "
                    f"state this sk-adam {__version__} does not read. Refit "
                    f"it, or load it with sk-adam {saved}."
                )
            warnings.warn(
                f"This model was saved by sk-adam {saved} and is loaded by "
                f"{__version__}; predictions are the same, but refit it "
                f"before continuing it with partial_fit.",
                UserWarning,
                stacklevel=2,
            )
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    @_atomic
    def fit(self, X, y=None, sample_weight=None):
        """Fit the linear model with Adam.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array, dask DataFrame} of \
shape (n_samples, n_features), or FileRows
            Training data. float32 and float64 are used as given (never copied
            or modified); other dtypes are converted to float64. Sparse input
            must be CSR or CSC to avoid a conversion; it is never densified.
            A dask array or DataFrame is reduced to sufficient statistics on
            its cluster (a DataFrame's partitions need no known lengths; its
            column names become ``feature_names_in_``), a
            :class:`~sk_adam.FileRows` chunk by chunk as its file is read
            (see the user guide).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Target values (with a dask DataFrame ``X``, a dask Series or
            DataFrame partitioned alike); None only for a
            :class:`~sk_adam.FileRows`, which names its target column.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; a weight of ``c`` is equivalent to repeating
            the row ``c`` times (exactly so for full-batch fits). At least one
            must be positive.

        Returns
        -------
        self : AdamRegressor
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    @_atomic
    def partial_fit(self, X, y, sample_weight=None):
        """Continue Adam for one epoch over the given rows.

        One call: the rows (shuffled when ``shuffle``) in mini-batches of
        ``batch_size`` rows (256 when it is None, as one call of
        MLPRegressor's ``partial_fit`` takes batches of 200), one Adam step
        per batch, continuing the optimiser state (``t_``, ``moment1_``,
        ``moment2_``) exactly, at the stream's rate: with ``alpha="auto"``
        0.1 decaying as one over the square root of the stream's steps, else
        ``alpha``, in both cases divided by ``10**alpha_decays_``. Then
        ``coef_`` and ``intercept_`` are the average of the stream's iterates
        (see ``average``), and one entry is appended to ``loss_curve_``.
        No stopping rule runs. See the Notes of the class for
        ``standardize`` on streams, and :meth:`reset_schedule`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of training data.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Its targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the chunk's rows.

        Returns
        -------
        self : AdamRegressor
            The updated estimator.
        """
        return self._fit(X, y, sample_weight, incremental=True)

    @_atomic
    def reset_schedule(self):
        """Let a stream go on at the full learning rate, with a fresh average.

        A ``fit`` whose stall rule divided the learning rate
        (``alpha_decays_ > 0``) leaves ``partial_fit`` continuing at
        ``alpha / 10**alpha_decays_``, and a stream's coefficients are the
        average of its iterates since it began: both right for more rows
        like those seen, slow to follow a stream that has changed. After
        this call the next ``partial_fit`` steps at the undivided rate
        (``alpha_decays_`` is 0) and the average starts again from its
        first step. The coefficients, Adam's moments and step count are
        kept: the optimiser goes on from where it is.

        Returns
        -------
        self : AdamRegressor
            The estimator, to chain with ``partial_fit``.

        Examples
        --------
        A stream whose relation changes after 100 chunks: without the
        reset, the average still holds some of the old coefficients.

        >>> import numpy as np
        >>> from sk_adam import AdamRegressor
        >>> def stream(est, coef, reset, rng=np.random.RandomState(0)):
        ...     for _ in range(100):
        ...         X = rng.randn(1000, 3)
        ...         y = X @ coef + 0.1 * rng.randn(1000)
        ...         est = est.partial_fit(X, y)
        ...     return est.reset_schedule() if reset else est
        >>> before = stream(AdamRegressor(random_state=0), [1, 2, 3], reset=False)
        >>> stream(before, [3, 2, 1], reset=False).coef_.round(2)
        array([2.87, 2.  , 1.13])
        >>> before = stream(AdamRegressor(random_state=0), [1, 2, 3], reset=True)
        >>> stream(before, [3, 2, 1], reset=False).coef_.round(2)
        array([3., 2., 1.])
        """
        check_is_fitted(self)
        self.alpha_decays_ = 0
        self._schedule_start = int(self.t_)
        stream = getattr(self, "_stream", None)
        if stream is not None:  # after fit, the average begins with the stream
            self._stream = {**stream, "count": 0}
        return self

    def predict(self, X):
        """Predict with the fitted linear model.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array, dask DataFrame} of \
shape (n_samples, n_features), or FileRows
            Samples. A dask array gives a lazy dask array, a dask DataFrame a
            lazy dask Series (a DataFrame with a column per target) indexed
            as ``X``; a :class:`~sk_adam.FileRows` is read chunk by chunk.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            ``X @ coef_.T + intercept_``.
        """
        check_is_fitted(self)
        if is_dask(X):
            names = getattr(self, "feature_names_in_", None)
            return predict_dask(X, self.coef_, self.intercept_, names)
        if isinstance(X, FileRows):  # every chunk finite float64 (read so)
            self._check_file_columns(X)
            coef, intercept = self.coef_, self.intercept_
            return np.concatenate([x @ coef.T + intercept for x, _ in X.chunks()])
        X = validate_data(
            self,
            X,
            accept_sparse=("csr", "csc"),
            dtype=[np.float64, np.float32],
            reset=False,
        )
        return safe_sparse_dot(X, self.coef_.T, dense_output=True) + self.intercept_

    def score(self, X, y=None, sample_weight=None):
        """The coefficient of determination R^2 of the predictions.

        As :meth:`sklearn.base.RegressorMixin.score`; for a
        :class:`~sk_adam.FileRows` (``y`` None, every row weighing one) it
        comes from the statistics of the file's last pass where the file
        is unchanged since (a fit makes that pass), else from one pass.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or FileRows
            Test samples.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            True values for ``X``; None only for a FileRows.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            R^2 of ``self.predict(X)`` against ``y``.
        """
        if not isinstance(X, FileRows):
            return super().score(X, y, sample_weight)
        check_is_fitted(self)
        self._check_file_columns(X)
        if y is not None or sample_weight is not None:
            raise ValueError(
                "FileRows carries its target, and every row weighs one: pass "
                "no y and no sample_weight with it."
            )
        coef, intercept = self._coef_2d()
        return FileData(X).stats().r2_score(coef, intercept)

    def _check_file_columns(self, rows):
        """The rows' feature columns are those of the fit."""
        names = getattr(self, "feature_names_in_", None)
        if names is not None and list(names) != list(rows.feature_names):
            raise ValueError(
                f"The feature names should match those that were passed during "
                f"fit: {list(names)}; {rows!r} has {rows.feature_names}. Pass "
                f"columns=estimator.feature_names_in_ to FileRows."
            )
        if rows.n_features != self.n_features_in_:
            raise ValueError(
                f"X has {rows.n_features} features, but AdamRegressor is "
                f"expecting {self.n_features_in_} features as input."
            )

    # -- the one fit path ----------------------------------------------------

    def _fit(self, X, y, sample_weight, incremental):
        """``fit`` (``incremental=False``: solve from scratch, or from the
        previous coefficients with ``warm_start``) and ``partial_fit`` (one
        epoch that continues the optimiser), for every kind of input."""
        first = not (incremental and hasattr(self, "t_"))
        self._check_params(X, incremental)
        data = self._training_data(X, y, sample_weight, incremental, first)
        batch = self._batch(data.n_samples, incremental)
        if batch is not None:
            data = data.by_rows()
        rng = check_random_state(self.random_state) if first else self._random
        with self._announced():
            if incremental:
                run, coords, recorder, precomputed = self._continue(
                    data, rng, first, batch
                )
            else:
                run, coords, recorder, precomputed = self._solve(data, rng, batch)
        for message in run.warnings:
            warnings.warn(message, ConvergenceWarning, stacklevel=_CALLER)
        self._set_fitted(run, coords, data, recorder, incremental, precomputed)
        self._random = rng  # partial_fit continues the same stream
        return self

    def _check_params(self, X, incremental):
        """The parameters that constrain each other (and the kind of input):
        checked here, and nowhere else, before any data is read."""
        if incremental and self.early_stopping:
            raise ValueError(
                "partial_fit does not hold out a validation set: set "
                "early_stopping=False, or use fit."
            )
        if incremental and isinstance(X, FileRows):
            raise ValueError(
                "partial_fit takes in-memory chunks: pass the (X, y) of "
                "FileRows.chunks() one at a time, or fit the FileRows."
            )
        if incremental:
            self._check_stream_params()
            return
        if self.early_stopping and (is_dask(X) or isinstance(X, FileRows)):
            raise ValueError(
                f"early_stopping is not supported for "
                f"{'FileRows' if isinstance(X, FileRows) else 'dask arrays'}: "
                f"hold out a validation set yourself, or fit in memory."
            )

    def _batch(self, n_samples, incremental):
        """Rows per mini-batch, or None for full batches: ``batch_size``,
        except that ``fit`` takes a ``batch_size`` of at least the number of
        samples as a full batch (with a warning) and ``partial_fit`` takes
        None as :data:`STREAM_BATCH`."""
        if incremental:
            return STREAM_BATCH if self.batch_size is None else self.batch_size
        batch = self.batch_size
        if batch is not None and n_samples is not None and batch >= n_samples:
            warnings.warn(
                f"batch_size={batch} is not below the number of samples "
                f"({n_samples}): one batch would hold every row, so the fit "
                f"runs in full batch, as with batch_size=None (the same "
                f"iterates and stopping rules).",
                UserWarning,
                stacklevel=_CALLER + 1,
            )
            batch = None
        if self.whiten is True and batch is not None:
            raise ValueError(
                "whiten=True needs full-batch statistics; mini-batches "
                f"(batch_size={batch}) run on the features. Set "
                "batch_size=None, or whiten='auto' or False."
            )
        return batch

    def _announced(self):
        """With ``verbose``, a context in which building a compiled kernel
        (numba's one-time compile, or its load from the disk cache) is
        announced."""
        if not self.verbose:
            return contextlib.nullcontext()
        return announcing(lambda message: print(f"[sk-adam] {message}", flush=True))

    def _alpha(self):
        """The learning rate: ``alpha``, or :data:`ALPHA_AUTO` for "auto"."""
        return ALPHA_AUTO if self.alpha == "auto" else self.alpha

    def _averaging(self) -> bool:
        """Whether a stream reports the average of its iterates."""
        if self.average == "auto":
            return self.alpha == "auto"
        return bool(self.average)

    def _stream_decay(self, start):
        """How a stream's steps scale the rate: with ``alpha="auto"`` the
        :class:`InverseSqrtDecay` from step ``start``, else not at all (a
        ``fit`` has the stall rule's plateau decays instead)."""
        if self.alpha != "auto":
            return None
        return InverseSqrtDecay(ALPHA_DECAY_STEPS, start)

    def _check_stream_params(self):
        """partial_fit continues the working coordinates that the model's
        first call fixed (fit, or a first partial_fit): the parameters they
        were made with may not change in between, and a stream cannot
        whiten."""
        fixed = getattr(self, "_fixed_params", None)  # older saved models
        whitened = getattr(self, "whitened_", False)
        changed = {} if fixed is None else {
            name: value for name, value in fixed.items()
            if getattr(self, name) != value
        }  # fmt: skip
        if changed:
            then = ", ".join(f"{name}={value}" for name, value in changed.items())
            now = ", ".join(f"{name}={getattr(self, name)!r}" for name in changed)
            raise ValueError(
                f"partial_fit continues the working coordinates fixed by this "
                f"model's first fit, made with {then}; they are now {now}. Set "
                f"them back with set_params to continue, or call fit to start "
                f"anew."
            )
        if whitened and self.whiten is False:
            raise ValueError(
                "partial_fit continues the whitened coordinates of the previous "
                "fit; whiten=False asks for one coordinate per feature. Set "
                "whiten='auto' or True to continue, or call fit to start anew."
            )
        if self.whiten is True and not whitened:
            raise ValueError(
                "whiten=True needs full-batch statistics; partial_fit runs on "
                "the features (it continues whitened coordinates only after a "
                "whitened fit). Set whiten='auto' or False, or use fit."
            )

    def _training_data(self, X, y, sample_weight, incremental, first):
        """The validated input, in memory (:class:`ArrayData`), on a
        cluster (:class:`DaskData`, :class:`DaskFrameData`) or in a file
        (:class:`FileData`)."""
        if isinstance(X, FileRows):
            if y is not None or sample_weight is not None:
                raise ValueError(
                    "FileRows carries its target (FileRows(path, target=...)), "
                    "and every row weighs one: pass no y and no sample_weight "
                    "with it."
                )
            return self._blocks_seen(FileData(X))
        if y is None:  # scikit-learn's message
            raise ValueError(
                "AdamRegressor requires y to be passed, but the target y is None."
            )
        if is_dask(X) and not incremental:
            return self._blocks_seen(dask_data(X, y, sample_weight))
        # The finiteness of X is checked by what reads it anyway, which saves a
        # pass: after the first partial_fit call by the epoch (a NaN or inf in
        # a row it reads makes the MSE non-finite), and in a full-batch fit by
        # the statistics (ArrayData.problem). Elsewhere validate_data does.
        folded = (incremental and not first) or (
            not incremental and self.batch_size is None and not self.early_stopping
        )
        X, Y, s, one_d = self._validate_xy(
            X, y, sample_weight, reset=first, finite_X=not folded
        )
        return ArrayData(X, Y, s, one_d=one_d, finite_checked=not folded)

    def _blocks_seen(self, data):
        """Data in blocks, with the number and names of its features set."""
        self.n_features_in_ = data.n_features
        names = data.feature_names
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return data

    def _settings(self, batch) -> SolverSettings:
        batched = batch is not None
        return SolverSettings(
            alpha=self._alpha(),
            max_iter=self.max_iter,
            tol=self.tol,
            window=stall_window(self.n_iter_no_change, batched),
            stall_tol=self.stall_tol,
            stall_decays=self.stall_decays,
            verbose=self.verbose,
            shortfall_tol=shortfall_tolerance(batched),
            unit="epoch" if batched else "iteration",
        )

    def _recorder(self, coords):
        if not self.record_history:
            return None
        return Recorder(coords, self.epsilon, self.fit_intercept)

    def _solve(self, data, rng, batch):
        """``fit``: the problem and its epochs, run until a rule fires."""
        held_out = None
        if self.early_stopping:
            data, held_out = data.split(rng, self.validation_fraction)
        layout = Layout(self.fit_intercept, self.standardize)
        problem = None
        if batch is None:
            problem, coords = data.problem(
                layout, precompute=self.precompute, whiten=self.whiten
            )
        else:
            coords = data.coordinates(layout)
        params = self._initial_params(coords, data.n_targets)
        state = self._initial_state(params, coords)
        adam = Adam(self.beta1, self.beta2, self.epsilon, state)
        if problem is None:
            epoch = data.epochs(coords, adam, rng, size=batch, shuffle=self.shuffle)
        else:
            epoch = FullBatchStep(problem, adam)
        validation = None
        if held_out is not None:
            validation = held_out.validation(coords, self.fit_intercept)
        recorder = self._recorder(coords)
        # early stopping stops on held-out rows by design: no training check
        short = None if validation is not None else data.shortfall(coords, problem)
        run = solve(
            epoch,
            params,
            state,
            self._settings(batch),
            y_scale=coords.y_scale,
            validation=validation,
            callback=recorder,
            shortfall=short,
        )
        for note in getattr(problem, "notes", ()):
            warnings.warn(note, UserWarning, stacklevel=_CALLER + 1)
        precomputed = problem is not None and not isinstance(problem, RowLeastSquares)
        return run, coords, recorder, precomputed

    def _continue(self, data, rng, first, batch):
        """``partial_fit``: one epoch over the chunk, continuing the
        optimiser and the average of its iterates (see the Notes of the
        class)."""
        if first:
            layout = Layout(self.fit_intercept, self.standardize, stream=True)
            coords = data.coordinates(layout)
            params = np.zeros((coords.n_params, data.n_targets))
            state = AdamState.zeros(params.shape)
            average = IterateAverage.zeros(params.shape)
            decays = 0
        else:
            coords, params, state, average = self._continued_state(data.n_targets)
            decays = getattr(self, "alpha_decays_", 0)
        start = self._stream_start(not first)
        # a column constant so far may vary in this chunk
        coords = data.with_new_variation(coords)
        adam = Adam(self.beta1, self.beta2, self.epsilon, state)
        average = average if self._averaging() else None
        decay = self._stream_decay(start)
        epochs = data.epochs(
            coords, adam, rng, size=batch, shuffle=self.shuffle, average=average,
            decay=decay,
        )  # fmt: skip
        recorder = callback = self._recorder(coords)
        if recorder is not None and average is not None:
            # the history shows the coefficients the model reports
            callback = functools.partial(_recording_average, recorder, average)
        rate = PlateauDecay.rate_after(self._alpha(), decays)
        t_before = state.t
        try:
            mse = run_epoch(
                epochs, params, state, rate, y_scale=coords.y_scale, callback=callback
            )
        except Diverged:
            if not data.finite_checked:
                data.check_finite()  # the usual message for NaN or inf input
            raise
        if self.verbose:
            epoch = 1 if first else self.n_iter_ + 1
            ends = rate if decay is None else rate * decay.factor(state.t)
            print(
                f"partial_fit: epoch {epoch}, {state.t - t_before} steps, MSE "
                f"{mse:.6g}, rate at the last step {ends:.3g}",
                flush=True,
            )
        run = Run(
            params, state, np.array([mse]), 0, "partial_fit", None, decays,
            average=average,
        )  # fmt: skip
        return run, coords, recorder, False

    def _set_fitted(self, run, coords, data, recorder, incremental, precomputed):
        """Every fitted attribute, set together at the end, so that an
        interrupted or failed call leaves the estimator as it was."""
        continued = incremental and hasattr(self, "t_")
        average = run.average
        shown = run.params if average is None or not average.count else average.params
        coef, intercept = coords.to_original(shown, self.fit_intercept)
        if self.fit_intercept and not incremental:
            intercept = data.exact_intercept(coef, intercept, coords.x_offset)
        coef = coef.astype(data.dtype, copy=False)
        intercept = intercept.astype(data.dtype, copy=False)
        if data.one_d:
            coef, intercept = coef[0], intercept[0]
        self.coef_, self.intercept_ = coef, intercept
        # a dict of arrays (not the dataclass), so that a saved model holds
        # only plain types next to the estimator (skops trusts those)
        self._coords = {f.name: getattr(coords, f.name) for f in fields(coords)}
        self._fixed_params = {
            "fit_intercept": self.fit_intercept,
            "standardize": self.standardize,
        }
        if incremental:  # what the next partial_fit continues from
            self._stream = {
                "params": run.params.copy(),
                "count": 0 if average is None else average.count,
                "average": (run.params if average is None else average.params).copy(),
            }
            self._schedule_start = self._stream_start(continued)
        else:
            self.__dict__.pop("_stream", None)
            self.__dict__.pop("_schedule_start", None)
        self.t_ = int(run.state.t)
        self.moment1_ = run.state.moment1.copy()
        self.moment2_ = run.state.moment2.copy()
        if incremental:
            earlier = self.loss_curve_ if continued else np.empty(0)
            self.loss_curve_ = self._extended_curve(earlier, run.curve[0])
        else:
            self.loss_curve_ = run.curve
        self.n_iter_ = len(self.loss_curve_)
        self.best_iter_ = self.n_iter_ if incremental else run.best_iter
        self.stop_reason_ = run.reason
        self.alpha_decays_ = run.decays
        scores = run.validation_scores
        self.validation_scores_ = scores
        self.best_validation_score_ = None if scores is None else float(np.max(scores))
        self.precomputed_ = precomputed
        self.whitened_ = coords.axes is not None
        previous = getattr(self, "history_", None) if continued else None
        self.history_ = (
            None if recorder is None else recorder.history(data.one_d, previous)
        )

    # -- helpers -----------------------------------------------------------

    def _validate_xy(self, X, y, sample_weight, reset, finite_X=True):
        if sp.issparse(y):  # LinearRegression's error for a sparse target
            check_array(y, accept_sparse=False, ensure_2d=False, input_name="y")
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=("csr", "csc"),
            dtype=[np.float64, np.float32],
            multi_output=True,
            y_numeric=True,
            ensure_all_finite=finite_X,  # y is always checked
            reset=reset,
        )
        Y = np.asarray(y, dtype=np.float64).reshape(X.shape[0], -1)
        if sample_weight is None:  # the common case, without three passes
            return X, Y, np.full(X.shape[0], 1.0 / X.shape[0]), y.ndim == 1
        s = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        return X, Y, relative_weights(s), y.ndim == 1

    def _initial_params(self, coords, n_targets):
        if not (self.warm_start and hasattr(self, "coef_")):
            return np.zeros((coords.n_params, n_targets))
        coef, intercept = self._coef_2d()
        n_features = coords.x_scale.size
        if coef.shape != (n_targets, n_features):
            raise ValueError(
                f"warm_start=True but the previous fit had coef_ of shape "
                f"{np.shape(self.coef_)}, which does not match {n_targets} "
                f"target(s) and {n_features} feature(s) of this data. Set "
                f"warm_start=False or fit data of the same shape."
            )
        return coords.to_working(coef, intercept)

    def _coef_2d(self):
        coef = np.asarray(self.coef_, dtype=np.float64)
        return coef.reshape(-1, coef.shape[-1]), np.reshape(
            np.asarray(self.intercept_, dtype=np.float64), -1
        )

    def _stream_start(self, continued):
        """The step after which the stream's rate decay began: 0, or where
        :meth:`reset_schedule` restarted it."""
        return int(getattr(self, "_schedule_start", 0)) if continued else 0

    def _continued_state(self, n_targets):
        """Coordinates, working parameters, Adam state and average of the
        iterates to continue from: those a previous ``partial_fit`` left, or
        after a ``fit`` its coefficients and a new average."""
        coords = Coordinates(**self._coords)
        coef, intercept = self._coef_2d()
        if coef.shape[0] != n_targets:
            raise ValueError(
                f"partial_fit got {n_targets} target(s) but the model was "
                f"fitted with {coef.shape[0]}."
            )
        moment1, moment2 = self.moment1_, self.moment2_
        stream = Layout(self.fit_intercept, self.standardize, stream=True)
        if stream.intercept and not coords.intercept:
            # a full-batch standardized fit had an exact intercept; streams
            # need it as a parameter, with fresh moments
            coords = coords.with_intercept()
            moment1 = np.vstack([moment1, np.zeros((1, n_targets))])
            moment2 = np.vstack([moment2, np.zeros((1, n_targets))])
        stream_state = getattr(self, "_stream", None)
        if stream_state is None:
            # after fit, or a model saved before streams kept their last
            # iterate: from the coefficients
            params = coords.to_working(coef, intercept)
            average = IterateAverage.zeros(params.shape)
        else:  # the last iterate, which coef_ (the average) is not
            params = np.array(stream_state["params"], dtype=np.float64)
            average = IterateAverage(
                int(stream_state["count"]),
                np.array(stream_state["average"], dtype=np.float64),
            )
        state = AdamState(
            t=int(self.t_),
            moment1=np.array(moment1, dtype=np.float64),
            moment2=np.array(moment2, dtype=np.float64),
            beta1_power=float(self.beta1) ** int(self.t_),
            beta2_power=float(self.beta2) ** int(self.t_),
        )
        return coords, params, state, average

    def _initial_state(self, params, coords):
        """Adam's state for ``fit``: fresh, or with ``warm_start`` the
        previous fit's moments and step count where they belong to the same
        kind of coordinates (same parameters, whitened or not)."""
        previous = getattr(self, "moment1_", None)
        if not (self.warm_start and previous is not None):
            return AdamState.zeros(params.shape)
        same = previous.shape == params.shape and bool(
            getattr(self, "whitened_", False)
        ) == (coords.axes is not None)
        if not same:
            return AdamState.zeros(params.shape)
        t = int(self.t_)
        return AdamState(
            t=t,
            moment1=np.array(self.moment1_, dtype=np.float64),
            moment2=np.array(self.moment2_, dtype=np.float64),
            beta1_power=float(self.beta1) ** t,
            beta2_power=float(self.beta2) ** t,
        )

    def _extended_curve(self, curve, value):
        """``np.append(curve, value)`` in amortized constant time.

        A stream of partial_fit calls would otherwise copy the whole curve
        on every call (quadratic: seconds per call after millions of calls).
        The curve is the filled start of a buffer with spare room; ``value``
        is written past it only if nothing else sharing the buffer (an
        estimator whose attributes were copied, as ``_atomic``'s snapshot
        copies them) has written there first, which the buffer's fill count
        records. Arrays handed out before never change. Pickles and copies
        leave the buffer behind (``__getstate__``).
        """
        n = curve.size
        buffer, fill = getattr(self, "_curve_buffer", (None, None))
        if (
            buffer is None
            or curve.base is not buffer
            or fill[0] != n
            or n == buffer.size
        ):
            buffer, fill = np.empty(max(2 * n, 64)), np.array([n])
            buffer[:n] = curve
            self._curve_buffer = (buffer, fill)
        buffer[n] = value
        fill[0] = n + 1
        return buffer[: n + 1]
