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
    fig, ax = plt.subplots()
    display = AdamHistoryDisplay.from_estimator(est, ax=ax)
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
