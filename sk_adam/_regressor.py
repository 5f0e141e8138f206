"""AdamRegressor: least-squares linear regression solved by Adam."""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from ._adam import Adam, AdamState
from ._datafit import GramLeastSquares, least_squares_problem

__all__ = ["AdamRegressor"]


class AdamRegressor(RegressorMixin, BaseEstimator):
    r"""Linear least-squares regression fitted by the Adam optimizer.

    Minimises, for each target, the weighted mean squared error

    .. math::

        f(w, b) = \frac{1}{2} \frac{\sum_i s_i (y_i - x_i \cdot w - b)^2}
                  {\sum_i s_i}

    with full-batch Adam (Kingma & Ba, 2015). With :math:`g_t` the gradient of
    :math:`f` at the current coefficients, each iteration :math:`t = 1, 2,
    \dots` performs

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
          scale of the coefficients you expect.

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

    n_iter_no_change : int >= 1 or None, default=200
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
        disables the rule.

    stall_tol : float >= 0, default=1e-10
        Relative improvement of the best MSE over ``n_iter_no_change``
        iterations below which the fit is considered stalled (see above).

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
          small next to the data (``n_samples >= 4 * n_features`` and
          ``n_features <= 2048``; for sparse ``X`` also ``n_features**2 <= 2 *
          nnz``), the products otherwise.

        If True, start from the ``coef_`` and ``intercept_`` of the previous
        fit (with fresh moment estimates); otherwise start from zero.

    verbose : int, default=0
        If positive, print the training MSE at iterations 1-10, then every
        10 up to 100, every 100 up to 1000, and so on, and say which rule
        ended the fit.

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
        Number of Adam iterations run by the last call to ``fit`` (>= 1).

    loss_curve_ : ndarray of shape (n_iter_,)
        Training MSE (as defined under ``tol``) after each iteration.

    best_iter_ : int
        Iteration whose coefficients were kept (0 is the starting point).

    stop_reason_ : {"tol", "stall", "max_iter", "diverged"}
        Which rule ended the last fit.

    precomputed_ : bool
        Whether the last fit ran on the sufficient statistics (see
        ``precompute``).

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.

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
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), None],
        "stall_tol": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "standardize": ["boolean"],
        "precompute": ["boolean", StrOptions({"auto"})],
        "warm_start": ["boolean"],
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
        n_iter_no_change=200,
        stall_tol=1e-10,
        fit_intercept=True,
        standardize=True,
        precompute="auto",
        warm_start=False,
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
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.precompute = precompute
        self.warm_start = warm_start
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the linear model with Adam.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. float32 and float64 are used as given (never copied
            or modified); other dtypes are converted to float64. Sparse input
            must be CSR or CSC to avoid a conversion; it is never densified.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; a weight of ``c`` is equivalent to repeating
            the row ``c`` times. At least one must be positive.

        Returns
        -------
        self : AdamRegressor
            The fitted estimator.
        """
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=("csr", "csc"),
            dtype=[np.float64, np.float32],
            multi_output=True,
            y_numeric=True,
        )
        n_samples = X.shape[0]
        Y = np.asarray(y, dtype=np.float64).reshape(n_samples, -1)
        s = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        total = s.sum()
        if not total > 0:
            raise ValueError(
                "sample_weight sums to zero: at least one sample must have a "
                "positive weight."
            )
        s = s / total

        problem, y_offset, y_scale = least_squares_problem(
            X,
            Y,
            s,
            fit_intercept=self.fit_intercept,
            standardize=self.standardize,
            precompute=self.precompute,
        )
        params = self._initial_params(problem, Y.shape[1], y_scale)
        result = _run_adam(self, problem, params, y_scale)
        params, curve, best_iter, reason = result

        coef, intercept = _to_original_units(
            params, problem, y_offset, y_scale, self.fit_intercept
        )
        # attributes are set together at the end: an interrupted fit leaves
        # the estimator as it was
        coef = coef.astype(X.dtype, copy=False)
        intercept = intercept.astype(X.dtype, copy=False)
        if y.ndim == 1:
            coef, intercept = coef[0], intercept[0]
        self.coef_ = coef
        self.intercept_ = intercept
        self.loss_curve_ = curve
        self.n_iter_ = len(curve)
        self.best_iter_ = best_iter
        self.stop_reason_ = reason
        self.precomputed_ = isinstance(problem, GramLeastSquares)
        return self

    def _initial_params(self, problem, n_targets, y_scale):
        n_features = len(problem.x_scale)
        params = np.zeros((problem.n_params, n_targets))
        if not (self.warm_start and hasattr(self, "coef_")):
            return params
        coef = np.asarray(self.coef_, dtype=np.float64).reshape(
            -1, self.coef_.shape[-1]
        )
        if coef.shape != (n_targets, n_features):
            raise ValueError(
                f"warm_start=True but the previous fit had coef_ of shape "
                f"{np.shape(self.coef_)}, which does not match {n_targets} "
                f"target(s) and {n_features} feature(s) of this data. Set "
                f"warm_start=False or fit data of the same shape."
            )
        params[:n_features] = coef.T * problem.x_scale[:, None] / y_scale
        if problem.intercept:
            params[n_features] = np.reshape(self.intercept_, -1)
        return params

    def predict(self, X):
        """Predict with the fitted linear model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            ``X @ coef_.T + intercept_``.
        """
        check_is_fitted(self)
        X = validate_data(
            self,
            X,
            accept_sparse=("csr", "csc"),
            dtype=[np.float64, np.float32],
            reset=False,
        )
        return safe_sparse_dot(X, self.coef_.T, dense_output=True) + self.intercept_


def _to_original_units(params, problem, y_offset, y_scale, fit_intercept):
    """Coefficients ``(k, d)`` and intercepts ``(k,)`` in the data's units."""
    n_features = len(problem.x_scale)
    coef = (params[:n_features] / problem.x_scale[:, None] * y_scale).T
    if problem.intercept:
        intercept = params[n_features].copy()
    elif fit_intercept:
        intercept = y_offset - coef @ problem.x_offset
    else:
        intercept = np.zeros(params.shape[1])
    return coef, intercept


def _run_adam(est, problem, params, y_scale):
    """Run Adam from ``params`` until a stopping rule fires.

    Returns ``(kept_params, loss_curve, best_iter, reason)``. Decisions are
    taken on the MSE divided by ``max(y_scale)**2``, so they stay finite where
    the MSE in squared units of ``y`` overflows.
    """
    window = est.n_iter_no_change
    unit = np.max(y_scale)
    weights = (y_scale / unit) ** 2 / y_scale.size
    tol = est.tol / unit / unit  # may underflow to 0, never overflows

    grad = np.empty_like(params)
    adam = Adam(
        est.alpha, est.beta1, est.beta2, est.epsilon, AdamState.zeros(params.shape)
    )
    # loss[t], best[t]: MSE of iterate t and lowest MSE up to t (0 = start)
    loss = np.empty(est.max_iter + 1)
    best = np.empty(est.max_iter + 1)
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        loss[0] = best[0] = problem.evaluate(params) @ weights
    if not np.isfinite(loss[0]):
        raise ValueError(
            "The training MSE at the starting point is not finite: the values "
            "of X or y are so large that their squares overflow float64. "
            "Rescale the data or use standardize=True."
        )
    best_params = params.copy()
    best_iter, reason, t = 0, "max_iter", 0
    # non-finite values are detected below; numpy need not warn about them
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, est.max_iter + 1):
            problem.gradient(grad)
            adam.step(params, grad)
            loss[t] = current = problem.evaluate(params) @ weights
            if not np.isfinite(current):
                reason = "diverged"
                break
            best[t] = min(current, best[t - 1])
            if current < best[t - 1]:
                best_params[...] = params
                best_iter = t
            if est.verbose:
                _report(t, current * unit * unit)
            if current < tol:
                reason = "tol"
                break
            if window is not None and t >= window:
                if best[t - window] - best[t] <= est.stall_tol * best[t]:
                    reason = "stall"
                    break
        # (the Gram path's MSE may be a tiny negative number for exact fits)
        curve = np.maximum(loss[1 : t + 1], 0.0) * unit * unit
        best_mse = best[t if reason != "diverged" else t - 1] * unit * unit
        start_mse = loss[0] * unit * unit

    if est.verbose:
        print(
            f"Stopped at iteration {t} by the {reason} rule; keeping iteration "
            f"{best_iter} with MSE {best_mse:.6g}."
        )
    _warn_if_unconverged(est, reason, t, best_iter, curve, start_mse)
    if reason == "tol":
        return params, curve, t, reason
    return best_params, curve, best_iter, reason


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
            f"{est.n_iter_no_change}, stall_tol={est.stall_tol}). Increase "
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


def _report(t, mse):
    cadence = 10 ** max(0, len(str(t)) - 1)
    if t % cadence == 0:
        print(f"epoch {t} MSE {mse:.6g}")
