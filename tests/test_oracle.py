"""Iterates of AdamRegressor against the seed article's loop.

With ``fit_intercept=False, standardize=False`` the estimator must reproduce
the article's loop (gradient as a weighted mean), which is also what
``torch.optim.Adam`` computes on that objective. Tolerance: 1e-9 relative.

Adam divides each gradient coordinate by its own running magnitude, so once a
coordinate's gradient is at round-off level (near the optimum, or where it
changes sign under short moment memory) a one-ulp difference changes the step
by a fraction of ``alpha`` and two correct implementations drift apart. The
horizons below (``N_ITER``) keep the runs in the descending regime, where the
comparison at 1e-9 is meaningful.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from oracle import seed_adam, weighted_standardize
from sklearn.exceptions import ConvergenceWarning

from sk_adam import AdamRegressor

RTOL = 1e-9
N_ITER = 100


def _problem(seed=0, n=60, d=4):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) * [1.0, 3.0, 0.3, 2.0][:d] + [0.5, -1.0, 2.0, 0.0][:d]
    y = X @ rng.randn(d) + 0.5 + 0.3 * rng.randn(n)
    return X, y


def _fit(X, y, n_iter, sample_weight=None, **params):
    est = AdamRegressor(max_iter=n_iter, n_iter_no_change=None, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, sample_weight=sample_weight)


@pytest.mark.parametrize("alpha", [0.001, 0.05, 0.5])
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.8, 0.99), (0.0, 0.0)])
@pytest.mark.parametrize("weighted", [False, True])
def test_iterates_equal_seed_loop(alpha, betas, weighted):
    X, y = _problem()
    sw = np.random.RandomState(1).randint(0, 4, len(y)) if weighted else None
    n_iter = N_ITER
    iterates, mses = seed_adam(X, y, alpha, *betas, 1e-8, n_iter, sw)
    est = AdamRegressor(
        alpha=alpha,
        beta1=betas[0],
        beta2=betas[1],
        max_iter=n_iter,
        n_iter_no_change=None,
        fit_intercept=False,
        standardize=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y, sample_weight=sw)
    # every iterate's MSE, then the kept iterate itself
    assert_allclose(est.loss_curve_, mses[1:], rtol=RTOL)
    assert est.best_iter_ == np.argmin(mses)
    assert_allclose(est.coef_, iterates[est.best_iter_], rtol=RTOL)


@pytest.mark.parametrize("k", [1, 2, 3, 10, 50])
def test_kth_iterate(k):
    # small alpha: the MSE falls monotonically, so the k-th iterate is kept
    X, y = _problem(seed=3)
    iterates, mses = seed_adam(X, y, 0.01, 0.9, 0.999, 1e-8, k)
    assert np.all(np.diff(mses) < 0)
    est = AdamRegressor(
        alpha=0.01,
        max_iter=k,
        n_iter_no_change=None,
        fit_intercept=False,
        standardize=False,
    )
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        est.fit(X, y)
    assert est.n_iter_ == k
    assert_allclose(est.coef_, iterates[k], rtol=RTOL)


@pytest.mark.parametrize("container", [sp.csr_array, sp.csc_matrix])
def test_sparse_iterates_equal_seed_loop(container):
    rng = np.random.RandomState(2)
    X = rng.randn(80, 6) * (rng.rand(80, 6) < 0.3)
    y = X @ rng.randn(6) + 0.1 * rng.randn(80)
    iterates, mses = seed_adam(X, y, 0.05, 0.9, 0.999, 1e-8, N_ITER)
    est = AdamRegressor(
        alpha=0.05,
        max_iter=N_ITER,
        n_iter_no_change=None,
        fit_intercept=False,
        standardize=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(container(X), y)
    assert_allclose(est.loss_curve_, mses[1:], rtol=RTOL)
    assert_allclose(est.coef_, iterates[est.best_iter_], rtol=RTOL)


def test_intercept_is_one_more_adam_parameter_when_not_standardized():
    # fit_intercept=True, standardize=False: Adam on [X, 1] as given
    X, y = _problem(seed=4)
    X1 = np.c_[X, np.ones(len(y))]
    iterates, mses = seed_adam(X1, y, 0.05, 0.9, 0.999, 1e-8, N_ITER)
    est = _fit(X, y, N_ITER, alpha=0.05, standardize=False)
    assert_allclose(est.loss_curve_, mses[1:], rtol=RTOL)
    kept = iterates[est.best_iter_]
    assert_allclose(est.coef_, kept[:-1], rtol=RTOL)
    assert_allclose(est.intercept_, kept[-1], rtol=RTOL)


@pytest.mark.parametrize("weighted", [False, True])
def test_standardized_mode_runs_adam_on_standardized_data(weighted):
    X, y = _problem(seed=5)
    rng = np.random.RandomState(0)
    s = rng.uniform(0.5, 2, len(y)) if weighted else np.ones(len(y))
    Xs, ys, mu, sigma, mu_y, sigma_y = weighted_standardize(X, y, s)
    iterates, mses = seed_adam(Xs, ys, 0.05, 0.9, 0.999, 1e-8, N_ITER, s)
    est = _fit(X, y, N_ITER, alpha=0.05, sample_weight=s, whiten=False)
    # the MSE is reported in the original units of y
    assert_allclose(est.loss_curve_, sigma_y**2 * mses[1:], rtol=RTOL)
    w = iterates[est.best_iter_]
    assert_allclose(est.coef_, sigma_y * w / sigma, rtol=RTOL)
    assert_allclose(est.intercept_, mu_y - mu @ (sigma_y * w / sigma), rtol=RTOL)


def test_multi_output_is_one_problem_per_target():
    X, y = _problem(seed=6)
    Y = np.c_[y, -2 * y + X[:, 0], np.sin(X[:, 1])]
    est = _fit(X, Y, N_ITER, alpha=0.02, fit_intercept=False, standardize=False)
    assert est.coef_.shape == (3, X.shape[1])
    per_target = [
        seed_adam(X, Y[:, k], 0.02, 0.9, 0.999, 1e-8, N_ITER) for k in range(3)
    ]
    mean_mse = np.mean([m for _, m in per_target], axis=0)
    assert_allclose(est.loss_curve_, mean_mse[1:], rtol=RTOL)
    for k, (iterates, _) in enumerate(per_target):
        assert_allclose(est.coef_[k], iterates[est.best_iter_], rtol=RTOL)
