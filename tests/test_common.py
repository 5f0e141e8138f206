"""scikit-learn's estimator checks, with no expected failure."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_adam import AdamRegressor


@parametrize_with_checks([AdamRegressor()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
