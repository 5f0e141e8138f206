"""record_history: Adam's state per iteration, in documented shapes."""

import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from oracle import seed_adam
from sklearn.exceptions import ConvergenceWarning

from sk_adam import AdamHistory, AdamRegressor


def _data(seed=0, n=200, d=4):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    return X, X @ rng.uniform(-2, 2, d) + 0.3 * rng.randn(n)


def test_history_is_off_by_default():
    X, y = _data()
    assert AdamRegressor().fit(X, y).history_ is None


def test_history_matches_the_seed_loop():
    X, y = _data()
    n_iter = 30
    est = AdamRegressor(
        alpha=0.01,
        max_iter=n_iter,
        n_iter_no_change=None,
        fit_intercept=False,
        standardize=False,
        record_history=True,
    )
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    h = est.history_
    assert isinstance(h, AdamHistory) and h.n_iter == est.n_iter_ == n_iter
    assert h.moment1hat.shape == h.moment2hat.shape == h.step.shape == (n_iter, 4)
    assert h.coef.shape == (n_iter, 4) and h.intercept.shape == (n_iter,)
    iterates, _ = seed_adam(X, y, 0.01, 0.9, 0.999, 1e-8, n_iter)
    assert_allclose(h.coef, iterates[1:], rtol=1e-9)
    # each recorded step is the change of the coefficients it made
    assert_allclose(h.step, iterates[:-1] - iterates[1:], rtol=1e-7, atol=1e-15)
    # at t = 1 the corrected moments are the gradient and its square
    assert_allclose(h.moment2hat[0], h.moment1hat[0] ** 2, rtol=1e-12)
    assert_allclose(np.abs(h.step[0]), 0.01, rtol=1e-6)


def test_history_shapes_multi_output_and_intercept():
    X, y = _data()
    Y = np.c_[y, -y, 2 * y]
    est = AdamRegressor(standardize=False, record_history=True, max_iter=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, Y)
    h = est.history_
    n = est.n_iter_
    # the intercept is the last working parameter when not standardized
    assert h.step.shape == (n, 5, 3)
    assert h.coef.shape == (n, 3, 4) and h.intercept.shape == (n, 3)


def test_history_for_mini_batches_and_partial_fit():
    X, y = _data(n=300)
    est = AdamRegressor(
        batch_size=50,
        max_iter=7,
        n_iter_no_change=None,
        record_history=True,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est.history_.n_iter == 7
    assert_allclose(est.history_.coef[-1], est.coef_, rtol=1e-6)
    est.partial_fit(X, y)
    est.partial_fit(X, y)
    assert est.history_.n_iter == est.n_iter_
    assert_allclose(est.history_.coef[-1], est.coef_, rtol=1e-12)


def test_a_long_stream_keeps_every_row_without_recopying_them():
    # each partial_fit adds a row; earlier rows are shared, not copied, so
    # the history of a stream costs O(log n) pieces, and reads give the rows
    # exactly as each call saw them
    X, y = _data(n=60)
    est = AdamRegressor(batch_size=20, record_history=True, random_state=0)
    coefs, steps, pieces = [], [], []
    for start in range(0, 600, 20):  # 30 chunks, rows reused
        rows = slice(start % 60, start % 60 + 20)
        est.partial_fit(X[rows], y[rows])
        coefs.append(est.coef_.copy())
        steps.append(est.history_._pieces[-1][2][-1].copy())  # before any read
        pieces.append(len(est.history_._pieces))
    assert max(pieces) <= int(np.log2(30)) + 1
    h = est.history_
    assert h.n_iter == est.n_iter_ == 30
    assert_array_equal(h.coef, coefs)
    assert_array_equal(h.step, steps)
    assert len(h._pieces) == 1  # joined by the read, and kept
    assert_array_equal(pickle.loads(pickle.dumps(h)).coef, coefs)
    # a history read earlier is not changed by the calls after it
    early = est.history_
    est.partial_fit(X[:20], y[:20])
    assert early.n_iter == 30 and est.history_.n_iter == 31
    assert_array_equal(est.history_.coef[:30], coefs)
