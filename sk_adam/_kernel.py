"""Compiled loops (optional: need numba): the mini-batch epoch, the
full-batch steps, the statistics pass.

A mini-batch of a few hundred rows costs two small matrix-vector products
and an Adam update of ``d + 1`` numbers: a few microseconds of arithmetic,
but about twenty numpy calls whose fixed cost (and, with shuffling, the copy
of the batch's rows) dominates. :func:`compiled_epoch` returns the whole
epoch written as one loop and compiled with numba, which reads each row once,
in place (shuffled rows are reached through the permutation, never
gathered), and accumulates in float64 whatever the dtype of ``X``.

Shuffled rows sit at random places in memory: read one after the other, each
waits for a full memory latency (the hardware prefetcher only follows
sequential reads), and an epoch over a 20,000 x 50 chunk took 1.6 ms against
0.4 ms in order. The kernel therefore asks the processor for the row it will
read :data:`PREFETCH_AHEAD` rows later (a prefetch hint, which changes no
value), so that many rows are on their way at once: 0.85 ms.

It computes what :class:`sk_adam._datafit.RowLeastSquares` followed by
:class:`sk_adam._adam.Adam` computes, batch by batch, in the same order; the
results agree to round-off (sums are accumulated in another order). numba is
an optional dependency (the ``fast`` extra): without it, or with the
environment variable ``SK_ADAM_NO_NUMBA`` set to a non-empty value, the
numpy implementation runs instead. The kernel covers dense arrays and CSR
matrices with one target; anything else uses numpy.

The statistics pass :func:`_gram_rows` computes what the numpy pass of
:mod:`sk_adam._statistics` computes, reading each row once (see its
docstring and :data:`STATS_TILE_BYTES`).

Each compiled function (the epoch, the shuffled order, the whitened
full-batch steps of :func:`_whitened_steps`, the statistics pass) is built
by :func:`compiled` on its first use in a process and only then: numba
compiles it once (5-15 s) and caches it on disk, so later processes load it
(about 0.3 s). Within :class:`announcing`, every build is announced to a
callable (the estimator's ``verbose`` output, the command line's progress).
"""

from __future__ import annotations

import os

import numpy as np

__all__ = [
    "NO_CSR",
    "NO_DENSE",
    "announcing",
    "compiled",
    "compiled_epoch",
    "compiled_order",
    "compiled_stats",
    "compiled_steps",
    "count_spent",
    "stats_tile",
]

#: What the kernel gets in place of the CSR arrays for dense data, and of the
#: dense array for CSR data (fixed types: one compiled version for each).
NO_CSR = (np.empty(0), np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int32))
NO_DENSE = np.empty((0, 0))

#: How many rows ahead of the one being read a shuffled epoch prefetches,
#: into the second-level cache. Measured on ten 20,000 x 50 float64 chunks
#: read from memory: 32 to 96 rows ahead take 8.5 to 8.7 ms; 8 rows ahead
#: into the first-level cache 10.8 ms; no hint 16.2 ms; in order 3.9 ms
#: (with the vectorised update loop since: 7.5 and 3.8 ms).
PREFETCH_AHEAD = 64


def _prefetch(A, index):  # pragma: no cover - replaced when compiled
    """Hint that ``A[index]`` (and the cache line around it) is read soon."""


def _prefetch_intrinsic():
    """``_prefetch`` as numba code: one ``llvm.prefetch`` of ``A[index]``.

    A hint only: it loads nothing into the program and cannot fault, so the
    compiled epoch computes the same numbers with or without it.
    """
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def prefetch(typingctx, A, index):
        if not (
            isinstance(A, types.Array)
            and isinstance(index, types.UniTuple)
            and index.count == A.ndim
            and isinstance(index.dtype, types.Integer)
        ):
            return None

        def codegen(context, builder, signature, args):
            array_type, index_type = signature.args
            array = context.make_array(array_type)(context, builder, args[0])
            indices = [
                context.cast(builder, value, index_type.dtype, types.intp)
                for value in cgutils.unpack_tuple(builder, args[1], index_type.count)
            ]
            item = cgutils.get_item_pointer(
                context, builder, array_type, array, indices, wraparound=False
            )
            byte = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            hint = builder.module.declare_intrinsic(
                "llvm.prefetch",
                [byte],
                fnty=ir.FunctionType(ir.VoidType(), [byte, i32, i32, i32]),
            )
            # a read (0) of data (1), into the second-level cache (locality
            # 2): rows asked for far ahead then do not evict the first level
            flags = [ir.Constant(i32, 0), ir.Constant(i32, 2), ir.Constant(i32, 1)]
            builder.call(hint, [builder.bitcast(item, byte), *flags])
            return context.get_dummy_value()

        return types.void(A, index), codegen

    return prefetch


def _per_line(A):  # pragma: no cover - runs compiled
    """Elements per 64-byte cache line along the last axis of ``A``: one
    prefetch each (1 for a wider or negative stride)."""
    stride = A.strides[A.ndim - 1]
    return 64 // stride if 0 < stride < 64 else 1


def _weigh(r, s, i, weighted):  # pragma: no cover - runs compiled
    """Row ``i``'s residual ``r`` times its weight, and the weight (``r``
    and 0 when the batch is unweighted: its weights are not summed)."""
    if weighted:
        return r * s[i], s[i]
    return r, 0.0


def _dense_rows(X, y, s, order, start, stop, n, u, shift, g):  # pragma: no cover
    """Rows ``start:stop`` (of ``order`` when not empty) of a batch of the dense
    ``X``: adds ``z_i x_i`` to ``g``; returns the sums of ``z``, ``z r`` and
    the weights (``r`` the residual, ``z = s r``)."""
    d = X.shape[1]
    weighted = s.shape[0] > 0
    shuffled = order.shape[0] > 0
    line = _per_line(X)
    total = loss = weight = 0.0
    for k in range(start, stop):
        i = order[k] if shuffled else k
        if shuffled and k + PREFETCH_AHEAD < n:
            ahead = order[k + PREFETCH_AHEAD]
            for j in range(0, d, line):
                _prefetch(X, (ahead, j))
            _prefetch(X, (ahead, d - 1))
        row = X[i]
        dot = 0.0
        for j in range(d):
            dot += row[j] * u[j]
        r = y[i] - dot + shift
        z, w = _weigh(r, s, i, weighted)
        weight += w
        loss += z * r
        total += z
        for j in range(d):
            g[j] += z * row[j]
    return total, loss, weight


def _csr_rows(
    data, indices, indptr, y, s, order, start, stop, n, u, shift, g
):  # pragma: no cover - runs compiled
    """:func:`_dense_rows` for the rows of a CSR matrix."""
    weighted = s.shape[0] > 0
    shuffled = order.shape[0] > 0
    line, line_indices = _per_line(data), _per_line(indices)
    total = loss = weight = 0.0
    for k in range(start, stop):
        i = order[k] if shuffled else k
        if shuffled and k + PREFETCH_AHEAD < n:
            ahead = order[k + PREFETCH_AHEAD]
            first, last = indptr[ahead], indptr[ahead + 1]
            for q in range(first, last, line):
                _prefetch(data, (q,))
            for q in range(first, last, line_indices):
                _prefetch(indices, (q,))
            if last > first:
                _prefetch(data, (last - 1,))
                _prefetch(indices, (last - 1,))
        first, last = indptr[i], indptr[i + 1]
        dot = 0.0
        for q in range(first, last):
            dot += data[q] * u[indices[q]]
        r = y[i] - dot + shift
        z, w = _weigh(r, s, i, weighted)
        weight += w
        loss += z * r
        total += z
        for q in range(first, last):
            g[indices[q]] += z * data[q]
    return total, loss, weight


def _epoch(
    X, data, indices, indptr, y, s, order, size, params, moment1, moment2,
    t, beta1_power, beta2_power, alpha, beta1, beta2, epsilon,
    x_offset, x_scale, varying, intercept, average, count, gamma, steps, origin,
):  # fmt: skip  # pragma: no cover - runs compiled; compared with numpy in tests
    """One epoch of mini-batch Adam on the least-squares objective.

    The rows are those of the dense ``X`` or, when ``indptr`` is not empty,
    of the CSR matrix ``(data, indices, indptr)`` (``X`` is then unused).
    ``s`` is empty for equal weights, ``order`` empty for rows in their
    order. ``params``, ``moment1`` and ``moment2`` (1-D, length
    ``d + intercept``) are updated in place, and so is ``average`` (the
    :class:`sk_adam._adam.IterateAverage` of the iterates, ``count`` of them
    so far, with its ``gamma``) after every step unless it is empty. Step
    ``t`` is taken at ``alpha`` times the
    :class:`sk_adam._adam.InverseSqrtDecay` factor of ``steps`` and
    ``origin`` (its ``start``; ``steps`` infinite: ``alpha`` throughout).
    Returns the new step count and powers of the decay rates, the weighted
    sum of the batches' MSE, the sum of their weights, and the new count of
    averaged iterates.

    Each batch makes one pass over the rows it reads and one over the ``d``
    parameters (gradient, Adam update, and the next batch's scaled
    coefficients together), which is what a batch costs when ``d`` is large
    and the rows sparse.
    """
    csr = indptr.shape[0] > 0
    d = x_scale.shape[0]
    weighted = s.shape[0] > 0
    averaged = average.shape[0] > 0
    n = _n_rows(X, indptr, order)
    u = np.empty(d)
    g = np.zeros(d)
    loss_sum = 0.0
    weight_sum = 0.0
    # the residual's constant part: offset @ u - intercept, u = w / scale
    shift = 0.0
    for j in range(d):
        u[j] = params[j] / x_scale[j]
        shift += x_offset[j] * u[j]
    if intercept:
        shift -= params[d]
    for start in range(0, n, size):
        stop = min(start + size, n)
        if csr:
            total, loss, weight = _csr_rows(
                data, indices, indptr, y, s, order, start, stop, n, u, shift, g
            )
        else:
            total, loss, weight = _dense_rows(
                X, y, s, order, start, stop, n, u, shift, g
            )
        if not weighted:
            weight = float(stop - start)
        if weight == 0.0:
            continue  # g is still zero, params unchanged
        # the Adam update, as in sk_adam._adam.Adam.step, on the gradient
        # finished here; then u and shift for the next batch, and g reset
        rate = alpha / np.sqrt(1.0 + (t - origin) / steps)  # step t + 1's
        t += 1
        beta1_power *= beta1
        beta2_power *= beta2
        c2 = np.sqrt(1.0 - beta2_power)
        mix = 0.0
        if averaged:
            count += 1
            mix = (gamma + 1.0) / (count + gamma)
        shift = _update(
            params, moment1, moment2, g, u, total, weight,
            rate * c2 / (1.0 - beta1_power), epsilon * c2, beta1, beta2,
            x_offset, x_scale, varying, intercept, average, mix,
        )  # fmt: skip
        loss_sum += loss
        weight_sum += weight
    return t, beta1_power, beta2_power, loss_sum, weight_sum, count


def _n_rows(X, indptr, order):  # pragma: no cover - runs compiled
    """Rows an epoch visits: those of ``order``, else all of ``X`` or of
    the CSR matrix."""
    if order.shape[0]:
        return order.shape[0]
    if indptr.shape[0] > 0:
        return indptr.shape[0] - 1
    return X.shape[0]


def _update(
    params, moment1, moment2, g, u, total, weight, rate, floor, beta1, beta2,
    x_offset, x_scale, varying, intercept, average, mix,
):  # fmt: skip  # pragma: no cover - runs compiled
    """Adam's update of every parameter from the batch sums ``g`` (``X'z``)
    and ``total`` (``sum z``): the gradient is finished, the moments and
    the parameter updated with the bias-corrected ``rate`` and ``floor``
    (``epsilon sqrt(1 - beta2^t)``), and ``average`` (unless empty) moved
    ``mix`` of the way to it; ``u`` is set for the next batch and ``g``
    reset, in the same pass. Returns the next batch's shift."""
    d = x_scale.shape[0]
    averaged = average.shape[0] > 0
    shift = 0.0
    for j in range(d):
        grad = 0.0
        if varying[j]:  # x_offset is zero when nothing is centred
            grad = -(g[j] - x_offset[j] * total) / (x_scale[j] * weight)
        g[j] = 0.0
        moment1[j] = moment1[j] * beta1 + grad * (1.0 - beta1)
        moment2[j] = moment2[j] * beta2 + (grad * grad) * (1.0 - beta2)
        params[j] -= rate * (moment1[j] / (np.sqrt(moment2[j]) + floor))
        if averaged:
            average[j] += mix * (params[j] - average[j])
        u[j] = params[j] / x_scale[j]
        shift += x_offset[j] * u[j]
    if intercept:
        grad = -total / weight
        moment1[d] = moment1[d] * beta1 + grad * (1.0 - beta1)
        moment2[d] = moment2[d] * beta2 + (grad * grad) * (1.0 - beta2)
        params[d] -= rate * (moment1[d] / (np.sqrt(moment2[d]) + floor))
        if averaged:
            average[d] += mix * (params[d] - average[d])
        shift -= params[d]
    return shift


def _hashed_order(n, keys, multipliers):  # pragma: no cover - runs compiled
    """:func:`sk_adam._order.hashed_order`, ``n >= 2``, as one loop that
    vectorises (a 20,000-row order: 27 us, numpy 170 us)."""
    bits = 1
    while (1 << bits) < n:
        bits += 1
    size = 1 << bits
    mask = np.uint32(size - 1)
    shift = np.uint32((bits + 1) // 2)
    k0, k1, k2, k3 = keys[0] & mask, keys[1] & mask, keys[2] & mask, keys[3] & mask
    m0, m1, m2, m3 = multipliers[0], multipliers[1], multipliers[2], multipliers[3]
    hashed = np.empty(size, dtype=np.uint32)
    for i in range(size):
        # the same rounds; masking after each step makes the width of the
        # intermediate integers irrelevant
        x = ((np.uint32(i) + k0) * m0) & mask
        x ^= x >> shift
        x = ((x + k1) * m1) & mask
        x ^= x >> shift
        x = ((x + k2) * m2) & mask
        x ^= x >> shift
        x = ((x + k3) * m3) & mask
        x ^= x >> shift
        hashed[i] = x
    order = np.empty(size, dtype=np.intp)
    count = 0
    for i in range(size):
        order[count] = hashed[i]
        count += hashed[i] < n
    return order[:count]


def _whitened_steps(
    theta, moment1, moment2, state, cross, minimum, weights, rate, beta1, beta2,
    epsilon, count, best, best_theta, best_moment1, best_moment2, best_state,
    tol, gap_tol, losses,
):  # fmt: skip  # pragma: no cover - runs compiled
    """Up to ``count`` full-batch Adam steps on a whitened problem (MSE per
    target ``minimum + ||theta - cross||^2``, gradient ``theta - cross``):
    what :class:`sk_adam._datafit.WhitenedLeastSquares` and
    :class:`sk_adam._adam.Adam` compute, one step after the other, in one
    call instead of a dozen numpy calls per step.

    ``state`` holds ``(t, beta1^t, beta2^t)`` and is advanced in place, as
    are ``theta`` and the moments. The loss of each step (the weighted
    per-target MSE the solver combines) goes to ``losses``; an iterate whose
    loss is below ``best`` is copied into the ``best_*`` arrays. The loop
    stops after a step whose loss is not finite (code 3), below ``tol``
    (1), or whose weighted gap is at most ``gap_tol`` (2); 0 when ``count``
    steps ran. Returns ``(steps run, code, best, step of the best or -1)``.
    """
    p, k = theta.shape
    best_step = -1
    for step in range(count):
        state[0] += 1.0
        state[1] *= beta1
        state[2] *= beta2
        c2 = np.sqrt(1.0 - state[2])
        scale = rate * c2 / (1.0 - state[1])
        floor = epsilon * c2
        loss = 0.0
        gap = 0.0
        for q in range(k):
            target_gap = 0.0
            for j in range(p):
                grad = theta[j, q] - cross[j, q]
                moment1[j, q] = moment1[j, q] * beta1 + grad * (1.0 - beta1)
                moment2[j, q] = moment2[j, q] * beta2 + (grad * grad) * (1.0 - beta2)
                theta[j, q] -= moment1[j, q] / (np.sqrt(moment2[j, q]) + floor) * scale
                diff = theta[j, q] - cross[j, q]
                target_gap += diff * diff
            loss += (minimum[q] + target_gap) * weights[q]
            gap += target_gap * weights[q]
        losses[step] = loss
        if not np.isfinite(loss):
            return step + 1, 3, best, best_step
        if loss < best:
            best = loss
            best_step = step
            best_theta[:, :] = theta
            best_moment1[:, :] = moment1
            best_moment2[:, :] = moment2
            best_state[:] = state
        if loss < tol:
            return step + 1, 1, best, best_step
        if gap <= gap_tol:
            return step + 1, 2, best, best_step
    return count, 0, best, best_step


#: Bytes of the row tile the compiled statistics pass transposes into (a
#: share of the second-level cache), at most :data:`STATS_TILE_ROWS` rows:
#: each of its sixteen-sum blocks is summed horizontally once per tile, so
#: longer tiles cost fewer sums. Against ``X.T @ X``, two threads (tiles
#: of 112, 224, 448 rows): 100,000 x 50 1.33, 0.84, 0.62; 100,000 x 100
#: 1.14, 0.73, 0.48; one thread at 10,000 x 10 (256, 512, 1,024 rows):
#: 0.89, 0.89, 1.29.
STATS_TILE_BYTES = 384 * 1024
STATS_TILE_ROWS = 512
#: The tile's rows are this many values longer than the tile: with a row
#: length of 256 or 512 float64 values (2 or 4 KiB), the values of one
#: input row, written down a column of the tile, all fell into two sets of
#: the first-level cache and evicted each other (100,000 x 50 with tiles of
#: 448 rows: 1.18 x ``X.T @ X`` unpadded, 0.62 padded).
STATS_TILE_PAD = 8


def stats_tile(width: int) -> int:
    """Rows per tile of :func:`_gram_rows` for ``width`` columns (features
    and targets): a multiple of 8, at least 16."""
    padded = (width + 3) // 4 * 4
    return max(16, min(STATS_TILE_ROWS, STATS_TILE_BYTES // (8 * padded) // 8 * 8))


def _gram_rows(X, Y, s, ref, yref, scaled, start, stop, tile):  # pragma: no cover
    """Weight, means and centred products of rows ``start:stop`` of the
    dense ``X`` (float32 or float64; C order, F order or rows at a stride)
    and ``Y`` (float64), weighted
    by ``s``; divided by ``ref`` and ``yref`` first when ``scaled``.

    What :func:`sk_adam._statistics.blockwise_gram_stats` computes, in one
    read of the rows: each tile of ``tile`` rows is copied, transposed, into
    a float64 buffer ``V`` (one row per column of ``[X, Y]``, padded to a
    multiple of 4 with zeros), centred at the tile's own weighted means and
    scaled by the square roots of the weights, and its products summed four
    columns by four (sixteen sums at a time, vectorised along the rows);
    tiles are merged as the numpy pass merges its blocks (the between-tile
    term of Chan, Golub and LeVeque). Returns ``(weight, mean, ymean, xx,
    xy, yy)`` as :class:`sk_adam._statistics.GramStats` holds them.
    """
    d, k = X.shape[1], Y.shape[1]
    width = d + k
    padded = (width + 3) // 4 * 4
    V = np.zeros((padded, tile + STATS_TILE_PAD))
    roots = np.empty(tile)
    Q = np.zeros((padded, padded))
    mean = np.zeros(width)
    low = np.zeros(width)  # the running means are mean + low
    first = np.zeros(width)
    tile_mean = np.zeros(width)
    weight = 0.0
    for lo in range(start, stop, tile):
        m = min(tile, stop - lo)
        _tile_in(X, Y, ref, yref, scaled, lo, m, V)
        # tiles are shifted by the running means (the first by its first
        # row) before their own means are taken: the means' differences,
        # which the merge multiplies, then keep their digits where the
        # values sit far from zero (1e8 with unit spread: 1.7e-8 of the
        # spread lost over 268 merges when taken from the tiles' means)
        if weight == 0.0:
            first[:] = V[:width, 0]
        shift = first if weight == 0.0 else mean
        # a slice, not s[lo + i]: an index that may be negative (wrapped
        # around) keeps the loops from vectorising (0.13 -> 0.10 ms)
        w = _tile_centre(V, s[lo : lo + m], roots, width, m, shift, tile_mean)
        if w == 0.0:
            continue
        _tile_products(V, Q, padded, m)
        weight = _tile_merge(Q, mean, low, weight, first, tile_mean, w, width)
    xx = np.empty((d, d))
    for j in range(d):
        for c in range(j, d):
            xx[j, c] = xx[c, j] = Q[j, c]
    xy = np.empty((d, k))
    yy = np.empty(k)
    for t in range(k):
        for j in range(d):
            xy[j, t] = Q[j, d + t]
        yy[t] = Q[d + t, d + t]
    mean += low
    return weight, mean[:d].copy(), mean[d:].copy(), xx, xy, yy


#: Up to this many features, :func:`_tile_in` copies a tile column by
#: column (strided reads gathered eight at a time, contiguous writes);
#: above, row by row (contiguous reads, one store per value, which a wide
#: row's gathers cost more than). Two threads, against ``X.T @ X`` (column,
#: row): 200,000 x 15 0.78, 0.96; 200,000 x 20 1.28, 1.54; 100,000 x 30
#: 1.48, 1.48; 1,000,000 x 50 1.36, 0.80; one thread at 10,000 x 10: 55 and
#: 80 us.
GATHER_MAX_FEATURES = 32


def _tile_in(X, Y, ref, yref, scaled, lo, m, V):  # pragma: no cover - compiled
    """``V[:, :m] = [X, Y][lo : lo + m].T`` (divided by the references when
    ``scaled``), in float64 (see :data:`GATHER_MAX_FEATURES`)."""
    d = X.shape[1]
    rows, targets = X[lo : lo + m], Y[lo : lo + m]
    if X.strides[0] < X.strides[1]:
        # column-major (what pandas' frames convert to): each column's
        # values are contiguous, copied through the transpose, whose rows
        # the compiler knows to be contiguous (through X's slice it did not:
        # 250,000 x 20, 8.9 -> 6.8 ms)
        _transposed_in(X.T, ref, scaled, lo, m, V)
    elif d > GATHER_MAX_FEATURES:
        _rows_in(rows, ref, scaled, m, V)
    else:
        _columns_in(rows, ref, scaled, m, V, 0)
    _columns_in(targets, yref, scaled, m, V, d)


def _transposed_in(XT, ref, scaled, lo, m, V):  # pragma: no cover - compiled
    """``V[:d, :m] = XT[:, lo : lo + m]``, row by row of ``XT`` (``X``'s
    columns)."""
    for j in range(XT.shape[0]):
        column, v = XT[j, lo : lo + m], V[j]
        if scaled:
            for i in range(m):
                v[i] = column[i] / ref[j]
        else:
            for i in range(m):
                v[i] = column[i]


def _rows_in(rows, ref, scaled, m, V):  # pragma: no cover - runs compiled
    """``V[:d, :m] = rows.T``, row by row (contiguous reads)."""
    d = rows.shape[1]
    for i in range(m):
        row = rows[i]
        # the test outside the loops: inside, it kept them from being
        # compiled as plain copies (0.08 -> 0.34 ms at 10,000 x 10)
        if scaled:
            for j in range(d):
                V[j, i] = row[j] / ref[j]
        else:
            for j in range(d):
                V[j, i] = row[j]


def _columns_in(rows, ref, scaled, m, V, first):  # pragma: no cover - compiled
    """``V[first : first + d, :m] = rows.T``, column by column (strided
    reads, gathered; contiguous writes)."""
    for j in range(rows.shape[1]):
        v = V[first + j]
        if scaled:
            for i in range(m):
                v[i] = rows[i, j] / ref[j]
        else:
            for i in range(m):
                v[i] = rows[i, j]


def _tile_centre(V, weights, roots, width, m, shift, moved):  # pragma: no cover
    """Centre the tile at its weighted means and scale its rows by the
    square roots of the weights: each column is shifted by ``shift`` first
    and its mean taken of the shifted values, which goes to ``moved`` (the
    tile's means less ``shift``). Returns the tile's weight (0: nothing
    done)."""
    w = 0.0
    for i in range(m):
        w += weights[i]
        roots[i] = np.sqrt(weights[i])
    if w == 0.0:
        return w
    for j in range(width):
        v = V[j]
        c = shift[j]
        total = 0.0
        # the shift subtracted twice rather than stored: a loop that writes
        # as it sums was not vectorised (10,000 x 10: 58 -> 74 us)
        for i in range(m):
            total += weights[i] * (v[i] - c)
        centre = total / w
        moved[j] = centre
        for i in range(m):
            v[i] = ((v[i] - c) - centre) * roots[i]
    return w


def _tile_merge(Q, mean, low, weight, first, moved, w, width):  # pragma: no cover
    """Merge a tile's means into the running ones (its products are in
    ``Q`` already). The running means are kept as unevaluated sums ``mean +
    low`` (twice float64's digits), and the tile was shifted by ``mean``
    (the first tile by ``first``): ``moved - low`` is then the difference
    of the tile's means and the running ones to the precision of the tile's
    spread, whatever their size, which the between-tile term ``W w / (W +
    w) dd'`` needs (the upper triangle of ``Q`` is the one kept). Compiled
    without reassociation, which would cancel the error terms. Returns the
    new total weight."""
    if weight == 0.0:
        for j in range(width):
            mean[j], low[j] = _two_sum(first[j], moved[j])
        return w
    merged = weight + w
    factor = weight * w / merged
    share = w / merged
    for j in range(width):
        moved[j] -= low[j]
    for j in range(width):
        q = Q[j]
        between = factor * moved[j]
        for c in range(width):
            q[c] += between * moved[c]
    for j in range(width):
        high, error = _two_sum(mean[j], moved[j] * share)
        mean[j], low[j] = _two_sum(high, error + low[j])
    return merged


def _two_sum(a, b):  # pragma: no cover - runs compiled
    """``(s, e)`` with ``s = fl(a + b)`` and ``a + b = s + e`` exactly
    (Knuth's TwoSum)."""
    s = a + b
    t = s - a
    return s, (a - (s - t)) + (b - t)


def _tile_products(V, Q, padded, m):  # pragma: no cover - runs compiled
    """Add the upper triangle of ``V[:, :m] @ V[:, :m].T`` to ``Q``, in
    blocks of four rows by four columns: sixteen running sums (ten on the
    diagonal) that the compiler keeps in vector registers along the rows."""
    for j in range(0, padded, 4):
        _diagonal_block(V, Q, j, m)
        for c in range(j + 4, padded, 4):
            _block(V, Q, j, c, m)


def _diagonal_block(V, Q, j, m):  # pragma: no cover - runs compiled
    """The ten distinct products of rows ``j:j+4`` of ``V`` with themselves."""
    v0, v1, v2, v3 = V[j], V[j + 1], V[j + 2], V[j + 3]
    a00 = a01 = a02 = a03 = a11 = a12 = a13 = a22 = a23 = a33 = 0.0
    for i in range(m):
        x0, x1, x2, x3 = v0[i], v1[i], v2[i], v3[i]
        a00 += x0 * x0
        a01 += x0 * x1
        a02 += x0 * x2
        a03 += x0 * x3
        a11 += x1 * x1
        a12 += x1 * x2
        a13 += x1 * x3
        a22 += x2 * x2
        a23 += x2 * x3
        a33 += x3 * x3
    Q[j, j] += a00
    Q[j, j + 1] += a01
    Q[j, j + 2] += a02
    Q[j, j + 3] += a03
    Q[j + 1, j + 1] += a11
    Q[j + 1, j + 2] += a12
    Q[j + 1, j + 3] += a13
    Q[j + 2, j + 2] += a22
    Q[j + 2, j + 3] += a23
    Q[j + 3, j + 3] += a33


def _block(V, Q, j, c, m):  # pragma: no cover - runs compiled
    """The sixteen products of rows ``j:j+4`` of ``V`` with rows ``c:c+4``."""
    v0, v1, v2, v3 = V[j], V[j + 1], V[j + 2], V[j + 3]
    w0, w1, w2, w3 = V[c], V[c + 1], V[c + 2], V[c + 3]
    a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = 0.0
    a20 = a21 = a22 = a23 = a30 = a31 = a32 = a33 = 0.0
    for i in range(m):
        x0, x1, x2, x3 = v0[i], v1[i], v2[i], v3[i]
        y0, y1, y2, y3 = w0[i], w1[i], w2[i], w3[i]
        a00 += x0 * y0
        a01 += x0 * y1
        a02 += x0 * y2
        a03 += x0 * y3
        a10 += x1 * y0
        a11 += x1 * y1
        a12 += x1 * y2
        a13 += x1 * y3
        a20 += x2 * y0
        a21 += x2 * y1
        a22 += x2 * y2
        a23 += x2 * y3
        a30 += x3 * y0
        a31 += x3 * y1
        a32 += x3 * y2
        a33 += x3 * y3
    Q[j, c] += a00
    Q[j, c + 1] += a01
    Q[j, c + 2] += a02
    Q[j, c + 3] += a03
    Q[j + 1, c] += a10
    Q[j + 1, c + 1] += a11
    Q[j + 1, c + 2] += a12
    Q[j + 1, c + 3] += a13
    Q[j + 2, c] += a20
    Q[j + 2, c + 1] += a21
    Q[j + 2, c + 2] += a22
    Q[j + 2, c + 3] += a23
    Q[j + 3, c] += a30
    Q[j + 3, c + 1] += a31
    Q[j + 3, c + 2] += a32
    Q[j + 3, c + 3] += a33


#: What :func:`compiled` builds, by name: the compiled function, the
#: functions it calls (compiled first), and what announcements call it.
#: :func:`_warm_up_calls` gives the small calls that compile it (or load
#: it from numba's disk cache).
_KERNELS = {
    "epoch": ("_epoch", ("_per_line", "_weigh", "_dense_rows", "_csr_rows",
                         "_n_rows", "_update"), "the mini-batch epoch"),
    "order": ("_hashed_order", (), "the shuffled order"),
    "steps": ("_whitened_steps", (), "the full-batch steps"),
    "stats": ("_gram_rows", ("_rows_in", "_columns_in", "_transposed_in",
                             "_tile_in", "_tile_centre", "_two_sum",
                             "_tile_merge", "_diagonal_block", "_block",
                             "_tile_products"), "the statistics pass"),
}  # fmt: skip


def _warm_up_calls(name):
    """The small calls that compile kernel ``name`` (one per argument type
    it is used with), or load it from numba's disk cache."""
    one, zero = np.ones(1), np.zeros(1)
    if name == "epoch":
        return [(
            np.ones((2, 1)), *NO_CSR, np.ones(2), np.empty(0), np.array([1, 0]), 1,
            np.zeros(2), np.zeros(2), np.zeros(2), 0, 1.0, 1.0, 1e-3, 0.9, 0.999,
            1e-8, zero, one, np.ones(1, dtype=bool), True, np.zeros(2), 0, 3.0,
            np.inf, 0,
        )]  # fmt: skip
    if name == "order":
        return [(2, np.zeros(4, dtype=np.uint32), np.ones(4, dtype=np.uint32))]
    if name == "stats":
        return [
            (x, np.ones((2, 1)), np.ones(2), np.ones(2), one, False, 0, 2, 16)
            for dtype in (np.float64, np.float32)
            for x in _layouts(np.ones((2, 3), dtype=dtype))
        ]  # fmt: skip
    two = np.zeros((1, 1))
    return [(
        two.copy(), two.copy(), two.copy(), np.array([0.0, 1.0, 1.0]), two.copy(),
        zero, one, 1e-3, 0.9, 0.999, 1e-8, 1, np.inf, two.copy(), two.copy(),
        two.copy(), np.zeros(3), 0.0, 0.0, np.empty(1),
    )]  # fmt: skip


def _layouts(a):
    """Two columns of ``a`` in the three layouts the statistics pass reads:
    C order, F order, and rows at a stride (columns cut from a wider
    array, as ``Xy[:, :-1]``)."""
    two = a[:, :2]
    return [np.ascontiguousarray(two), np.asfortranarray(two), two]


#: Callees compiled without fast-math flags: error-free transformations,
#: whose error terms reassociation would cancel to zero.
_EXACT = frozenset({"_two_sum", "_tile_merge"})

_BUILT: dict = {}  # name -> compiled function, or False if unavailable
_ANNOUNCE = []  # callables told about a build (see announcing)


def compiled_steps(spent: float | None = None):
    """The compiled :func:`_whitened_steps`, or None (as
    :func:`compiled_epoch`; with ``spent``, only once building pays, see
    :func:`compiled`)."""
    return compiled("steps", spent)


def compiled_stats():
    """The compiled :func:`_gram_rows`, or None: None until this process's
    numpy statistics passes have cost :data:`PAYS_AFTER` (see
    :func:`count_spent`), or where numba is missing or disabled."""
    return compiled("stats", 0.0)


def count_spent(name: str, seconds: float) -> None:
    """Count ``seconds`` of the numpy work kernel ``name`` would replace,
    without building it (the next :func:`compiled` call with ``spent``
    builds it once the total pays)."""
    _SPENT[name] = _SPENT.get(name, 0.0) + seconds


def compiled_epoch():
    """The compiled :func:`_epoch`, or None if numba is missing or disabled.

    numba is imported and the function compiled on first use only; compiled
    code is cached on disk, so later processes load it instead of compiling.
    Should this numba not build the prefetch hint, the epoch is compiled
    without it (same results, slower shuffled epochs).
    """
    return compiled("epoch")


def compiled_order():
    """The compiled :func:`_hashed_order`, or None (as :func:`compiled_epoch`)."""
    return compiled("order")


class announcing:
    """Within the block, every kernel built is announced to ``say``: before
    (``"preparing the mini-batch epoch (numba: ...)"``) and after, with the
    time it took and whether it came from numba's disk cache.
    """

    def __init__(self, say) -> None:
        self.say = say

    def __enter__(self):
        _ANNOUNCE.append(self.say)
        return self

    def __exit__(self, *exc):
        _ANNOUNCE.remove(self.say)


#: Seconds of numpy work a kernel replaces, run in one process, after which
#: building the kernel pays: loading the compiled full-batch steps from
#: numba's disk cache (numba's import included) takes 0.7-1.0 s here, the
#: time of some 50,000 numpy iterations at 20 us each, so a process that
#: fits a few thousand iterations never builds them (the ski-rental rule: at
#: most twice the time of the better choice in hindsight). The statistics
#: pass (a fraction of a millisecond to some hundred milliseconds, of which
#: the compiled pass saves a third to a half) follows the same rule.
PAYS_AFTER = {"steps": 1.0, "stats": 1.0}

_SPENT: dict[str, float] = {}  # name -> seconds of numpy work counted so far


def compiled(name: str, spent: float | None = None):
    """The compiled kernel ``name`` (a key of :data:`_KERNELS`), or None.

    Each kernel is built on its first use in a process, and only then: a
    process that fits full batches never builds the mini-batch epoch.

    With ``spent`` (seconds of the numpy work the kernel would replace, run
    since the last call), a kernel not built yet is built only once this
    process's total reaches :data:`PAYS_AFTER`; until then None.
    """
    if os.environ.get("SK_ADAM_NO_NUMBA"):
        return None
    if name not in _BUILT:
        if spent is not None:
            count_spent(name, spent)
            if _SPENT[name] < PAYS_AFTER[name]:
                return None
        _BUILT[name] = _build(name)
    return _BUILT[name] or None


def _build(name):
    try:
        import numba
    except ImportError:
        return False
    import time

    what = _KERNELS[name][2]
    for say in _ANNOUNCE:
        say(f"preparing {what} (numba: compiled once, about 5-15 s, then "
            f"loaded from its disk cache)")  # fmt: skip
    start = time.perf_counter()
    if name == "epoch":
        try:
            function = _compile(numba, name, _prefetch_intrinsic(), cache=True)
        except Exception:  # an llvmlite/numba without these internals
            no_hint = numba.njit(lambda A, index: None)
            function = _compile(numba, name, no_hint, cache=False)
    else:
        function = _compile(numba, name, None, cache=True)
    hits = sum(function.stats.cache_hits.values())
    how = "loaded from the disk cache" if hits else "compiled"
    for say in _ANNOUNCE:
        say(f"{what} {how} in {time.perf_counter() - start:.1f} s")
    return function


def _compile(numba, name, prefetch, cache):
    """Compile kernel ``name`` (its callees first; the epoch with
    ``prefetch``) and run it once."""
    # reassociation lets the row loops vectorise; no assumption about NaN or
    # inf is made, so a diverging run still shows up as one. numpy's error
    # model: a division by zero gives inf or NaN, as in numpy, instead of a
    # check before every division, which kept the update loop from
    # vectorising (a pass over 65,536 coefficients: 6.4 -> 1.7 ns each)
    jit = numba.njit(
        cache=cache, nogil=True, fastmath={"reassoc", "contract"}, error_model="numpy"
    )
    names = globals()
    if prefetch is not None:
        names["_prefetch"] = prefetch
    function_name, callees, _ = _KERNELS[name]
    exact = numba.njit(cache=cache, nogil=True, error_model="numpy")
    for callee in callees:
        compile_ = exact if callee in _EXACT else jit
        names[callee] = compile_(getattr(names[callee], "py_func", names[callee]))
    function = jit(getattr(names[function_name], "py_func", names[function_name]))
    for arguments in _warm_up_calls(name):
        function(*arguments)
    return function
