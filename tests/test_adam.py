"""The Adam update on its own: exact steps against hand-computed values."""

import pickle

import numpy as np
from numpy.testing import assert_allclose

from sk_adam._adam import Adam, AdamState


def test_first_step_moves_every_coordinate_by_alpha():
    # At t=1, mhat = g and vhat = g**2, so the step is alpha * g / (|g| + eps).
    params = np.array([1.0, -2.0, 3.0])
    grad = np.array([0.5, -4.0, 1e-3])
    adam = Adam(0.9, 0.999, 1e-8, AdamState.zeros(params.shape))
    adam.step(params, grad, 0.1)
    expected = np.array([1.0, -2.0, 3.0]) - 0.1 * grad / (np.abs(grad) + 1e-8)
    assert_allclose(params, expected, rtol=1e-15)
    assert adam.state.t == 1


def test_two_steps_against_formula():
    b1, b2, eps, alpha = 0.8, 0.95, 1e-6, 0.05
    g1, g2 = np.array([2.0, -1.0]), np.array([-3.0, 0.5])
    params = np.zeros(2)
    adam = Adam(b1, b2, eps, AdamState.zeros((2,)))
    adam.step(params, g1, alpha)
    adam.step(params, g2, alpha)

    w = np.zeros(2)
    m = np.zeros(2)
    v = np.zeros(2)
    for t, g in enumerate([g1, g2], start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        w = w - alpha * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    assert_allclose(params, w, rtol=1e-14)
    # the moments hold the raw averages, never the bias-corrected values
    assert_allclose(adam.state.moment1, m, rtol=1e-14)
    assert_allclose(adam.state.moment2, v, rtol=1e-14)
    assert adam.state.beta1_power == b1**2
    assert adam.state.t == 2


def test_zero_gradient_gives_zero_step():
    params = np.array([1.5, -0.5])
    adam = Adam(0.9, 0.999, 1e-8, AdamState.zeros((2,)))
    adam.step(params, np.zeros(2), 0.1)
    assert_allclose(params, [1.5, -0.5], rtol=0, atol=0)


def test_state_pickles_and_continues_identically():
    rng = np.random.RandomState(0)
    grads = rng.randn(6, 4)
    a = np.zeros(4)
    opt = Adam(0.9, 0.999, 1e-8, AdamState.zeros((4,)))
    for g in grads[:3]:
        opt.step(a, g, 0.01)
    state = pickle.loads(pickle.dumps(opt.state))
    b = a.copy()
    resumed = Adam(0.9, 0.999, 1e-8, state)
    for g in grads[3:]:
        opt.step(a, g, 0.01)
        resumed.step(b, g, 0.01)
    assert_allclose(a, b, rtol=0, atol=0)
    assert resumed.state.t == 6
