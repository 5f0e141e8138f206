"""The order of shuffled epochs: its definition, its two implementations,
and its statistics against a uniform shuffle."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from oracle import hashed_order as oracle_order

from sk_adam._kernel import compiled_order
from sk_adam._order import HASHED_FROM, MULTIPLIERS, hashed_order, shuffled_order

SIZES = [1, 2, 3, 5, 8, 9, 100, 1023, 1024, 1025, 4096, 4097, 20_000]


def _keys(seed):
    return np.random.RandomState(seed).randint(2**32, size=4, dtype=np.uint32)


@pytest.mark.parametrize("n", SIZES)
def test_hashed_order_is_the_documented_permutation(n):
    for seed in range(3):
        order = hashed_order(n, _keys(seed))
        assert order.dtype == np.intp
        assert_array_equal(np.sort(order), np.arange(n))
        if n <= 4097:  # the plain-Python oracle is slow
            assert_array_equal(order, oracle_order(n, _keys(seed)))


def test_hashed_order_matches_the_oracle_on_a_chunk_size():
    assert_array_equal(hashed_order(20_000, _keys(7)), oracle_order(20_000, _keys(7)))


@pytest.mark.parametrize("n", [n for n in SIZES if n >= 2] + [2**16 + 3])
def test_compiled_order_equals_numpy(n):
    compiled = compiled_order()
    assert compiled is not None  # numba comes with the test extra
    multipliers = np.array(MULTIPLIERS, dtype=np.uint32)
    for seed in range(3):
        keys = _keys(seed)
        assert_array_equal(compiled(n, keys, multipliers), hashed_order(n, keys))


def test_keys_beyond_the_bits_used_do_not_matter():
    keys = _keys(0)
    high = keys | np.uint32(1 << 31)  # 20,000 rows use 15 bits
    assert_array_equal(hashed_order(20_000, keys), hashed_order(20_000, high))


@pytest.mark.parametrize("engine", ["compiled", "numpy"])
def test_shuffled_order_draws_as_documented(engine, monkeypatch):
    if engine == "numpy":
        monkeypatch.setenv("SK_ADAM_NO_NUMBA", "1")
    small = HASHED_FROM - 1
    assert_array_equal(
        shuffled_order(small, np.random.RandomState(3)),
        np.random.RandomState(3).permutation(small),
    )
    rng = np.random.RandomState(3)
    first, second = shuffled_order(20_000, rng), shuffled_order(20_000, rng)
    assert_array_equal(first, oracle_order(20_000, _keys(3)))
    expected_rng = np.random.RandomState(3)
    expected_rng.randint(2**32, size=4, dtype=np.uint32)
    assert_array_equal(
        second,
        oracle_order(20_000, expected_rng.randint(2**32, size=4, dtype=np.uint32)),
    )
    assert not np.array_equal(first, second)


def _batch_statistics(orders, n, batch):
    """Statistics of ``orders`` that a uniform shuffle fixes:
    the probability that rows ``i`` and ``i + 1`` (and ``i`` and
    ``i xor 2**j``, every ``j``) fall in one batch, the standard deviation of
    the mean row number in a batch, and the correlation of a row's position
    with its number and with its position in the next epoch."""
    rows = np.arange(n)
    same, spread, correlation, following = [], [], [], []
    together = {j: [] for j in range(int(n - 1).bit_length())}
    previous = None
    for order in orders:
        position = np.empty(n)
        position[order] = rows
        batch_of = position // batch
        same.append(np.mean(batch_of[:-1] == batch_of[1:]))
        for j in together:
            partner = rows ^ (1 << j)
            ok = partner < n
            together[j].append(np.mean(batch_of[ok] == batch_of[partner[ok]]))
        full = n // batch * batch
        spread.append(order[:full].reshape(-1, batch).mean(axis=1).std())
        correlation.append(np.corrcoef(position, rows)[0, 1])
        if previous is not None:
            following.append(np.corrcoef(position, previous)[0, 1])
        previous = position
    return (
        np.mean(same),
        {j: np.mean(v) for j, v in together.items()},
        np.mean(spread),
        np.mean(correlation),
        np.mean(following),
    )


def _unlike_a_uniform_shuffle(orders, n, batch):
    """The statistics on which ``orders`` differ from a uniform shuffle's:
    P(two given rows share a batch) = (b - 1)/(n - 1) (about 1e-4 standard
    error over 100 orders here); a batch's mean row number is the mean of b
    rows drawn without replacement; positions are uncorrelated."""
    same, together, spread, correlation, following = _batch_statistics(orders, n, batch)
    p = (batch - 1) / (n - 1)
    uniform_spread = np.sqrt((n**2 - 1) / 12 / batch * (n - batch) / (n - 1))
    failed = [f"rows 2**{j} apart" for j, v in together.items() if abs(v / p - 1) > 0.1]
    if abs(same / p - 1) > 0.1:
        failed.append(f"neighbours share a batch with probability {same}, not {p}")
    if abs(spread / uniform_spread - 1) > 0.05:
        failed.append(f"batch means spread {spread}, not {uniform_spread}")
    if abs(correlation) > 0.01 or abs(following) > 0.01:
        failed.append(f"correlations {correlation}, {following}")
    return failed


@pytest.mark.parametrize("n, batch", [(20_000, 256), (5_000, 32)])
def test_hashed_order_batches_like_a_uniform_shuffle(n, batch):
    rng = np.random.RandomState(0)
    keys = [rng.randint(2**32, size=4, dtype=np.uint32) for _ in range(100)]
    orders = [hashed_order(n, k) for k in keys]
    assert _unlike_a_uniform_shuffle(orders, n, batch) == []
    # the tolerances, calibrated: RandomState.permutation passes them too
    uniform = [rng.permutation(n) for _ in range(100)]
    assert _unlike_a_uniform_shuffle(uniform, n, batch) == []


def test_the_statistics_tell_a_structured_order():
    # permutations that are no shuffle fail the same checks (they can fail):
    # a stride through the rows, and a random permutation of whole blocks
    n, batch = 20_000, 256
    strides = [(np.arange(n) * 7919 + s) % n for s in range(100)]
    assert _unlike_a_uniform_shuffle(strides, n, batch)
    rng = np.random.RandomState(0)
    blocks = [
        (rng.permutation(n // 16)[:, None] * 16 + np.arange(16)).ravel()
        for _ in range(100)
    ]
    assert _unlike_a_uniform_shuffle(blocks, n, batch)
