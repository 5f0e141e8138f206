"""Mini-batch Adam, partial_fit and validation early stopping."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from engines import use_engine
from numpy.testing import assert_allclose, assert_array_equal
from oracle import epoch_orders, seed_adam_batches
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression

from sk_adam import AdamRegressor

RAW = dict(fit_intercept=False, standardize=False)


@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def engine(request, monkeypatch):
    """Every test here runs on both implementations of the mini-batch epoch:
    the compiled one (numba, installed with the test extra) and numpy."""
    return use_engine(monkeypatch, request.param)


def _data(seed=0, n=1000, d=5, noise=0.5, offset=0.0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) + offset
    return X, X @ rng.uniform(-2, 2, d) + noise * rng.randn(n)


def _quiet_fit(est, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kwargs)


@pytest.mark.parametrize("n, batch", [(100, 32), (96, 32), (50, 49)])
def test_unshuffled_epochs_equal_the_seed_loop_on_batches(n, batch):
    X, y = _data(n=n)
    epochs = 3
    batches = [np.arange(i, min(i + batch, n)) for i in range(0, n, batch)] * epochs
    w, losses = seed_adam_batches(X, y, batches, alpha=0.05)
    est = AdamRegressor(
        alpha=0.05,
        batch_size=batch,
        shuffle=False,
        max_iter=epochs,
        n_iter_no_change=None,
        **RAW,
    )
    _quiet_fit(est, X, y)
    # the final iterate is the kept one when the loss keeps falling
    assert np.all(np.diff(est.loss_curve_) < 0)
    assert_allclose(est.coef_, w, rtol=1e-12)
    assert est.t_ == len(batches)
    # loss_curve_: the weighted running mean of the batch losses of an epoch
    per_epoch = len(batches) // epochs
    sizes = np.array([len(b) for b in batches[:per_epoch]])
    expected = [
        np.sum(sizes * losses[e * per_epoch : (e + 1) * per_epoch]) / n
        for e in range(epochs)
    ]
    assert_allclose(est.loss_curve_, expected, rtol=1e-12)


def _permutations(n, seed, epochs):
    rng = np.random.RandomState(seed)
    return [rng.permutation(n) for _ in range(epochs)]


@pytest.mark.parametrize(
    "n, batch, orders",
    [
        (64, 16, _permutations),
        # from 4,096 rows on: the keyed hash permutation (sk_adam._order),
        # transcribed independently in the oracle
        (4500, 1000, epoch_orders),
    ],
)
def test_shuffled_epochs_follow_the_documented_orders(n, batch, orders):
    X, y = _data(n=n)
    est = AdamRegressor(
        alpha=0.05,
        batch_size=batch,
        random_state=3,
        max_iter=2,
        n_iter_no_change=None,
        **RAW,
    )
    _quiet_fit(est, X, y)
    batches = []
    for order in orders(n, seed=3, epochs=2):
        order = np.asarray(order)
        batches += [order[i : i + batch] for i in range(0, n, batch)]
    w, _ = seed_adam_batches(X, y, batches, alpha=0.05)
    assert_allclose(est.coef_, w, rtol=1e-12)


@pytest.mark.parametrize("n", [1000, 5000])  # permutation / hashed order
def test_same_random_state_is_bitwise_identical(n):
    X, y = _data(n=n)
    params = dict(batch_size=64, max_iter=20, random_state=7, early_stopping=True)
    a = _quiet_fit(AdamRegressor(**params), X, y)
    b = _quiet_fit(AdamRegressor(**params), X, y)
    assert_array_equal(a.coef_, b.coef_)
    assert_array_equal(a.loss_curve_, b.loss_curve_)
    assert_array_equal(a.validation_scores_, b.validation_scores_)
    c = _quiet_fit(AdamRegressor(**{**params, "random_state": 8}), X, y)
    assert not np.array_equal(a.coef_, c.coef_)


def _large(n, d):
    """A tall problem with offsets and scales, and LinearRegression's R^2."""
    rng = np.random.RandomState(0)
    X = rng.randn(n, d) * rng.uniform(0.5, 3, d) + rng.uniform(-10, 10, d)
    y = X @ rng.randn(d) + rng.randn(n)
    return X, y, LinearRegression().fit(X, y).score(X, y)


def test_minibatch_reaches_linear_regression_on_a_large_problem():
    # the acceptance case: 200,000 x 50, batches of 256
    X, y, ols = _large(200_000, 50)
    est = _quiet_fit(
        AdamRegressor(batch_size=256, alpha=1e-3, max_iter=5, random_state=0), X, y
    )
    assert abs(ols - est.score(X, y)) < 1e-3


def test_minibatch_defaults_decay_to_linear_regression():
    # the stall window is 5 epochs with mini-batches, and each stall on a
    # moving MSE divides the learning rate by 10: a schedule from 0.1 down
    X, y, ols = _large(50_000, 20)
    est = AdamRegressor(batch_size=256, random_state=0).fit(X, y)
    assert est.stop_reason_ == "stall" and est.alpha_decays_ == 3
    assert est.n_iter_ < 100
    assert abs(ols - est.score(X, y)) < 1e-4
    fixed = AdamRegressor(batch_size=256, random_state=0, stall_decays=0).fit(X, y)
    assert ols - fixed.score(X, y) > 10 * abs(ols - est.score(X, y))


@pytest.mark.parametrize("container", [sp.csr_array, sp.csc_matrix])
def test_minibatch_sparse_matches_dense(container):
    X, y = _data(offset=2.0)
    X[X < 1.5] = 0.0
    params = dict(batch_size=100, max_iter=30, random_state=0, alpha=0.01)
    dense = _quiet_fit(AdamRegressor(**params), X, y)
    sparse = _quiet_fit(AdamRegressor(**params), container(X), y)
    assert_allclose(sparse.coef_, dense.coef_, rtol=1e-10)


def test_minibatch_float32_and_weights():
    X, y = _data()
    sw = np.random.RandomState(0).randint(0, 3, len(y)).astype(float)
    est = _quiet_fit(
        AdamRegressor(batch_size=50, max_iter=50, alpha=0.01, random_state=0),
        X.astype(np.float32),
        y,
        sample_weight=sw,
    )
    assert est.coef_.dtype == np.float32
    ols = LinearRegression().fit(X, y, sample_weight=sw)
    assert_allclose(est.coef_, ols.coef_, rtol=0.05, atol=0.05)


def test_minibatch_tol_rule():
    X, y = _data(noise=0.0)
    est = AdamRegressor(batch_size=100, alpha=0.01, tol=1e-4, random_state=0)
    est.fit(X, y)
    assert est.stop_reason_ == "tol"
    assert est.loss_curve_[-1] < 1e-4 <= est.loss_curve_[:-1].min()


# -- partial_fit ---------------------------------------------------------


@pytest.mark.parametrize("average", [False, True])
@pytest.mark.parametrize("alpha", [0.05, "auto"])
def test_partial_fit_continues_the_optimiser_exactly(average, alpha):
    X, y = _data(n=120)
    chunks = [slice(0, 40), slice(40, 80), slice(80, 120)]
    est = AdamRegressor(
        alpha=alpha, batch_size=20, shuffle=False, average=average, **RAW
    )
    for c in chunks:
        est.partial_fit(X[c], y[c])
    batches = [np.arange(i, i + 20) for i in range(0, 120, 20)]
    # "auto": 0.1 / sqrt(1 + (t - 1) / 10) at step t
    rates = dict(alpha=0.05) if alpha == 0.05 else dict(alpha=0.1, decay=10.0)
    w, losses = seed_adam_batches(X, y, batches, **rates)
    if average:
        # the seed loop's iterate after each step, averaged with weights
        # (gamma + 1) / (k + gamma), gamma = 3: c_1 = 1, c_2 = 4/5, ...
        iterates = [seed_adam_batches(X, y, batches[:k], **rates)[0]
                    for k in range(1, 7)]  # fmt: skip
        w = iterates[0]
        for k, iterate in enumerate(iterates[1:], start=2):
            w = w + 4.0 / (k + 3.0) * (iterate - w)
        assert not np.allclose(w, iterates[-1], rtol=1e-3)
    assert_allclose(est.coef_, w, rtol=1e-12)
    assert est.t_ == 6 and est.n_iter_ == 3 and len(est.loss_curve_) == 3
    assert est.moment1_.shape == est.moment2_.shape == (5, 1)
    assert_allclose(est.loss_curve_, losses.reshape(3, 2).mean(axis=1), rtol=1e-12)


def test_partial_fit_state_pickles_and_travels():
    X, y = _data(n=90)
    a = AdamRegressor(batch_size=15, shuffle=False, alpha=0.02)
    a.partial_fit(X[:30], y[:30])
    b = pickle.loads(pickle.dumps(a))
    for name in ("coef_", "moment1_", "moment2_", "t_"):
        assert_array_equal(getattr(b, name), getattr(a, name))  # the state
    for est in (a, b):
        est.partial_fit(X[30:60], y[30:60])
        est.partial_fit(X[60:], y[60:])
    # the same steps from the same state, to round-off (see
    # test_streams.py::test_a_stream_continues_its_average_exactly_across_
    # pickles: a last-bit difference was seen once in a full run)
    assert_allclose(a.coef_, b.coef_, rtol=1e-13)
    assert_allclose(a.moment2_, b.moment2_, rtol=1e-12)


def test_loss_curve_of_a_stream_grows_without_changing_earlier_arrays():
    # loss_curve_ grows in spare room (amortized O(1) per call); an array
    # handed out earlier keeps its values, and an estimator sharing this
    # one's attributes (its __dict__ copied, as a snapshot does) that goes
    # on by itself does not write into this one's curve
    X, y = _data(n=90)
    # unshuffled: the twin below shares (and would advance) the random stream
    est = AdamRegressor(batch_size=16, shuffle=False)
    seen, values = [], []
    for start in range(0, 900, 30):
        rows = slice(start % 90, start % 90 + 30)
        est.partial_fit(X[rows], y[rows])
        seen.append(est.loss_curve_)
        values.append(est.loss_curve_.copy())
    for array, copied in zip(seen, values, strict=True):
        assert_array_equal(array, copied)
    assert_array_equal(est.loss_curve_, values[-1])
    assert est.n_iter_ == len(est.loss_curve_) == 30
    twin = AdamRegressor.__new__(AdamRegressor)
    twin.__dict__.update(vars(est))
    twin.partial_fit(X[:30] * 2.0, y[:30])
    est.partial_fit(X[:30], y[:30])
    alone = pickle.loads(pickle.dumps(seen[-1]))  # the curve so far, detached
    replay = AdamRegressor(batch_size=16, shuffle=False)
    for start in range(0, 900, 30):
        rows = slice(start % 90, start % 90 + 30)
        replay.partial_fit(X[rows], y[rows])
    replay.partial_fit(X[:30], y[:30])
    assert_array_equal(est.loss_curve_, replay.loss_curve_)
    assert_array_equal(est.loss_curve_[:30], alone)
    assert twin.loss_curve_[-1] != est.loss_curve_[-1]


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("standardize", [True, False])
def test_a_column_constant_in_the_first_chunk_is_learned_later(sparse, standardize):
    # a stream has not seen every row: a feature absent from the first chunk
    # (all zeros, as a rare sparse feature is) must still get its coefficient,
    # while a column that stays constant keeps exactly zero (standardize=False
    # knows no constant columns: there it shares the intercept's part)
    rng = np.random.RandomState(0)
    X = rng.randn(4000, 4)
    X[:1000, 0] = 0.0
    X[:, 3] = 0.1  # its mean is not 0.1 to the last bit
    y = 3.0 * X[:, 0] + X[:, 1] + 2.0
    est = AdamRegressor(
        batch_size=50, alpha=0.01, standardize=standardize, random_state=0
    )
    for _ in range(20):
        for start in range(0, 4000, 1000):
            Xc = X[start : start + 1000]
            est.partial_fit(sp.csr_array(Xc) if sparse else Xc, y[start : start + 1000])
    assert_allclose(est.coef_[:3], [3.0, 1.0, 0.0], atol=0.02)
    assert est.coef_[3] == 0.0 or not standardize
    # the same after a fit on rows where that column was constant (without
    # decays of alpha, which partial_fit would continue with)
    est = AdamRegressor(
        batch_size=50, alpha=0.01, standardize=standardize, stall_decays=0
    )
    _quiet_fit(est, X[:1000], y[:1000])
    assert est.coef_[0] == 0.0
    for _ in range(20):
        est.partial_fit(X[1000:], y[1000:])
    assert_allclose(est.coef_[:3], [3.0, 1.0, 0.0], atol=0.02)
    assert est.coef_[3] == 0.0 or not standardize


def test_partial_fit_checks_features_and_targets():
    X, y = _data()
    est = AdamRegressor().partial_fit(X, y)
    assert est.n_features_in_ == X.shape[1]
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(X[:, :3], y)
    with pytest.raises(ValueError, match="target"):
        est.partial_fit(X, np.c_[y, y])
    with pytest.raises(ValueError, match="early_stopping=False"):
        AdamRegressor(early_stopping=True).partial_fit(X, y)


def test_partial_fit_stream_with_standardize_follows_a_drifting_mean():
    # the first chunk fixes the coordinates; the intercept stays a parameter
    rng = np.random.RandomState(0)
    coef = np.array([1.0, -2.0, 0.5])
    est = AdamRegressor(batch_size=32, alpha=0.01, random_state=0)
    for i in range(60):
        X = rng.randn(200, 3) * 10 + 1000
        y = X @ coef + 50.0 + (5.0 if i >= 30 else 0.0) + 0.1 * rng.randn(200)
        est.partial_fit(X, y)
    X = rng.randn(500, 3) * 10 + 1000
    y = X @ coef + 55.0
    assert_allclose(est.coef_, coef, atol=0.02)
    assert abs(np.mean(est.predict(X) - y)) < 0.5


def test_fit_then_partial_fit_and_warm_start():
    X, y = _data(offset=3.0)
    est = AdamRegressor().fit(X, y)
    t_fit, score = est.t_, est.score(X, y)
    assert t_fit == est.best_iter_  # full batch: one step per iteration
    # a small step keeps the stream near the solution fit found
    est.set_params(batch_size=100, alpha=1e-3)
    est.partial_fit(X, y)
    assert est.t_ == t_fit + 10 and est.n_iter_ == len(est.loss_curve_)
    assert est.score(X, y) > score - 1e-3
    # warm_start: fresh moments, this call's iterations only
    est.set_params(batch_size=None, warm_start=True)
    est.fit(X, y)
    assert est.t_ == est.best_iter_ <= est.n_iter_ == len(est.loss_curve_)


# -- early stopping ------------------------------------------------------


@pytest.mark.parametrize("batch_size", [None, 64])
def test_early_stopping_keeps_the_best_validation_coefficients(batch_size):
    X, y = _data(n=600, noise=2.0)
    est = AdamRegressor(
        early_stopping=True,
        validation_fraction=0.2,
        random_state=0,
        batch_size=batch_size,
        n_iter_no_change=30,
        alpha=0.05,
    )
    _quiet_fit(est, X, y)
    scores = est.validation_scores_
    assert len(scores) == est.n_iter_
    assert est.best_validation_score_ == scores.max()
    assert est.best_iter_ == np.argmax(scores) + 1
    # rebuild the split to check the kept coefficients' validation score
    rng = np.random.RandomState(0)
    held = np.zeros(600, bool)
    held[rng.permutation(600)[:120]] = True
    assert_allclose(est.score(X[held], y[held]), est.best_validation_score_, rtol=1e-10)


def test_early_stopping_needs_both_sides():
    X, y = _data(n=5)
    with pytest.raises(ValueError, match="validation_fraction"):
        AdamRegressor(early_stopping=True, validation_fraction=0.9).fit(X, y)


def test_clone_keeps_new_parameters():
    est = AdamRegressor(
        batch_size=8, shuffle=False, random_state=1, early_stopping=True
    )
    assert clone(est).get_params() == est.get_params()
