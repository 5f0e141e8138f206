"""What users do with the estimator inside ordinary scikit-learn workflows."""

import pickle

import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone, is_regressor
from sklearn.datasets import load_diabetes
from sklearn.ensemble import StackingRegressor
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_adam import AdamRegressor

GRID = {
    "adamregressor__alpha": [0.03, 0.1, 0.3],
    "adamregressor__beta1": [0.8, 0.9],
    "adamregressor__beta2": [0.99, 0.999],
}


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search_over_alpha_beta1_beta2(diabetes, n_jobs):
    X, y = diabetes
    cv = KFold(5, shuffle=True, random_state=0)
    pipe = make_pipeline(StandardScaler(), AdamRegressor())
    search = GridSearchCV(pipe, GRID, cv=cv, n_jobs=n_jobs).fit(X, y)
    assert len(search.cv_results_["params"]) * cv.get_n_splits() == 60
    ols = cross_val_score(LinearRegression(), X, y, cv=cv).mean()
    assert abs(search.best_score_ - ols) < 0.005
    assert search.best_estimator_[-1].n_iter_ >= 1


def test_cross_val_score_matches_linear_regression(diabetes):
    X, y = diabetes
    cv = KFold(5, shuffle=True, random_state=1)
    adam = cross_val_score(AdamRegressor(), X, y, cv=cv)
    ols = cross_val_score(LinearRegression(), X, y, cv=cv)
    assert_allclose(adam, ols, atol=1e-6)


def test_clone_and_pickle_round_trip(diabetes):
    X, y = diabetes
    est = AdamRegressor(alpha=0.05, beta1=0.85).fit(X, y)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "coef_")
    restored = pickle.loads(pickle.dumps(est))
    assert_array_equal(restored.predict(X), est.predict(X))
    assert_array_equal(restored.loss_curve_, est.loss_curve_)
    assert restored.n_iter_ == est.n_iter_


def test_is_a_regressor_for_meta_estimators(diabetes):
    X, y = diabetes
    assert is_regressor(AdamRegressor())
    assert is_regressor(make_pipeline(StandardScaler(), AdamRegressor()))
    stack = StackingRegressor(
        [("adam", AdamRegressor()), ("ridge", Ridge())], final_estimator=Ridge()
    )
    assert stack.fit(X, y).score(X, y) > 0.5


def test_pandas_dataframe_keeps_feature_names(diabetes):
    data = load_diabetes(as_frame=True)
    X, y = data.data, data.target
    est = AdamRegressor().fit(X, y)
    assert_array_equal(est.feature_names_in_, X.columns)
    plain = AdamRegressor().fit(X.to_numpy(), y)
    assert_allclose(est.predict(X), plain.predict(X.to_numpy()))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        est.predict(X.to_numpy())
    # a multi-output DataFrame target
    Y = pd.DataFrame({"a": y, "b": 2 * y})
    assert AdamRegressor().fit(X, Y).coef_.shape == (2, X.shape[1])
