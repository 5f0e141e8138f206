"""Displays of Adam's progress, in the style of scikit-learn's displays.

matplotlib is imported only when something is drawn (``pip install
sk-adam[plot]``). Each display is built with ``from_estimator`` (which plots)
or from arrays and :meth:`plot`; the matplotlib artists it draws are kept as
attributes so that they can be restyled or tested.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["AdamHistoryDisplay", "CoefficientPathDisplay"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise ImportError(
            "Plotting needs matplotlib: pip install sk-adam[plot] "
            "(or pip install matplotlib)."
        ) from exc
    return plt


def _target_slice(array, target):
    """Select one target of a history array that has a target axis."""
    return array[:, :, target] if array.ndim == 3 else array


def _checked_target(estimator, target):
    """``target`` after checking that ``estimator`` is fitted and has it."""
    check_is_fitted(estimator)
    coef = np.asarray(estimator.coef_)
    n_targets = 1 if coef.ndim == 1 else coef.shape[0]
    if not (isinstance(target, Integral) and 0 <= target < n_targets):
        raise ValueError(
            f"target={target!r} is not a target of this fit: it has "
            f"{n_targets} target(s), numbered from 0."
        )
    return int(target)


def _feature_names(estimator):
    """The column names the estimator was fitted with, or None."""
    names = getattr(estimator, "feature_names_in_", None)
    return None if names is None else list(names)


def _moment_names(estimator):
    """Labels of the moment panels: features, or principal axes when the
    fit ran on whitened coordinates (see ``AdamRegressor.whiten``)."""
    if getattr(estimator, "whitened_", False):
        return [f"axis {j}" for j in range(estimator.moment1_.shape[0])]
    return _feature_names(estimator)


def _labels(n, names):
    if names is None:
        return [f"w{j}" for j in range(n)]
    names = list(names)
    return names + ["intercept"] * (n - len(names))


def _target_label(estimator, target):
    """How a display names its target: None for one target, else "target t
    of k" (with the target's name when ``y`` was a data frame)."""
    coef = np.asarray(estimator.coef_)
    if coef.ndim == 1:
        return None
    return f"target {target} of {coef.shape[0]}"


#: Up to this many coefficients get a legend entry each; more are coloured
#: along a colour map and summarised by a colour bar of their index.
MAX_LEGEND = 12


def _colours(n):
    """Line colours: matplotlib's cycle up to :data:`MAX_LEGEND` lines, a
    colour map beyond."""
    if n <= MAX_LEGEND:
        return [None] * n
    from matplotlib import colormaps

    return list(colormaps["viridis"](np.linspace(0.0, 1.0, n)))


def _key(fig, axes, lines, names, figure_level=True):
    """A legend of ``lines``, outside the panels: at the figure's right when
    ``figure_level`` and its layout is managed (constrained layout makes
    room), else at the right of the last axes. More than
    :data:`MAX_LEGEND` lines get a colour bar of their index instead.
    Returns the legend or colour bar."""
    n = len(lines)
    if n > MAX_LEGEND:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        mappable = ScalarMappable(Normalize(0, n - 1), "viridis")
        return fig.colorbar(
            mappable, ax=list(axes), label=f"coefficient ({names[0]} ... {names[-1]})"
        )
    ncol = 1 if n <= 6 else 2
    if figure_level and _managed(fig):
        return fig.legend(
            lines, names, loc="outside right upper", fontsize=7, ncol=ncol
        )
    return axes[-1].legend(
        lines, names, fontsize=6, ncol=ncol, loc="upper left",
        bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
    )  # fmt: skip


def _managed(fig):
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    return isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)


#: The symmetric log scales are linear below the 1st percentile of the
#: nonzero magnitudes drawn, but not below this fraction of the largest.
LINEAR_BELOW = 1e-15


def _symlog(ax, data):
    """A symmetric log scale, linear only below nearly all the magnitudes
    drawn, so that values falling over many decades stay visible; ticks at
    0 and at most four decades on each side."""
    from matplotlib.ticker import FixedLocator

    magnitudes = np.abs(data[np.isfinite(data) & (data != 0)])
    top = float(magnitudes.max()) if magnitudes.size else 0.0
    if top == 0.0:
        ax.set_yscale("linear")
        return
    linthresh = max(top * LINEAR_BELOW, float(np.quantile(magnitudes, 0.01)))
    ax.set_yscale("symlog", linthresh=linthresh)
    high = int(np.floor(np.log10(top)))
    low = int(np.ceil(np.log10(linthresh)))
    stride = max(1, -(-(high - low + 1) // 4))
    decades = 10.0 ** np.arange(high, low - 1, -stride)
    ax.yaxis.set_major_locator(FixedLocator(np.r_[-decades, 0.0, decades[::-1]]))
    ax.yaxis.set_minor_locator(FixedLocator([]))


class AdamHistoryDisplay:
    """The training MSE with the ``tol`` line and, when recorded, Adam's
    bias-corrected moments and effective steps per coefficient.

    Parameters
    ----------
    loss_curve : ndarray of shape (n_iter,)
        Training MSE per iteration (``AdamRegressor.loss_curve_``).
    tol : float, default=0.0
        The MSE threshold; drawn when positive.
    history : AdamHistory, default=None
        ``AdamRegressor.history_``; without it only the MSE is drawn.
    feature_names : list of str, default=None
        Legend labels of the coefficients.
    target : int, default=0
        Which target to draw for multi-output histories.
    target_label : str, default=None
        Named in the MSE panel's title (``from_estimator`` gives "target t
        of k" for multi-output fits).

    Attributes
    ----------
    figure_ : matplotlib Figure
    axes_ : ndarray of matplotlib Axes
        One axes (MSE) or four (MSE, moment1hat, moment2hat, step).
    loss_line_ : Line2D
    tol_line_ : Line2D or None
    moment1_lines_, moment2_lines_, step_lines_ : list of Line2D
        One line per working coefficient (empty without a history).
    key_ : Legend, Colorbar or None
        Which line is which coefficient: a legend outside the panels for up
        to 12 coefficients, a colour bar of their index for more.

    Notes
    -----
    A new figure uses constrained layout. The moments and steps fall over
    many decades as Adam converges: ``moment2hat`` is drawn on a log scale,
    ``moment1hat`` and the step (which change sign) on a symmetric log
    scale that is linear only below the 1st percentile of their magnitudes.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_diabetes
    >>> from sk_adam import AdamRegressor
    >>> from sk_adam.plotting import AdamHistoryDisplay
    >>> X, y = load_diabetes(return_X_y=True)
    >>> est = AdamRegressor(record_history=True).fit(X, y)
    >>> display = AdamHistoryDisplay.from_estimator(est)
    >>> len(display.axes_), len(display.step_lines_)
    (4, 10)
    """

    def __init__(
        self,
        *,
        loss_curve,
        tol=0.0,
        history=None,
        feature_names=None,
        target=0,
        target_label=None,
    ):
        self.loss_curve = np.asarray(loss_curve)
        self.tol = tol
        self.history = history
        self.feature_names = feature_names
        self.target = target
        self.target_label = target_label

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, target=0, panels="all"):
        """Draw a fitted :class:`~sk_adam.AdamRegressor`.

        Parameters
        ----------
        estimator : AdamRegressor
            Fitted with ``record_history=True`` for the moment and step
            panels.
        ax : matplotlib Axes or array of 4 Axes, default=None
            Where to draw; a new figure when None.
        target : int, default=0
            Target to draw for multi-output fits.
        panels : {"all", "loss"}, default="all"
            "all": the MSE, the moments and the steps (an error if the fit
            did not record them); "loss": the training MSE alone.

        Returns
        -------
        display : AdamHistoryDisplay
        """
        target = _checked_target(estimator, target)
        if panels not in ("all", "loss"):
            raise ValueError(f"panels must be 'all' or 'loss', not {panels!r}.")
        history = getattr(estimator, "history_", None)
        if panels == "all" and history is None:
            raise ValueError(
                "The moment and step panels are drawn from history_, which this "
                "fit did not record: fit with record_history=True, or pass "
                "panels='loss' to draw the training MSE alone."
            )
        return cls(
            loss_curve=estimator.loss_curve_,
            tol=estimator.tol,
            history=history if panels == "all" else None,
            feature_names=_moment_names(estimator),
            target=target,
            target_label=_target_label(estimator, target),
        ).plot(ax=ax)

    def plot(self, ax=None):
        """Draw on ``ax`` (one Axes, or four with a history) or a new figure.

        Returns
        -------
        self : AdamHistoryDisplay
        """
        plt = _pyplot()
        panels = 1 if self.history is None else 4
        if ax is None:
            fig, axes = plt.subplots(
                1 if panels == 1 else 2,
                1 if panels == 1 else 2,
                figsize=(6, 4) if panels == 1 else (12, 7),
                layout="constrained",
            )
        else:
            axes = ax
            fig = np.ravel(ax)[0].figure
        axes = np.ravel(np.asarray(axes, dtype=object))
        if axes.size != panels:
            raise ValueError(f"ax must hold {panels} Axes for this display.")
        iterations = np.arange(1, self.loss_curve.size + 1)
        loss_ax = axes[0]
        (self.loss_line_,) = loss_ax.plot(iterations, self.loss_curve, label="MSE")
        loss_ax.set_yscale("log")
        loss_ax.set_xlabel("iteration")
        loss_ax.set_ylabel("training MSE")
        self.tol_line_ = None
        if self.tol > 0:
            self.tol_line_ = loss_ax.axhline(
                self.tol, color="grey", linestyle="--", label="tol"
            )
        loss_ax.legend(fontsize=8)
        if self.target_label is not None:
            loss_ax.set_title(f"training MSE, {self.target_label}", fontsize=10)
        self.moment1_lines_, self.moment2_lines_, self.step_lines_ = [], [], []
        self.key_ = None
        if self.history is not None:
            self._draw_history(fig, axes)
        self.figure_, self.axes_ = fig, axes
        return self

    def _draw_history(self, fig, axes):
        h = self.history
        rows = np.arange(1, h.step.shape[0] + 1)
        panels_data = [
            (axes[1], h.moment1hat, "moment1hat", self.moment1_lines_, "symlog"),
            (axes[2], h.moment2hat, "moment2hat", self.moment2_lines_, "log"),
            (axes[3], h.step, "effective step", self.step_lines_, "symlog"),
        ]
        names = None
        for panel, data, label, store, scale in panels_data:
            data = _target_slice(data, self.target)
            names = _labels(data.shape[1], self.feature_names)
            colours = _colours(data.shape[1])
            for j in range(data.shape[1]):
                (line,) = panel.plot(
                    rows, data[:, j], lw=1, label=names[j], color=colours[j]
                )
                store.append(line)
            if scale == "symlog":
                _symlog(panel, data)
            else:
                panel.set_yscale(scale)
            panel.set_xlabel("iteration")
            panel.set_ylabel(label)
        self.key_ = _key(fig, axes[1:], self.step_lines_, names)


class CoefficientPathDisplay:
    """Coefficients per iteration converging to a reference (OLS) solution.

    Parameters
    ----------
    coef_path : ndarray of shape (n_iter, n_features)
        ``AdamRegressor.history_.coef`` (one target).
    reference_coef : ndarray of shape (n_features,), default=None
        Drawn as dashed horizontal lines, e.g. LinearRegression's ``coef_``.
    feature_names : list of str, default=None
    target_label : str, default=None
        Named in the title (``from_estimator`` gives "target t of k" for
        multi-output fits).

    Attributes
    ----------
    figure_, ax_ : matplotlib Figure and Axes
    lines_ : list of Line2D
        One per coefficient.
    reference_lines_ : list of Line2D
        One per coefficient when a reference is given.
    key_ : Legend, Colorbar or None
        A legend outside the axes for up to 12 coefficients, a colour bar of
        their index for more; None with ``legend=False``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_diabetes
    >>> from sk_adam import AdamRegressor
    >>> from sk_adam.plotting import CoefficientPathDisplay
    >>> X, y = load_diabetes(return_X_y=True)
    >>> est = AdamRegressor(record_history=True).fit(X, y)
    >>> display = CoefficientPathDisplay.from_estimator(est, X, y)
    >>> len(display.lines_), len(display.reference_lines_)
    (10, 10)
    """

    def __init__(
        self, *, coef_path, reference_coef=None, feature_names=None, target_label=None
    ):
        self.coef_path = np.asarray(coef_path)
        self.reference_coef = reference_coef
        self.feature_names = feature_names
        self.target_label = target_label

    @classmethod
    def from_estimator(cls, estimator, X=None, y=None, *, ax=None, target=0):
        """Draw the recorded path; with ``X, y`` also LinearRegression's fit.

        Parameters
        ----------
        estimator : AdamRegressor
            Fitted with ``record_history=True``.
        X, y : array-like, default=None
            Data to fit the LinearRegression reference on (same
            ``fit_intercept``).
        ax : matplotlib Axes, default=None
        target : int, default=0
            Target to draw for multi-output fits.

        Returns
        -------
        display : CoefficientPathDisplay
        """
        target = _checked_target(estimator, target)
        history = getattr(estimator, "history_", None)
        if history is None:
            raise ValueError(
                "The coefficient path needs a history: fit with record_history=True."
            )
        path = history.coef
        if path.ndim == 3:
            path = path[:, target]
        reference = None
        if X is not None and y is not None:
            from sklearn.linear_model import LinearRegression

            ols = LinearRegression(fit_intercept=estimator.fit_intercept).fit(X, y)
            reference = ols.coef_ if ols.coef_.ndim == 1 else ols.coef_[target]
        return cls(
            coef_path=path,
            reference_coef=reference,
            feature_names=_feature_names(estimator),
            target_label=_target_label(estimator, target),
        ).plot(ax=ax)

    def plot(self, ax=None, *, legend=True):
        """Draw on ``ax`` or a new figure (constrained layout).

        Parameters
        ----------
        ax : matplotlib Axes, default=None
        legend : bool, default=True
            Whether to key the lines (off where another display on the same
            figure keys the same coefficients).

        Returns
        -------
        self : CoefficientPathDisplay
        """
        plt = _pyplot()
        if ax is None:
            fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
        else:
            fig = ax.figure
        iterations = np.arange(1, self.coef_path.shape[0] + 1)
        names = _labels(self.coef_path.shape[1], self.feature_names)
        colours = _colours(self.coef_path.shape[1])
        self.lines_, self.reference_lines_ = [], []
        for j in range(self.coef_path.shape[1]):
            (line,) = ax.plot(
                iterations, self.coef_path[:, j], lw=1.2, label=names[j],
                color=colours[j],
            )  # fmt: skip
            self.lines_.append(line)
            if self.reference_coef is not None:
                self.reference_lines_.append(
                    ax.axhline(
                        self.reference_coef[j],
                        color=line.get_color(),
                        linestyle="--",
                        lw=0.8,
                    )
                )
        ax.set_xscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("coefficient")
        title = "Adam's coefficient path"
        if self.reference_coef is not None:
            title += " (dashed: OLS)"
        if self.target_label is not None:
            title += f", {self.target_label}"
        ax.set_title(title, fontsize=10)
        self.key_ = (
            _key(fig, [ax], self.lines_, names, figure_level=False) if legend else None
        )
        self.figure_, self.ax_ = fig, ax
        return self
