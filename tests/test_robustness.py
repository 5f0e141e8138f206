"""Interruption and concurrency: never half-updated, safe to share."""

import pickle
import threading
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import load_diabetes
from sklearn.model_selection import GridSearchCV

from sk_adam import AdamRegressor, _adam, _epochs, _kernel


def _interrupt_after(monkeypatch, steps):
    """Ctrl-C after ``steps`` Adam steps of the numpy implementation."""
    monkeypatch.setenv("SK_ADAM_NO_NUMBA", "1")
    original = _adam.Adam.step
    count = {"n": 0}

    def step(self, params, grad, rate):
        count["n"] += 1
        if count["n"] > steps:
            raise KeyboardInterrupt
        original(self, params, grad, rate)

    monkeypatch.setattr(_adam.Adam, "step", step)


def _interrupt_compiled(monkeypatch):
    """Ctrl-C when the compiled epoch returns, which is when Python sees a
    signal that arrived during it; the epoch has already moved the working
    parameters and moments in place."""
    kernel = _kernel.compiled_epoch()
    assert kernel is not None, "numba (the test extra) is needed here"

    def interrupted(*args):
        kernel(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(_epochs, "compiled_epoch", lambda: interrupted)


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_interrupted_fit_leaves_a_fitted_estimator_as_it_was(
    monkeypatch, method, engine
):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    est = AdamRegressor(batch_size=32, random_state=0).fit(X, y)
    before = pickle.dumps(est)
    if engine == "numpy":
        _interrupt_after(monkeypatch, 5)
    else:
        _interrupt_compiled(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        if method == "fit":
            # other data with other feature names: nothing of it may stick
            est.fit(X.iloc[:, :4].rename(columns=str.upper), y)
        else:
            est.partial_fit(X.iloc[:200], y.iloc[:200])
    assert pickle.dumps(est) == before
    assert list(est.feature_names_in_) == list(X.columns)


def test_interrupted_first_fit_leaves_it_unfitted(monkeypatch):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    est = AdamRegressor()
    _interrupt_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, y)
    assert not hasattr(est, "coef_") and not hasattr(est, "n_features_in_")
    assert not hasattr(est, "feature_names_in_")


def test_predict_from_many_threads():
    X, y = load_diabetes(return_X_y=True)
    est = AdamRegressor().fit(X, y)
    expected = est.predict(X)
    barrier = threading.Barrier(8)

    def work(_):
        barrier.wait()
        return [est.predict(X) for _ in range(20)]

    with ThreadPoolExecutor(8) as pool:
        for results in pool.map(work, range(8)):
            for result in results:
                assert_array_equal(result, expected)


def test_grid_search_on_the_threading_backend():
    X, y = load_diabetes(return_X_y=True)
    grid = {"alpha": [0.03, 0.3], "beta1": [0.8, 0.9]}
    serial = GridSearchCV(AdamRegressor(), grid, cv=3).fit(X, y)
    with joblib.parallel_backend("threading", n_jobs=4):
        threaded = GridSearchCV(AdamRegressor(), grid, cv=3, n_jobs=4).fit(X, y)
    assert threaded.best_params_ == serial.best_params_
    assert_array_equal(
        threaded.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )


def test_dataframe_feature_names_survive_pickling():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    est = pickle.loads(pickle.dumps(AdamRegressor().fit(X, y)))
    assert isinstance(X, pd.DataFrame)
    assert list(est.feature_names_in_) == list(X.columns)
    assert np.all(np.isfinite(est.predict(X)))
