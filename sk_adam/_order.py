"""The order in which a shuffled epoch visits the rows.

Fewer than :data:`HASHED_FROM` rows are visited in the order of
``RandomState.permutation``: every order equally likely, at a cost (about
11 ns a row) that does not matter at that size. From :data:`HASHED_FROM`
rows on, drawing that permutation was a fifth of a compiled ``partial_fit``
pass (2.2 of about 15 ms per 200,000 rows), so the order is a *keyed hash
permutation* instead: four keys are drawn from the random state, and the
rows are visited in the order :func:`hashed_order` defines, which numpy
computes with a dozen vectorised operations and the compiled kernel (see
:mod:`sk_adam._kernel`) with one loop, to the same integers.

A keyed permutation is one of far fewer orders than ``RandomState.permutation``
can give, which is why small chunks keep the latter (on 8 rows, 100,000
draws of its keys gave 1,792 of the 40,320 orders). At the sizes where it
is used, its batches match a uniform shuffle's on what the test suite checks
(within the tolerances that ``RandomState.permutation`` itself meets): the
probability that two given rows share a batch (neighbours and rows ``2**j``
apart alike), the spread of batch means, and the correlation of positions
with the row numbers and between epochs.
"""

from __future__ import annotations

import numpy as np

from ._kernel import compiled_order

__all__ = ["HASHED_FROM", "MULTIPLIERS", "hashed_order", "shuffled_order"]

#: Chunks of at least this many rows (and at most ``2**32``) are shuffled
#: with :func:`hashed_order`; smaller ones with ``RandomState.permutation``.
HASHED_FROM = 4096

#: The odd 32-bit multipliers of the four rounds of :func:`hashed_order`.
MULTIPLIERS = (0x7FEB352D, 0x846CA68B, 0x9E3779B1, 0x85EBCA6B)
_MULTIPLIERS = np.array(MULTIPLIERS, dtype=np.uint32)  # as the kernel takes them


def shuffled_order(n: int, rng: np.random.RandomState) -> np.ndarray:
    """A random order of ``range(n)``, drawn from ``rng``.

    Parameters
    ----------
    n : int
        Number of rows.
    rng : numpy.random.RandomState
        Advanced by one ``permutation(n)`` when ``n < HASHED_FROM`` or
        ``n > 2**32``, else by four 32-bit draws (the keys).

    Returns
    -------
    order : ndarray of shape (n,), dtype intp
        Every integer in ``range(n)`` once; the same for the same state of
        ``rng``, whether or not the compiled kernel computes it.
    """
    if n < HASHED_FROM or n > 2**32:
        return rng.permutation(n)
    keys = rng.randint(2**32, size=4, dtype=np.uint32)
    compiled = compiled_order()
    if compiled is not None:
        return compiled(n, keys, _MULTIPLIERS)
    return hashed_order(n, keys)


def hashed_order(n: int, keys: np.ndarray) -> np.ndarray:
    r"""The keyed hash permutation of ``range(n)``, ``1 <= n <= 2**32``.

    With :math:`b` the least number of bits with :math:`2^b \ge n` (at least
    1), :math:`h = \lceil b/2 \rceil`, keys :math:`k_r` and the
    :data:`MULTIPLIERS` :math:`m_r`, each of four rounds maps a :math:`b`-bit
    integer :math:`x` to

    .. math::

        x \leftarrow \big((x + k_r) \, m_r\big) \bmod 2^b, \qquad
        x \leftarrow x \oplus \lfloor x / 2^h \rfloor .

    Each step is a bijection of :math:`[0, 2^b)` (adding, multiplying by an
    odd number, an xor with the value shifted right), so the four rounds give
    a permutation :math:`f`. The order is :math:`f(0), f(1), \dots,
    f(2^b - 1)` with the values :math:`\ge n` left out: at most :math:`2n`
    evaluations, no loop that depends on the data.

    Parameters
    ----------
    n : int
        Number of rows.
    keys : ndarray of shape (4,), dtype uint32
        The round keys :math:`k_r` (only their low :math:`b` bits matter).

    Returns
    -------
    order : ndarray of shape (n,), dtype intp
    """
    bits = max(int(n - 1).bit_length(), 1)
    mask = np.uint32((1 << bits) - 1)
    shift = np.uint32((bits + 1) // 2)
    x = np.arange(1 << bits, dtype=np.uint32)
    for key, multiplier in zip(keys, MULTIPLIERS, strict=True):
        x += np.uint32(key) & mask  # uint32 arithmetic wraps modulo 2**32,
        x *= np.uint32(multiplier)  # and 2**bits divides 2**32
        x &= mask
        x ^= x >> shift
    return x[x < n].astype(np.intp)
