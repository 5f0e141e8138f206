"""Displays: rendered with Agg; the artists are checked, not the pixels."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression

from sk_adam import AdamRegressor
from sk_adam.plotting import AdamHistoryDisplay, CoefficientPathDisplay


@pytest.fixture(scope="module")
def fitted():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    # whiten=False: the moments are the features' (whitened, the axes')
    est = AdamRegressor(record_history=True, tol=3000.0, whiten=False)
    return est.fit(X, y), X, y


def teardown_function():
    plt.close("all")


def test_history_display_draws_loss_tol_and_moments(fitted):
    est, X, _ = fitted
    display = AdamHistoryDisplay.from_estimator(est)
    assert display.axes_.shape == (4,)
    assert_allclose(display.loss_line_.get_ydata(), est.loss_curve_)
    assert display.axes_[0].get_yscale() == "log"
    assert display.tol_line_.get_ydata()[0] == 3000.0
    h = est.history_
    for lines, data in [
        (display.moment1_lines_, h.moment1hat),
        (display.moment2_lines_, h.moment2hat),
        (display.step_lines_, h.step),
    ]:
        assert len(lines) == X.shape[1]
        assert_allclose(lines[3].get_ydata(), data[:, 3])
    assert display.step_lines_[0].get_label() == X.columns[0]


def test_history_display_without_history_and_on_given_axes():
    X, y = load_diabetes(return_X_y=True)
    est = AdamRegressor().fit(X, y)
    with pytest.raises(ValueError, match="record_history=True, or pass panels"):
        AdamHistoryDisplay.from_estimator(est)
    fig, ax = plt.subplots()
    display = AdamHistoryDisplay.from_estimator(est, ax=ax, panels="loss")
    assert display.axes_[0] is ax and display.figure_ is fig
    assert display.tol_line_ is None and display.step_lines_ == []
    with pytest.raises(ValueError, match="4 Axes"):
        AdamHistoryDisplay(loss_curve=[1, 0.5], history=est_history(X, y)).plot(ax=ax)


def est_history(X, y):
    return AdamRegressor(record_history=True).fit(X, y).history_


def test_coefficient_path_converges_to_linear_regression(fitted):
    est, X, y = fitted
    display = CoefficientPathDisplay.from_estimator(est, X, y)
    ols = LinearRegression().fit(X, y)
    assert len(display.lines_) == len(display.reference_lines_) == X.shape[1]
    assert_allclose(
        [line.get_ydata()[0] for line in display.reference_lines_], ols.coef_
    )
    assert_allclose(display.lines_[2].get_ydata(), est.history_.coef[:, 2])
    assert display.ax_.get_xscale() == "log"


def test_coefficient_path_needs_a_history():
    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(ValueError, match="record_history=True"):
        CoefficientPathDisplay.from_estimator(AdamRegressor().fit(X, y))


def test_multi_output_target_selection():
    X, y = load_diabetes(return_X_y=True)
    Y = np.c_[y, -y]
    est = AdamRegressor(record_history=True).fit(X, Y)
    display = AdamHistoryDisplay.from_estimator(est, target=1)
    assert_allclose(display.step_lines_[0].get_ydata(), est.history_.step[:, 0, 1])
    path = CoefficientPathDisplay.from_estimator(est, X, Y, target=1)
    assert_allclose(path.lines_[0].get_ydata(), est.history_.coef[:, 1, 0])


def test_whitened_moments_are_labelled_by_axis_not_feature():
    rng = np.random.RandomState(0)
    x = rng.uniform(0, 1, 100)
    X = np.c_[x, x**2, x**3, x**4, x**5]
    est = AdamRegressor(record_history=True).fit(X, np.sin(6 * x))
    assert est.whitened_
    display = AdamHistoryDisplay.from_estimator(est)
    assert [line.get_label() for line in display.moment1_lines_] == [
        f"axis {j}" for j in range(5)
    ]
    # the coefficient path is in the data's units, one line per feature
    path = CoefficientPathDisplay.from_estimator(est)
    assert_allclose(path.coef_path[-1], est.history_.coef[-1])


def _shown(labels, low, high, coordinate):
    """The tick labels whose tick lies within the axis' view limits (the
    others exist but are not drawn)."""
    low, high = min(low, high), max(low, high)
    span = (high - low) * 1e-9
    return [
        t for t in labels if low - span <= t.get_position()[coordinate] <= high + span
    ]


def _texts(ax):
    """The text artists drawn for one axes (colour bars included)."""
    texts = [ax.title, ax._left_title, ax._right_title, ax.xaxis.label]
    texts += [ax.yaxis.label, ax.xaxis.offsetText, ax.yaxis.offsetText]
    texts += _shown(ax.get_xticklabels(), *ax.get_xlim(), 0)
    texts += _shown(ax.get_yticklabels(), *ax.get_ylim(), 1)
    return [t for t in texts if t.get_visible() and t.get_text()]


def _assert_readable(fig):
    """No two texts of different axes overlap, and every legend lies inside
    the figure."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [
        (i, text.get_text(), text.get_window_extent(renderer))
        for i, ax in enumerate(fig.axes)
        for text in _texts(ax)
    ]
    for a, (i, text_i, box_i) in enumerate(boxes):
        for j, text_j, box_j in boxes[a + 1 :]:
            if i != j and box_i.overlaps(box_j):
                raise AssertionError(
                    f"{text_i!r} (axes {i}) overlaps {text_j!r} (axes {j})"
                )
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes]
    inside = fig.bbox.padded(1.0)
    for legend in filter(None, legends):
        box = legend.get_window_extent(renderer)
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1, legend
        assert inside.y0 <= box.y0 and box.y1 <= inside.y1, legend


@pytest.fixture(scope="module", params=[1, 10, 60])
def wide_fit(request):
    d = request.param
    rng = np.random.RandomState(d)
    X = rng.randn(300, d) * np.logspace(-1, 1, d) + 5.0
    Y = X @ rng.randn(d, 3) + rng.randn(300, 3)
    # whiten=False: per-feature moments, one line per feature
    est = AdamRegressor(record_history=True, whiten=False, max_iter=300)
    with pytest.warns(Warning):  # max_iter: a short history is enough
        est.fit(X, Y)
    return est, X, Y


def test_displays_are_readable_at_many_features_and_targets(wide_fit):
    est, X, Y = wide_fit
    d = X.shape[1]
    history = AdamHistoryDisplay.from_estimator(est, target=2)
    _assert_readable(history.figure_)
    assert "target 2 of 3" in history.axes_[0].get_title()
    assert history.axes_[2].get_yscale() == "log"
    assert history.axes_[1].get_yscale() == history.axes_[3].get_yscale() == "symlog"
    path = CoefficientPathDisplay.from_estimator(est, X, Y, target=2)
    _assert_readable(path.figure_)
    assert "target 2 of 3" in path.ax_.get_title()
    # up to 12 coefficients a legend entry each, more a colour bar
    from matplotlib.colorbar import Colorbar

    assert isinstance(history.key_, Colorbar) == (d + 1 > 12)
    assert isinstance(path.key_, Colorbar) == (d > 12)


def test_the_moments_stay_visible_as_they_fall():
    # at the end of a fit the steps are far below their start: on a linear
    # axis a flat line at zero; on the symmetric log scale they are drawn in
    # its logarithmic part
    X, y = load_diabetes(return_X_y=True)
    est = AdamRegressor(record_history=True, whiten=False).fit(X, y)
    display = AdamHistoryDisplay.from_estimator(est)
    for panel, data in [
        (display.axes_[1], est.history_.moment1hat),
        (display.axes_[3], est.history_.step),
    ]:
        late = np.median(np.abs(data[-20:]))
        assert late < 1e-4 * np.abs(data).max()  # what a linear axis flattens
        assert panel.get_yscale() == "symlog"
        assert panel.yaxis.get_transform().linthresh < late
