"""The compiled statistics pass against the numpy one and a two-pass oracle.

``sk_adam._kernel._gram_rows`` reads dense C-ordered rows once, centres
each tile of rows at its own weighted means and merges the tiles as the
numpy pass merges its blocks. Both passes must give the same weight, means
and centred products up to the order of floating-point sums (relative
1e-12 of the largest product), on every kind of input the kernel takes;
inputs it does not take go to numpy.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from engines import use_statistics_pass
from numpy.testing import assert_allclose

from sk_adam import _kernel, _statistics
from sk_adam._statistics import blockwise_gram_stats, gram_stats

RTOL = 1e-12


@pytest.fixture
def kernel(monkeypatch):
    monkeypatch.delenv("SK_ADAM_NO_NUMBA", raising=False)
    use_statistics_pass(monkeypatch, "compiled")
    return _kernel.compiled_stats()


def _numpy(monkeypatch, *args, **kwargs):
    monkeypatch.setenv("SK_ADAM_NO_NUMBA", "1")
    try:
        return blockwise_gram_stats(*args, **kwargs)
    finally:
        monkeypatch.delenv("SK_ADAM_NO_NUMBA")


def _same(a, b):
    assert a.weight == pytest.approx(b.weight, rel=RTOL)
    for name in ("mean", "ymean", "xx", "xy", "yy", "ref", "yref"):
        got, want = getattr(a, name), getattr(b, name)
        scale = max(np.max(np.abs(want)), 1e-300)
        assert_allclose(got, want, rtol=0, atol=RTOL * scale, err_msg=name)


def _data(n, d, k=1, dtype=np.float64, seed=0):
    rng = np.random.RandomState(seed)
    X = (rng.randn(n, d) * np.logspace(-2, 3, d) + rng.uniform(-1e3, 1e3, d)).astype(
        dtype
    )
    Y = X.astype(np.float64) @ rng.randn(d, k) + rng.randn(n, k)
    return X, Y


@pytest.mark.parametrize(
    "n, d, k",
    [(1, 1, 1), (7, 3, 1), (1000, 10, 1), (1001, 33, 2), (777, 60, 3), (300, 200, 1)],
    ids=["one row", "a partial tile", "tiles", "row-wise copy", "k=3", "wide"],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True], ids=["uniform", "weighted"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_compiled_pass_equals_numpy_pass(
    kernel, monkeypatch, n, d, k, dtype, weighted, order
):
    X, Y = _data(n, d, k, dtype)
    X = np.asarray(X, order=order)
    rng = np.random.RandomState(1)
    s = rng.uniform(0, 2, n) if weighted else np.ones(n)
    s /= s.sum()
    _same(blockwise_gram_stats(X, Y, s), _numpy(monkeypatch, X, Y, s))


def test_compiled_pass_with_references_and_zero_weights(kernel, monkeypatch):
    """Rescaled values (huge magnitudes) and tiles whose weights are all
    zero (skipped, as the numpy pass skips such blocks)."""
    X, Y = _data(2000, 8, 2)
    X[:, 3] *= 1e200
    s = np.full(2000, 1.0)
    s[:600] = 0.0  # more than two tiles of weight zero, then a partial one
    s[1500:1510] = 0.0
    s /= s.sum()
    ref = np.max(np.abs(X), axis=0)
    yref = np.max(np.abs(Y), axis=0)
    _same(
        blockwise_gram_stats(X, Y, s, ref, yref),
        _numpy(monkeypatch, X, Y, s, ref, yref),
    )
    assert blockwise_gram_stats(X[:600], Y[:600], s[:600]).weight == 0


def test_two_threads_equal_one(kernel, monkeypatch):
    X, Y = _data(5000, 12, 1)
    s = np.full(5000, 1 / 5000)
    one = blockwise_gram_stats(X, Y, s)
    monkeypatch.setattr(_statistics, "_THREADED_FLOPS", 1)
    monkeypatch.setattr(_statistics, "_COMPILED_THREADED_FLOPS", 1)
    monkeypatch.setattr(_statistics, "usable_cpus", lambda: 2)
    _same(blockwise_gram_stats(X, Y, s), one)
    _same(blockwise_gram_stats(X, Y, s), _numpy(monkeypatch, X, Y, s))


@pytest.mark.parametrize("offset", [1e6, 1e12])
def test_compiled_pass_is_exact_for_large_offsets(kernel, offset):
    """Columns whose means are ``offset`` standard deviations from zero, one
    with a trend (the tiles' means move). Each tile is shifted by the
    running means (kept as double-float64 sums) before its own means are
    taken, so the centred products are exact to the last digits of the
    spread (the numpy pass, shifted by float64 means, keeps 1e-9 at 1e8);
    the one-pass ``X'X/n - mu mu'`` keeps none of them."""
    rng = np.random.RandomState(3)
    n = 3000
    X = rng.randn(n, 4) + np.array([1.0, -1.0, 0.0, 0.5]) * offset
    X[:, 2] += np.linspace(0, 50, n)
    Y = X[:, :1] - offset + rng.randn(n, 1)
    s = np.full(n, 1 / n)
    stats = gram_stats(X, Y, s)
    # the oracle: two passes, in extended precision
    Xl = X.astype(np.longdouble)
    centred = Xl - Xl.mean(axis=0)
    oracle = ((centred.T @ centred) / n).astype(np.float64)
    scale = np.max(np.abs(oracle))
    assert np.max(np.abs(stats.xx - oracle)) <= 1e-13 * scale
    assert_allclose(stats.mean, Xl.mean(axis=0).astype(np.float64), rtol=1e-15)
    naive = X.T @ X / n - np.outer(X.mean(axis=0), X.mean(axis=0))
    assert np.max(np.abs(naive - oracle)) > 1e-6 * scale


def test_inputs_the_kernel_does_not_take_go_to_numpy(kernel, monkeypatch):
    calls = []

    def spy(*args, **kwargs):
        calls.append(args)
        return kernel(*args, **kwargs)

    X, Y = _data(500, 10)
    s = np.full(500, 1 / 500)
    want = _numpy(monkeypatch, X, Y, s)
    Xs, Ys, ss = X[:, ::2], Y, s
    want_strided = _numpy(monkeypatch, Xs, Ys, ss)
    monkeypatch.setattr(_statistics, "compiled_stats", lambda: spy)
    _same(blockwise_gram_stats(Xs, Ys, ss), want_strided)
    assert calls == []  # columns at a stride: numpy
    wide, Yw = _data(50, 300)
    blockwise_gram_stats(wide, Yw, np.full(50, 1 / 50))
    assert calls == []  # wider than _COMPILED_MAX_WIDTH: numpy
    _same(blockwise_gram_stats(X, Y, s), want)
    _same(blockwise_gram_stats(np.asfortranarray(X), Y, s), want)
    assert len(calls) == 2  # C and F order: compiled


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rows_at_a_stride_are_read_where_they_are(kernel, monkeypatch, dtype):
    # X cut from a wider array (``Xy[:, :-1]``, what a persisted dask slice
    # holds) or every other row: rows contiguous at a stride, read by the
    # kernel without a copy, with the values of the contiguous copy
    calls = []

    def spy(*args, **kwargs):
        calls.append(args[0])
        return kernel(*args, **kwargs)

    X, Y = _data(1500, 7)
    Xy = np.hstack([X, Y]).astype(dtype)
    s = np.random.RandomState(2).uniform(0.5, 2, 1500)
    monkeypatch.setattr(_statistics, "compiled_stats", lambda: spy)
    for view, Yv, sv in ((Xy[:, :7], Y, s), (Xy[::2, :7], Y[::2], s[::2])):
        assert not view.flags.c_contiguous and not view.flags.f_contiguous
        calls.clear()
        got = blockwise_gram_stats(view, Yv, sv)
        assert len(calls) == 1 and np.shares_memory(calls[0], Xy)  # no copy
        _same(got, blockwise_gram_stats(np.ascontiguousarray(view), Yv, sv))


_ONE_SHOT = """
import sys
import numpy as np
from sk_adam import AdamRegressor, _kernel
if len(sys.argv) > 1:
    _kernel.PAYS_AFTER["stats"] = float(sys.argv[1])
rng = np.random.RandomState(0)
X = rng.randn(2000, 5)
y = X @ rng.randn(5)
for _ in range(3):
    AdamRegressor(max_iter=50).fit(X, y)
print("numba" in sys.modules, "stats" in _kernel._BUILT)
"""


@pytest.mark.parametrize(
    "pays_after, built",
    [(None, False), ("0.0", True)],
    ids=["a few fits", "once the numpy passes have paid"],
)
def test_the_compiled_pass_is_built_once_it_pays(pays_after, built):
    """A process whose numpy statistics passes have cost less than building
    the compiled one never imports numba; once they have, the next pass
    builds it."""
    args = [sys.executable, "-c", _ONE_SHOT]
    args += [] if pays_after is None else [pays_after]
    env = {k: v for k, v in os.environ.items() if k != "SK_ADAM_NO_NUMBA"}
    out = subprocess.run(args, capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == [str(built), str(built)]


@pytest.mark.parametrize("weighted", [False, True], ids=["uniform", "weighted"])
def test_fits_on_either_pass_agree(monkeypatch, weighted):
    """A default fit on the compiled pass's statistics and one on the numpy
    pass's: the same iterations and rule, coefficients to 1e-9 (the
    statistics agree to 1e-13; a condition number of ~1e3 and the steps
    carry the difference)."""
    from sk_adam import AdamRegressor

    X, Y = _data(3000, 12, 2)
    sw = np.random.RandomState(4).uniform(0.2, 3, 3000) if weighted else None
    fits = {}
    for which in ("compiled", "numpy"):
        use_statistics_pass(monkeypatch, which)
        fits[which] = AdamRegressor().fit(X, Y, sample_weight=sw)
    a, b = fits["compiled"], fits["numpy"]
    assert (a.n_iter_, a.stop_reason_) == (b.n_iter_, b.stop_reason_)
    assert_allclose(a.coef_, b.coef_, rtol=1e-9, atol=1e-12 * np.abs(b.coef_).max())
    assert_allclose(a.intercept_, b.intercept_, rtol=1e-9)
