"""The Gram (precompute=True) and direct (precompute=False) paths.

They must give the same iterates: to 1e-10 relative over the first 100
iterations in float64; in float32 the direct path multiplies in float32 while
the statistics accumulate in float64, so there the stated tolerance is 1e-4.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from sk_adam import AdamRegressor
from sk_adam._datafit import GramLeastSquares, least_squares_problem
from sk_adam._statistics import column_stats, gram_stats


def _data(seed=0, n=120, d=5, n_targets=None, density=1.0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) * rng.uniform(0.5, 3, d) + rng.uniform(-3, 3, d)
    X *= rng.rand(n, d) < density
    shape = (d,) if n_targets is None else (d, n_targets)
    noise = rng.randn(n) if n_targets is None else rng.randn(n, n_targets)
    return X, X @ rng.uniform(-2, 2, shape) + 1.0 + 0.3 * noise


def _containers(X):
    yield "C64", np.ascontiguousarray(X)
    yield "F64", np.asfortranarray(X)
    yield "C32", X.astype(np.float32)
    yield "F32", np.asfortranarray(X, dtype=np.float32)
    yield "csr", sp.csr_array(X)
    yield "csc", sp.csc_matrix(X)
    yield "csr32", sp.csr_array(X.astype(np.float32))


def _run(X, y, precompute, sw=None, max_iter=100, **params):
    # the article's per-feature Adam on both paths (the products cannot whiten)
    est = AdamRegressor(
        precompute=precompute,
        max_iter=max_iter,
        n_iter_no_change=None,
        whiten=False,
        **params,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, sample_weight=sw)


KINDS = [name for name, _ in _containers(np.zeros((2, 2)))]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_paths_give_the_same_iterates(kind, fit_intercept, standardize, weighted):
    X, y = _data(density=0.6 if kind.startswith("cs") else 1.0)
    X = dict(_containers(X))[kind]
    sw = np.random.RandomState(1).uniform(0, 2, len(y)) if weighted else None
    alpha = 0.05 if standardize else 0.02
    params = dict(fit_intercept=fit_intercept, standardize=standardize, alpha=alpha)
    gram = _run(X, y, True, sw, **params)
    direct = _run(X, y, False, sw, **params)
    assert gram.precomputed_ and not direct.precomputed_
    rtol = 1e-4 if "32" in kind else 1e-10
    assert_allclose(gram.loss_curve_, direct.loss_curve_, rtol=rtol)
    assert gram.best_iter_ == direct.best_iter_
    assert_allclose(gram.coef_, direct.coef_, rtol=rtol, atol=rtol * 1e-3)
    assert_allclose(gram.intercept_, direct.intercept_, rtol=rtol, atol=rtol * 1e-3)
    assert gram.coef_.dtype == direct.coef_.dtype == X.dtype


def test_paths_multi_output():
    X, Y = _data(n_targets=3)
    gram = _run(X, Y, True)
    direct = _run(X, Y, False)
    assert_allclose(gram.loss_curve_, direct.loss_curve_, rtol=1e-10)
    assert_allclose(gram.coef_, direct.coef_, rtol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_paths_reach_the_same_solution(kind):
    X, y = _data(seed=2, density=0.6 if kind.startswith("cs") else 1.0)
    X = dict(_containers(X))[kind]
    gram = AdamRegressor(precompute=True).fit(X, y)
    direct = AdamRegressor(precompute=False).fit(X, y)
    rtol = 1e-4 if "32" in kind else 1e-8
    assert_allclose(gram.coef_, direct.coef_, rtol=rtol)
    assert abs(gram.score(X, y) - direct.score(X, y)) < rtol


def _exact_centered_gram(X, s):
    X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    # exact reference: mean by math.fsum, centred values formed explicitly
    mu = np.array([np.sum(s * X[:, j]) for j in range(X.shape[1])])
    Z = X - mu
    sigma = np.sqrt(s @ Z**2)
    Zs = Z / sigma
    return Zs.T @ (s[:, None] * Zs), sigma


@pytest.mark.parametrize("container", [np.asarray, np.asfortranarray, sp.csr_array])
def test_centering_is_exact_for_years_and_large_offsets(container):
    # columns like years (1947..1962) and offsets of 1e6 with unit spread:
    # the formula X'X - n mu mu' would lose 12 of 16 digits here
    rng = np.random.RandomState(0)
    n = 16
    years = np.arange(1947.0, 1947.0 + n)
    X = np.c_[years, 1e6 + rng.randn(n), 1e8 + 10 * rng.randn(n), rng.randn(n)]
    y = rng.randn(n)
    s = np.full(n, 1.0 / n)
    problem, _ = least_squares_problem(
        container(X),
        y[:, None],
        s,
        fit_intercept=True,
        standardize=True,
        precompute=True,
    )
    assert isinstance(problem, GramLeastSquares)
    G, sigma = _exact_centered_gram(X, s)
    assert_allclose(problem.gram, G, rtol=1e-10, atol=1e-12)
    assert_allclose(problem.coords.x_scale, sigma, rtol=1e-10)
    _, scale, _ = column_stats(container(X), s, center=True)
    assert_allclose(scale, sigma, rtol=1e-10)


@pytest.mark.parametrize(
    "shape, sparse, expected",
    [
        ((1000, 10), False, True),  # tall: statistics
        ((100, 50), False, True),  # n >= d: statistics
        ((40, 50), False, True),  # n < d: statistics too (whitened, minimum norm)
        ((20000, 3000), False, False),  # too many features for a Gram matrix
        ((20000, 1000), True, False),  # sparse, d^2 > 2 nnz
        ((5000, 10), True, True),  # sparse, small d
    ],
)
def test_auto_choice(shape, sparse, expected):
    d = shape[1]
    if sparse:
        X = sp.random_array(
            shape, density=10 / d if d > 10 else 0.5, random_state=0, format="csr"
        )
        assert (d * d <= 2 * X.nnz) == expected
    else:
        X = np.lib.stride_tricks.as_strided(np.zeros(1), shape, (0, 0))
    from sk_adam._datafit import use_gram

    assert use_gram(X, "auto") is expected
    assert use_gram(X, True) is True and use_gram(X, False) is False


@pytest.mark.parametrize("weighted", [False, True])
def test_blockwise_statistics_are_exact_across_blocks(weighted):
    # 30,000 x 50: six row blocks, each shifted by the means of those before
    # it, which must not lose digits where the means move: a trend, a
    # column zero in the first blocks, offsets of 1e8 with unit spread
    rng = np.random.RandomState(0)
    n, d = 30_000, 50
    X = rng.randn(n, d)
    X[:, 0] = np.arange(n) * 1e3 + rng.randn(n)  # a trend across blocks
    X[: n // 2, 1] = 0.0  # constant so far, then varying
    X[:, 2] += 1e8  # offset of 1e8 spreads
    y = X[:, 3] + rng.randn(n)
    s = rng.uniform(0.5, 2, n) if weighted else np.ones(n)
    s = s / s.sum()
    stats = gram_stats(X, y[:, None], s)
    # the oracle: two passes in extended precision
    wide = X.astype(np.longdouble)
    mean = (s[:, None] * wide).sum(axis=0)
    centred = wide - mean
    exact = centred.T @ (s[:, None] * centred)
    scale = np.sqrt(np.diag(exact))
    error = np.abs(np.asarray((stats.xx / stats.weight - exact), dtype=np.float64))
    error /= np.outer(scale, scale).astype(np.float64)
    # the products with the offset column: float64 means of values near
    # 1e8 with a unit spread are exact only to 1.5e-8 of it (the oracle's
    # mean is extended; the blockwise pass before the shifted blocks left
    # 2.8e-8 here); every other product to 1e-12
    assert np.max(error[2]) < 1e-8
    error[2, :] = error[:, 2] = 0.0
    assert np.max(error) < 1e-12
    # means to 1e-14 of themselves, or 1e-15 of a unit spread
    expected = np.asarray(mean, dtype=np.float64)
    assert_allclose(stats.mean, expected, rtol=1e-14, atol=1e-15)
