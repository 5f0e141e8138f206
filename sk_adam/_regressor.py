"""AdamRegressor: least-squares linear regression solved by Adam."""

from __future__ import annotations

import functools
import time
import warnings
from dataclasses import dataclass, fields
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.utils import assert_all_finite, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from . import __version__
from ._adam import Adam, AdamState
from ._datafit import (
    BatchLeastSquares,
    Coordinates,
    GramLeastSquares,
    least_squares_problem,
)
from ._kernel import NO_CSR, NO_DENSE, compiled_epoch
from ._order import shuffled_order

__all__ = ["AdamHistory", "AdamRegressor"]


def _atomic(method):
    """Leave the estimator as it was if ``method`` raises, even on
    KeyboardInterrupt: fitted state is never half-updated.

    Fitted attributes are only ever replaced, never modified in place, so a
    shallow copy of the instance's attributes is a snapshot. The one object
    that is advanced in place, the random stream ``partial_fit`` continues,
    has its state saved and put back (cheaper than copying the generator on
    every call), when something draws from it: shuffled epochs and the
    validation split.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
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

    return wrapper


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
    alpha : float, default=0.1
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

        With mini-batches, noisy gradients keep Adam moving by about
        ``alpha`` per step: a fit of a few epochs wants about ``1e-3``; a fit
        left to the stall rule divides the default by 10 at each stall (see
        ``stall_decays``) and ends as precise (see the streaming guide).

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
        by more than that fraction, even if Adam's iterates oscillate. None
        disables the rule. ``"auto"``: 200 iterations in full batch, where an
        iteration is cheap and Adam's overshoots can last that long; 5 epochs
        with mini-batches, as in SGDRegressor and MLPRegressor, where an epoch
        is a pass over the data and its MSE is noisy (with ``stall_decays``
        this is a learning-rate schedule: a 200,000 x 50 fit with batches of
        256 and the default ``alpha`` stops after 31 epochs and 3 decays,
        3.2e-6 of R^2 from least squares).

    stall_tol : float >= 0, default=1e-10
        Relative improvement of the best MSE over ``n_iter_no_change``
        iterations below which the fit is considered stalled (see above).

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
        - ``"auto"``: the statistics when the :math:`d \times d` matrix is
          no larger than the data (``n_samples >= n_features`` and
          ``n_features <= 2048``; for sparse ``X`` also ``n_features**2 <= 2 *
          nnz``), the products otherwise.

    whiten : {"auto", True, False}, default="auto"
        Whether Adam works on whitened coordinates instead of one coordinate
        per feature; full batch on the sufficient statistics only
        (``precomputed_`` True).

        Adam scales each coordinate by its own gradient history, which undoes
        differences of scale between features but not correlations between
        them: on designs such as polynomial features the iterations it needs
        grow with the condition number, and a degree-5 polynomial on [0, 1]
        is still 2e-3 short of the least-squares R^2 after 50,000 iterations.
        Whitened, the parameters are ``theta`` with ``w = V diag(a) theta``,
        where ``V`` are the eigenvectors of the working Gram matrix (the
        principal axes of the standardized design) and ``a = 1 /
        sqrt(eigenvalues)``; the objective becomes ``||theta - theta*||^2 /
        2`` plus a constant, with ``||theta*||^2`` the R^2 of the fit, so Adam
        converges in a few hundred iterations whatever the correlations (the
        same design: about 450). ``alpha`` is then the step per principal
        axis in units of the target's standard deviation. Axes whose
        eigenvalue is at the Gram matrix's round-off are numerically null and
        stay at zero (the minimum-norm solution along them, as ``lstsq``'s
        cutoff gives); constant features keep a zero coefficient.

        - ``"auto"``: whiten when the condition number of the working Gram
          matrix exceeds 1e4 (a standardized design whose condition number
          exceeds 100); well-conditioned data keep one coordinate per
          feature, where ``moment1_`` and ``history_`` speak of features.
        - ``True``: always whiten; an error when the sufficient statistics are
          not used (set ``precompute=True``) and with mini-batches.
        - ``False``: never; Adam on the features, as in the article.

        ``whitened_`` says whether the last fit whitened. ``moment1_``,
        ``moment2_`` and the moments in ``history_`` are then per principal
        axis. Mini-batches and a first ``partial_fit`` never whiten; a
        ``partial_fit`` after a whitened fit continues in its coordinates.

    warm_start : bool, default=False
        If True, start from the ``coef_`` and ``intercept_`` of the previous
        fit (with fresh moment estimates); otherwise start from zero.

    batch_size : int >= 1 or None, default=None
        ``None``: full batch, one Adam step per iteration, the article's
        algorithm. An integer: one iteration (epoch) passes over the training
        rows in mini-batches of this size, one Adam step per batch; the
        gradient of a batch is its own weighted mean. Mini-batches are drawn
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
        bitwise-identical results.

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
        If positive, print the training MSE and the elapsed time at
        iterations 1-10, then every 10 up to 100, every 100 up to 1000, and
        so on, and say which rule ended the fit.

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
        axis. ``partial_fit`` appends one row per call. None otherwise.

    validation_scores_ : ndarray of shape (n_iter,) or None
        Validation R^2 after each iteration (``early_stopping=True`` only).

    best_validation_score_ : float or None
        Best value in ``validation_scores_``.

    best_iter_ : int
        Iteration whose coefficients were kept (0 is the starting point).

    stop_reason_ : {"tol", "stall", "max_iter", "diverged"}
        Which rule ended the last fit.

    alpha_decays_ : int
        How many times the stall rule divided the learning rate by 10 (see
        ``stall_decays``); Adam ended with ``alpha / 10**alpha_decays_``,
        which ``partial_fit`` continues with.

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
    with ``warm_start=True`` only the starting coefficients differ.
    ``partial_fit(X, y)`` instead continues the optimiser exactly where it
    stands (``t_``, ``moment1_``, ``moment2_``, after a ``fit`` too): one
    epoch over the given rows, in mini-batches of ``batch_size`` or as one
    full-batch step when it is None, appending to ``loss_curve_``.

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
    use ``standardize=False``.

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
    'stall'
    """

    _parameter_constraints: ClassVar[dict] = {
        "alpha": [Interval(Real, 0, None, closed="neither")],
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
        "record_history": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        alpha=0.1,
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
    def fit(self, X, y, sample_weight=None):
        """Fit the linear model with Adam.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, \
n_features)
            Training data. float32 and float64 are used as given (never copied
            or modified); other dtypes are converted to float64. Sparse input
            must be CSR or CSC to avoid a conversion; it is never densified.
            A dask array is reduced to sufficient statistics on its cluster
            (see the user guide).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; a weight of ``c`` is equivalent to repeating
            the row ``c`` times (exactly so for full-batch fits). At least one
            must be positive.

        Returns
        -------
        self : AdamRegressor
            The fitted estimator.
        """
        if _is_dask(X):
            from ._dask import fit_dask

            return fit_dask(self, X, y, sample_weight)
        X, Y, s, one_d = self._validate_xy(X, y, sample_weight, reset=True)
        rng = check_random_state(self.random_state)
        train, validation = self._split(s, rng)
        batched = self.batch_size is not None
        fit_intercept, standardize = self.fit_intercept, self.standardize
        if batched:
            _check_no_whitening(self)
            if sp.issparse(X) and X.format != "csr":
                X = sp.csr_array(X)  # row batches need row access
            coords = Coordinates.from_data(
                X,
                Y,
                train,
                center=standardize and fit_intercept,
                standardize=standardize,
                intercept=fit_intercept and not standardize,
            )
            problem = None
        else:
            problem, coords = least_squares_problem(
                X,
                Y,
                train,
                fit_intercept=fit_intercept,
                standardize=standardize,
                precompute=self.precompute,
                whiten=self.whiten,
            )
        params = self._initial_params(coords, Y.shape[1])
        state = AdamState.zeros(params.shape)
        adam = Adam(self.alpha, self.beta1, self.beta2, self.epsilon, state)
        if batched:
            epoch = _MiniBatchEpochs(self, X, Y, train, coords, adam, rng)
            start = None
        else:
            epoch = _FullBatchStep(problem, adam)
            with np.errstate(over="ignore", invalid="ignore"):  # checked later
                start = problem.evaluate(params)
        check = (
            None
            if validation is None
            else _Validation(X, Y, validation, coords, fit_intercept)
        )
        recorder = _Recorder(self, coords) if self.record_history else None
        run = _run_adam(
            self, epoch, params, adam, coords.y_scale, start, check, recorder
        )
        precomputed = isinstance(problem, GramLeastSquares)
        return self._finish(run, coords, X.dtype, one_d, precomputed, rng, recorder)

    def _finish(self, run, coords, dtype, one_d, precomputed, rng, recorder=None):
        """Set the fitted attributes of ``fit`` from a finished run.

        Attributes are set together at the end, so an interrupted fit leaves
        the estimator as it was.
        """
        self._set_fitted(run.params, coords, dtype, one_d)
        self._set_optimizer_state(run.state)
        self.loss_curve_ = run.curve
        self.n_iter_ = len(run.curve)
        self.best_iter_ = run.best_iter
        self.stop_reason_ = run.reason
        self.alpha_decays_ = run.decays
        self.validation_scores_ = run.validation_scores
        self.best_validation_score_ = (
            None
            if run.validation_scores is None
            else float(np.max(run.validation_scores))
        )
        self.precomputed_ = precomputed
        self.whitened_ = coords.axes is not None
        self.history_ = None if recorder is None else recorder.history(one_d)
        self._random = rng  # partial_fit continues the same stream
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    @_atomic
    def partial_fit(self, X, y, sample_weight=None):
        """Continue Adam for one epoch over the given rows.

        The optimiser state (``t_``, ``moment1_``, ``moment2_``) is continued
        exactly; see the Notes of the class for ``standardize`` on streams.

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
        if self.early_stopping:
            raise ValueError(
                "partial_fit does not hold out a validation set: set "
                "early_stopping=False, or use fit."
            )
        first = not hasattr(self, "t_")
        # After the first call, the finiteness of X is checked by the epoch
        # itself (a NaN or inf in a row it reads makes the MSE non-finite),
        # which saves a pass over the chunk; rows it skips (zero weight) are
        # checked here. The first call reads X for its statistics first.
        X, Y, s, one_d = self._validate_xy(
            X, y, sample_weight, reset=first, finite_X=first
        )
        deferred = not first
        if deferred and not s.min() > 0:
            _assert_finite_X(X)
            deferred = False
        if sp.issparse(X) and X.format != "csr" and self.batch_size is not None:
            X = sp.csr_array(X)
        if first:
            coords = Coordinates.from_data(
                X,
                Y,
                s,
                center=self.standardize and self.fit_intercept,
                standardize=self.standardize,
                intercept=self.fit_intercept,
            )
            params = np.zeros((coords.n_params, Y.shape[1]))
            state = AdamState.zeros(params.shape)
            rng = check_random_state(self.random_state)
            curve = np.empty(0)
        else:
            coords, params, state = self._continued_state(Y.shape[1])
            curve = self.loss_curve_
            rng = self._random  # advanced in place; @_atomic restores it
        # a column constant so far may vary in this chunk
        coords = coords.with_new_variation(X, s)
        decays = 0 if first else getattr(self, "alpha_decays_", 0)
        rate = self.alpha / 10.0**decays
        adam = Adam(rate, self.beta1, self.beta2, self.epsilon, state)
        epochs = _MiniBatchEpochs(self, X, Y, s, coords, adam, rng)
        with np.errstate(over="ignore", invalid="ignore"):
            loss = epochs.run(params)
        recorder = _Recorder(self, coords) if self.record_history else None
        if recorder is not None:
            recorder(params, adam)
        # judged in units of max(y_scale)**2, finite where the MSE in squared
        # units of y overflows (as in fit)
        unit = np.max(coords.y_scale)
        scaled = float(loss @ ((coords.y_scale / unit) ** 2 / coords.y_scale.size))
        with np.errstate(over="ignore"):
            mse = scaled * unit * unit
        if not (np.isfinite(scaled) and np.all(np.isfinite(params))):
            if deferred:
                _assert_finite_X(X)  # the usual message for NaN or inf input
            raise ValueError(
                f"Adam diverged in partial_fit (training MSE {mse}); the "
                f"coefficients were not updated. Reduce alpha (now "
                f"{rate}) or scale the data."
            )
        self._set_fitted(params, coords, X.dtype, one_d)
        self._set_optimizer_state(adam.state)
        self.loss_curve_ = self._extended_curve(curve, mse)
        self.n_iter_ = len(self.loss_curve_)
        self.best_iter_ = self.n_iter_
        self.stop_reason_ = "partial_fit"
        self.alpha_decays_ = decays
        self._random = rng
        self.validation_scores_ = self.best_validation_score_ = None
        previous = None if first else getattr(self, "history_", None)
        self.history_ = None if recorder is None else recorder.history(one_d, previous)
        self.precomputed_ = False
        self.whitened_ = coords.axes is not None
        return self

    def predict(self, X):
        """Predict with the fitted linear model.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, \
n_features)
            Samples. A dask array gives a lazy dask array.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            ``X @ coef_.T + intercept_``.
        """
        check_is_fitted(self)
        if _is_dask(X):
            from ._dask import predict_dask

            return predict_dask(self, X)
        X = validate_data(
            self,
            X,
            accept_sparse=("csr", "csc"),
            dtype=[np.float64, np.float32],
            reset=False,
        )
        return safe_sparse_dot(X, self.coef_.T, dense_output=True) + self.intercept_

    # -- helpers -----------------------------------------------------------

    def _validate_xy(self, X, y, sample_weight, reset, finite_X=True):
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
        total = s.sum()
        if not total > 0:
            raise ValueError(
                "sample_weight sums to zero: at least one sample must have a "
                "positive weight."
            )
        return X, Y, s / total, y.ndim == 1

    def _split(self, s, rng):
        """Training weights, and validation weights when early stopping."""
        if not self.early_stopping:
            return s, None
        n = s.size
        n_val = int(np.ceil(self.validation_fraction * n))
        if n_val < 1 or n_val >= n:
            raise ValueError(
                f"early_stopping=True with validation_fraction="
                f"{self.validation_fraction} and {n} samples leaves "
                f"{n_val} validation and {n - n_val} training samples; both "
                f"need at least one. Change validation_fraction or set "
                f"early_stopping=False."
            )
        held_out = np.zeros(n, dtype=bool)
        held_out[rng.permutation(n)[:n_val]] = True
        train = np.where(held_out, 0.0, s)
        validation = np.where(held_out, s, 0.0)
        if not (train.sum() > 0 and validation.sum() > 0):
            raise ValueError(
                "early_stopping=True: all the weight fell on one side of the "
                "validation split; change random_state or validation_fraction."
            )
        return train / train.sum(), validation / validation.sum()

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

    def _continued_state(self, n_targets):
        """Coordinates, working parameters and Adam state to continue from."""
        coords = Coordinates(**self._coords)
        coef, intercept = self._coef_2d()
        if coef.shape[0] != n_targets:
            raise ValueError(
                f"partial_fit got {n_targets} target(s) but the model was "
                f"fitted with {coef.shape[0]}."
            )
        moment1, moment2 = self.moment1_, self.moment2_
        if self.fit_intercept and not coords.intercept:
            # a full-batch standardized fit had an exact intercept; streams
            # need it as a parameter, with fresh moments
            coords = coords.with_intercept()
            moment1 = np.vstack([moment1, np.zeros((1, n_targets))])
            moment2 = np.vstack([moment2, np.zeros((1, n_targets))])
        params = coords.to_working(coef, intercept)
        state = AdamState(
            t=int(self.t_),
            moment1=np.array(moment1, dtype=np.float64),
            moment2=np.array(moment2, dtype=np.float64),
            beta1_power=float(self.beta1) ** int(self.t_),
            beta2_power=float(self.beta2) ** int(self.t_),
        )
        return coords, params, state

    def _set_fitted(self, params, coords, dtype, one_d):
        coef, intercept = coords.to_original(params, self.fit_intercept)
        coef = coef.astype(dtype, copy=False)
        intercept = intercept.astype(dtype, copy=False)
        if one_d:
            coef, intercept = coef[0], intercept[0]
        self.coef_ = coef
        self.intercept_ = intercept
        # a dict of arrays (not the dataclass), so that a saved model holds
        # only plain types next to the estimator (skops trusts those)
        self._coords = {f.name: getattr(coords, f.name) for f in fields(coords)}

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

    def _set_optimizer_state(self, state):
        self.t_ = int(state.t)
        self.moment1_ = state.moment1.copy()
        self.moment2_ = state.moment2.copy()


def _assert_finite_X(X) -> None:
    """scikit-learn's check and message for NaN or inf in ``X``."""
    assert_all_finite(
        X.data if sp.issparse(X) else X,
        estimator_name="AdamRegressor",
        input_name="X",
    )


def _check_no_whitening(est) -> None:
    if est.whiten is True:
        raise ValueError(
            "whiten=True needs full-batch statistics; mini-batches "
            f"(batch_size={est.batch_size}) run on the features. Set "
            "batch_size=None, or whiten='auto' or False."
        )


def _is_dask(X) -> bool:
    """A dask collection, recognised without importing dask."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "chunks")


class _FullBatchStep:
    """One iteration of full-batch Adam: gradient, step, new MSE."""

    def __init__(self, problem, adam):
        self.problem = problem
        self.adam = adam
        self.grad = np.empty((problem.n_params, problem.n_targets))

    def run(self, params):
        self.problem.gradient(self.grad)
        self.adam.step(params, self.grad)
        return self.problem.evaluate(params)

    def restart(self, params):
        """Continue from ``params`` (the gradient is that of the last
        evaluation)."""
        self.problem.evaluate(params)


class _MiniBatchEpochs:
    """One epoch of mini-batch Adam over the rows with positive weight."""

    def __init__(self, est, X, Y, s, coords, adam, rng):
        self.X = X
        Y_work = (Y - coords.y_offset) / coords.y_scale
        self.Y = Y_work[:, 0] if Y.shape[1] == 1 else Y_work
        lowest, highest = s.min(), s.max()  # two reductions, no copies
        if lowest > 0:
            self.rows, equal = None, lowest == highest
        else:
            self.rows = np.flatnonzero(s > 0)
            positive = s[self.rows]
            equal = np.all(positive == positive[0])
        self.s = None if equal else s
        self.adam = adam
        self.rng = rng
        self.shuffle = est.shuffle
        self.size = X.shape[0] if est.batch_size is None else est.batch_size
        self.coords = coords
        self.kernel = None
        if (
            (isinstance(X, np.ndarray) or (sp.issparse(X) and X.format == "csr"))
            and X.dtype in (np.float32, np.float64)
            and X.ndim == 2
            and Y.shape[1] == 1
            and coords.axes is None
        ):
            self.kernel = compiled_epoch()
        if self.kernel is None:
            self.batch = BatchLeastSquares(coords, X.dtype, Y.shape[1])
            self.grad = np.empty((coords.n_params, Y.shape[1]))

    def run(self, params):
        n = self.X.shape[0] if self.rows is None else self.rows.size
        if self.shuffle and self.size < n:
            order = shuffled_order(n, self.rng)
            if self.rows is not None:
                order = self.rows[order]
        else:
            order = self.rows  # None: contiguous slices, no copies
        if self.kernel is not None:
            return self._run_compiled(params, order)
        total = np.zeros(self.grad.shape[1])
        weight = 0.0
        X, Y, s, size = self.X, self.Y, self.s, self.size
        gradient, step, grad = self.batch.gradient, self.adam.step, self.grad
        for start in range(0, n, size):
            if order is None:
                idx = slice(start, start + size)
            else:
                idx = order[start : start + size]
            result = gradient(
                X[idx], Y[idx], None if s is None else s[idx], params, grad
            )
            if result is None:
                continue
            step(params, grad)
            total += result[1] * result[0]
            weight += result[1]
        self.weight = weight
        return total / weight

    def restart(self, params):
        """Continue from ``params``: nothing is cached between epochs."""

    def _run_compiled(self, params, order):
        """The same epoch in one compiled call (see sk_adam._kernel)."""
        state, adam, coords = self.adam.state, self.adam, self.coords
        empty = np.empty(0)
        # 1-D views of the (n_params, 1) arrays, updated in place
        theta, m, v = params[:, 0], state.moment1[:, 0], state.moment2[:, 0]
        X = self.X
        if sp.issparse(X):
            dense, csr = NO_DENSE, (X.data, X.indices, X.indptr)
        else:
            dense, csr = np.asarray(X), NO_CSR
        (t, b1, b2, loss, weight) = self.kernel(
            dense,
            *csr,
            self.Y,
            empty if self.s is None else self.s,
            np.empty(0, dtype=np.intp)
            if order is None
            else order.astype(np.intp, copy=False),
            self.size,
            theta,
            m,
            v,
            state.t,
            state.beta1_power,
            state.beta2_power,
            adam.alpha,
            adam.beta1,
            adam.beta2,
            adam.epsilon,
            coords.x_offset,
            coords.x_scale,
            coords.varying,
            coords.intercept,
        )
        state.t, state.beta1_power, state.beta2_power = int(t), b1, b2
        self.weight = weight
        return np.array([loss / weight])


class _Validation:
    """Validation MSE and R^2 of working parameters on the held-out rows."""

    def __init__(self, X, Y, s, coords, fit_intercept):
        rows = np.flatnonzero(s > 0)
        self.X, self.Y, self.s = X[rows], Y[rows], s[rows]
        self.coords = coords
        self.fit_intercept = fit_intercept

    def __call__(self, params):
        coef, intercept = self.coords.to_original(params, self.fit_intercept)
        pred = safe_sparse_dot(self.X, coef.T.astype(self.X.dtype), dense_output=True)
        pred = pred + intercept
        mse = np.average((self.Y - pred) ** 2, axis=0, weights=self.s)
        score = r2_score(self.Y, pred, sample_weight=self.s)
        return mse, score


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


class _Recorder:
    """Collects one row of :class:`AdamHistory` per iteration."""

    def __init__(self, est, coords):
        self.est, self.coords = est, coords
        self.rows = []

    def __call__(self, params, adam):
        est, state = self.est, adam.state
        m_hat = state.moment1 / (1.0 - state.beta1_power)
        v_hat = state.moment2 / (1.0 - state.beta2_power)
        step = adam.alpha * m_hat / (np.sqrt(v_hat) + est.epsilon)
        coef, intercept = self.coords.to_original(params, est.fit_intercept)
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
        if previous._pieces[0][2].shape[1] == step.shape[1] - 1:
            # partial_fit after a standardized fit made the intercept a
            # parameter: it had no moments and no steps before (once a stream)
            old = previous._columns()
            pad = [(0, 0)] * step.ndim
            pad[1] = (0, 1)
            previous = AdamHistory(*(np.pad(a, pad) for a in old[:3]), *old[3:])
        if all(  # every piece has the same shapes past the iteration axis
            a.shape[1:] == b.shape[1:]
            for a, b in zip(previous._pieces[0], new._pieces[0], strict=True)
        ):
            return previous._then(new)
        return new


@dataclass
class _Run:
    params: np.ndarray
    state: AdamState
    curve: np.ndarray
    best_iter: int
    reason: str
    validation_scores: np.ndarray | None
    decays: int = 0


def _stall_window(est) -> int | None:
    """``n_iter_no_change``, with "auto" resolved (see its docstring)."""
    if est.n_iter_no_change == "auto":
        return 200 if est.batch_size is None else 5
    return est.n_iter_no_change


#: A stall whose window saw the criterion this far (relative) above its best
#: is Adam circling the minimum, which a smaller learning rate cures; below
#: it the MSE is flat and the fit has converged (see ``stall_decays``).
_CIRCLING_RTOL = 1e-8


def _run_adam(est, epoch, params, adam, y_scale, start, validation, recorder=None):
    """Iterate ``epoch.run`` until a stopping rule fires; see the class
    docstring.

    ``start`` is the per-target training MSE at the starting point (None
    when it is not known, for mini-batches). Decisions are taken on MSEs
    divided by ``max(y_scale)**2`` so that they stay finite where the MSE in
    squared units of ``y`` overflows.
    """
    window = _stall_window(est)
    decays_allowed = est.stall_decays if validation is None else 0
    decays_left = decays_allowed
    window_start = 0  # the stall window starts afresh after a decay
    unit = np.max(y_scale)
    weights = (y_scale / unit) ** 2 / y_scale.size
    tol = est.tol / unit / unit  # may underflow to 0, never overflows
    loss = np.empty(est.max_iter + 1)  # loss[t]: training MSE of iteration t
    best = np.empty(est.max_iter + 1)  # best[t]: lowest criterion up to t
    value_at = np.empty(est.max_iter + 1)  # value_at[t]: criterion of t
    scores = [] if validation is not None else None

    def criterion(train_mse):
        if validation is None:
            return train_mse
        mse, score = validation(params)
        scores.append(score)
        return float(np.mean(mse / unit / unit))

    with np.errstate(over="ignore", invalid="ignore"):
        loss[0] = np.inf if start is None else start @ weights
    if not (start is None or np.isfinite(loss[0])):
        raise ValueError(
            "The training MSE at the starting point is not finite: the values "
            "of X or y are so large that their squares overflow float64. "
            "Rescale the data or use standardize=True."
        )
    best[0] = criterion(loss[0]) if validation is not None else loss[0]
    if scores:
        scores.pop()  # the starting point's score is not an iteration's
    best_params = params.copy()
    best_state = adam.state.copy()
    best_iter, reason, t = 0, "max_iter", 0
    clock = time.perf_counter()
    # non-finite values are detected below; numpy need not warn about them
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, est.max_iter + 1):
            loss[t] = current = epoch.run(params) @ weights
            if recorder is not None:
                recorder(params, adam)
            if not np.isfinite(current):
                reason = "diverged"
                break
            value_at[t] = value = criterion(current)
            best[t] = min(value, best[t - 1])
            if value < best[t - 1]:
                best_params[...] = params
                best_state.assign(adam.state)
                best_iter = t
            if est.verbose:
                _report(t, current * unit * unit, time.perf_counter() - clock)
            if current < tol:
                reason = "tol"
                break
            if window is not None and t - window >= window_start:
                if best[t - window] - best[t] <= est.stall_tol * best[t]:
                    rise = np.max(value_at[t - window + 1 : t + 1]) - best[t]
                    if decays_left > 0 and rise > _CIRCLING_RTOL * abs(best[t]):
                        # circling, not converged: back to the best point,
                        # with a tenth of the learning rate
                        decays_left -= 1
                        adam.alpha /= 10.0
                        params[...] = best_params
                        adam.state.assign(best_state)
                        epoch.restart(params)
                        window_start = t
                        continue
                    reason = "stall"
                    break
        # (the Gram path's MSE may be a tiny negative number for exact fits)
        curve = np.maximum(loss[1 : t + 1], 0.0) * unit * unit
        start_mse = loss[0] * unit * unit

    if est.verbose:
        print(
            f"Stopped at iteration {t} by the {reason} rule; keeping iteration "
            f"{t if reason == 'tol' else best_iter}."
        )
    _warn_if_unconverged(est, reason, t, best_iter, curve, start_mse)
    if scores is not None:
        scores = np.asarray(scores[: len(curve)])
    decays = decays_allowed - decays_left
    if reason == "tol":
        return _Run(params, adam.state, curve, t, reason, scores, decays)
    return _Run(best_params, best_state, curve, best_iter, reason, scores, decays)


def _warn_if_unconverged(est, reason, t, best_iter, curve, start_mse):
    if reason == "diverged":
        warnings.warn(
            f"Adam diverged at iteration {t}: the training MSE became "
            f"{curve[-1]}. The coefficients of iteration {best_iter} (the best "
            f"finite ones) are kept. Reduce alpha (now {est.alpha}) or use "
            f"standardize=True.",
            ConvergenceWarning,
            stacklevel=5,  # the caller of fit
        )
    elif reason == "max_iter":
        warnings.warn(
            f"Adam reached max_iter={est.max_iter} before the MSE fell below "
            f"tol={est.tol} or stopped improving (n_iter_no_change="
            f"{_stall_window(est)}, stall_tol={est.stall_tol}). Increase "
            f"max_iter, or alpha if the loss curve is still falling steadily.",
            ConvergenceWarning,
            stacklevel=5,  # the caller of fit
        )
    if reason != "tol" and best_iter == 0 and np.min(curve) > start_mse * (1 + 1e-8):
        warnings.warn(
            f"No Adam iteration improved on the starting point (MSE "
            f"{start_mse:.6g}); the starting coefficients are kept. "
            f"alpha={est.alpha} is probably far too large for this data.",
            ConvergenceWarning,
            stacklevel=5,  # the caller of fit
        )


def _report(t, mse, elapsed):
    cadence = 10 ** max(0, len(str(t)) - 1)
    if t % cadence == 0:
        print(f"epoch {t} MSE {mse:.6g} ({elapsed:.2f} s)")
