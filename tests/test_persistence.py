"""Saving fitted models: pickle, skops, and models from other versions."""

import pickle
import warnings

import numpy as np
import pytest
import skops.io as sio
from numpy.testing import assert_array_equal
from sklearn.datasets import load_diabetes

from sk_adam import AdamRegressor, __version__


@pytest.fixture(scope="module")
def data():
    return load_diabetes(return_X_y=True)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"batch_size": 32, "random_state": 0},
        {"standardize": False},
        {"whiten": True},  # the whitening arrays travel too
    ],
)
def test_skops_round_trip_trusts_only_the_estimator(data, params):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = AdamRegressor(**params).fit(X, y)
    blob = sio.dumps(est)
    assert sio.get_untrusted_types(data=blob) == ["sk_adam._regressor.AdamRegressor"]
    loaded = sio.loads(blob, trusted=["sk_adam._regressor.AdamRegressor"])
    assert_array_equal(loaded.predict(X), est.predict(X))
    # the optimiser state travels: both continue identically
    for model in (est, loaded):
        model.set_params(batch_size=64, random_state=1)
    est.partial_fit(X, y)
    loaded.partial_fit(X, y)
    assert_array_equal(loaded.coef_, est.coef_)


def test_skops_with_history_names_the_history_type(data):
    # history_ is an AdamHistory, the one other type of the package
    X, y = data
    est = AdamRegressor(record_history=True).fit(X, y)
    blob = sio.dumps(est)
    trusted = ["sk_adam._history.AdamHistory", "sk_adam._regressor.AdamRegressor"]
    assert sio.get_untrusted_types(data=blob) == trusted
    loaded = sio.loads(blob, trusted=trusted)
    assert_array_equal(loaded.history_.coef, est.history_.coef)


def test_pickle_records_the_version(data):
    X, y = data
    est = AdamRegressor().fit(X, y)
    state = est.__getstate__()
    assert state["_sk_adam_version"] == __version__
    restored = pickle.loads(pickle.dumps(est))
    assert_array_equal(restored.predict(X), est.predict(X))
    # saving leaves the estimator itself as it was
    assert "_sk_adam_version" not in vars(est)


def test_a_streamed_model_pickles_its_curve_not_the_spare_room(data):
    X, y = data
    est = AdamRegressor(batch_size=32, random_state=0)
    for start in range(0, 400, 40):
        est.partial_fit(X[start : start + 40], y[start : start + 40])
    restored = pickle.loads(pickle.dumps(est))
    assert "_curve_buffer" in vars(est) and "_curve_buffer" not in vars(restored)
    assert_array_equal(restored.loss_curve_, est.loss_curve_)
    restored.partial_fit(X[:40], y[:40])
    est.partial_fit(X[:40], y[:40])
    assert_array_equal(restored.loss_curve_, est.loss_curve_)


def _from_version(est, version):
    state = est.__getstate__()
    state["_sk_adam_version"] = version
    clone = AdamRegressor.__new__(AdamRegressor)
    clone.__setstate__(state)
    return clone


def test_other_minor_version_loads_with_a_warning(data):
    X, y = data
    est = AdamRegressor().fit(X, y)
    major = __version__.split(".")[0]
    with pytest.warns(UserWarning, match=r"saved by sk-adam .* refit it before"):
        old = _from_version(est, f"{major}.99.0")
    assert np.allclose(old.predict(X), est.predict(X))


def test_other_major_version_fails_clearly(data):
    X, y = data
    est = AdamRegressor().fit(X, y)
    with pytest.raises(ValueError, match=r"saved by sk-adam 99\.0\.0.*Refit it"):
        _from_version(est, "99.0.0")
