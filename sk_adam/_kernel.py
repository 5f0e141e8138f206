"""The mini-batch epoch as one compiled loop (optional: needs numba).

A mini-batch of a few hundred rows costs two small matrix-vector products
and an Adam update of ``d + 1`` numbers: a few microseconds of arithmetic,
but about twenty numpy calls whose fixed cost (and, with shuffling, the copy
of the batch's rows) dominates. :func:`compiled_epoch` returns the whole
epoch written as one loop and compiled with numba, which reads each row once,
in place (shuffled rows are reached through the permutation, never
gathered), and accumulates in float64 whatever the dtype of ``X``.

It computes what :class:`sk_adam._datafit.BatchLeastSquares` followed by
:class:`sk_adam._adam.Adam` computes, batch by batch, in the same order; the
results agree to round-off (sums are accumulated in another order). numba is
an optional dependency (the ``fast`` extra): without it, or with the
environment variable ``SK_ADAM_NO_NUMBA`` set to a non-empty value, the
numpy implementation runs instead. The kernel covers dense arrays with
contiguous rows and one target; anything else uses numpy.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["compiled_epoch"]

_COMPILED = None  # the jitted function once built; False if unavailable


def _epoch(
    X,
    y,
    s,
    order,
    size,
    params,
    moment1,
    moment2,
    t,
    beta1_power,
    beta2_power,
    alpha,
    beta1,
    beta2,
    epsilon,
    x_offset,
    x_scale,
    varying,
    intercept,
):  # pragma: no cover - runs compiled; the tests compare it with numpy
    """One epoch of mini-batch Adam on the least-squares objective.

    ``s`` is empty for equal weights, ``order`` empty for rows in their
    order. ``params``, ``moment1`` and ``moment2`` (1-D, length
    ``d + intercept``) are updated in place. Returns the new step count and
    powers of the decay rates, the weighted sum of the batches' MSE and the
    sum of their weights.
    """
    d = X.shape[1]
    p = params.shape[0]
    weighted = s.shape[0] > 0
    shuffled = order.shape[0] > 0
    n = order.shape[0] if shuffled else X.shape[0]
    u = np.empty(d)
    g = np.empty(p)
    loss_sum = 0.0
    weight_sum = 0.0
    for start in range(0, n, size):
        stop = min(start + size, n)
        # the residual's constant part: offset @ u - intercept
        shift = 0.0
        for j in range(d):
            u[j] = params[j] / x_scale[j]
            shift += x_offset[j] * u[j]
            g[j] = 0.0
        if intercept:
            shift -= params[d]
        total = 0.0
        loss = 0.0
        weight = 0.0
        for k in range(start, stop):
            i = order[k] if shuffled else k
            row = X[i]
            dot = 0.0
            for j in range(d):
                dot += row[j] * u[j]
            r = y[i] - dot + shift
            z = r
            if weighted:
                z = r * s[i]
                weight += s[i]
            loss += z * r
            total += z
            for j in range(d):
                g[j] += z * row[j]
        if not weighted:
            weight = float(stop - start)
        if weight == 0.0:
            continue
        for j in range(d):
            if varying[j]:  # x_offset is zero when nothing is centred
                g[j] = -(g[j] - x_offset[j] * total) / (x_scale[j] * weight)
            else:
                g[j] = 0.0
        if intercept:
            g[d] = -total / weight
        # the Adam update, as in sk_adam._adam.Adam.step
        t += 1
        beta1_power *= beta1
        beta2_power *= beta2
        c2 = np.sqrt(1.0 - beta2_power)
        rate = alpha * c2 / (1.0 - beta1_power)
        floor = epsilon * c2
        for j in range(p):
            moment1[j] = moment1[j] * beta1 + g[j] * (1.0 - beta1)
            moment2[j] = moment2[j] * beta2 + (g[j] * g[j]) * (1.0 - beta2)
            params[j] -= rate * (moment1[j] / (np.sqrt(moment2[j]) + floor))
        loss_sum += loss
        weight_sum += weight
    return t, beta1_power, beta2_power, loss_sum, weight_sum


def compiled_epoch():
    """The compiled :func:`_epoch`, or None if numba is missing or disabled.

    numba is imported and the function compiled on first use only; compiled
    code is cached on disk, so later processes load it instead of compiling.
    """
    global _COMPILED
    if os.environ.get("SK_ADAM_NO_NUMBA"):
        return None
    if _COMPILED is None:
        try:
            import numba
        except ImportError:
            _COMPILED = False
        else:
            # reassociation lets the row loops vectorise; no assumption about
            # NaN or inf is made, so a diverging run still shows up as one
            _COMPILED = numba.njit(
                cache=True, nogil=True, fastmath={"reassoc", "contract"}
            )(_epoch)
    return _COMPILED or None
