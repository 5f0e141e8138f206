"""One iteration of Adam over the data: the epochs the solver runs.

An *epoch* is what the solver (:mod:`sk_adam._solver`) calls once per
iteration. Every kind answers the same three calls:

``start(params)``
    The per-target training MSE (working units) at the starting point, or
    None where it is not known without an extra pass (mini-batches).
``run(params, rate)``
    One iteration at learning rate ``rate``: Adam steps on ``params`` (in
    place) and on the Adam state the epoch was built with; returns the
    per-target training MSE of the iteration.
``restart(params)``
    Continue from ``params`` (after the solver went back to its best
    iterate).
``gap()``
    How far the training MSE of the last iteration lies above the
    least-squares minimum, per target, where that is known exactly (a
    full batch on whitened statistics), else None.
``null_loss()``
    Where ``gap`` is known, the per-target MSE of all-zero parameters (the
    scale the gap is measured against), else None.

:class:`FullBatchStep`
    One Adam step on a full-batch :class:`~sk_adam._datafit.Datafit`.
:class:`MiniBatchEpochs`
    One pass in mini-batches over in-memory rows, by one of two engines of
    one interface: :class:`NumpyEngine` (a :class:`RowLeastSquares` per
    batch) or :class:`CompiledEngine` (the loop of :mod:`sk_adam._kernel`),
    which compute the same batches in the same order.
:class:`BlockEpochs`
    One pass over row blocks that are loaded one at a time (a file's
    chunks), each run as :class:`MiniBatchEpochs` by :func:`block_epoch`;
    :mod:`sk_adam._dask` runs the same function on the worker that holds
    each block instead.
:class:`Validation`
    The held-out MSE and R^2 that ``early_stopping`` watches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import scipy.sparse as sp
from sklearn.metrics import r2_score
from sklearn.utils.extmath import safe_sparse_dot

from ._adam import Adam, IterateAverage
from ._coordinates import Coordinates
from ._datafit import Datafit, RowLeastSquares, WhitenedLeastSquares
from ._kernel import NO_CSR, NO_DENSE, compiled_epoch, compiled_steps
from ._order import shuffled_order

__all__ = [
    "BlockEpochs",
    "CompiledEngine",
    "FullBatchStep",
    "MiniBatchEpochs",
    "NumpyEngine",
    "Validation",
    "block_epoch",
]


class FullBatchStep:
    """One iteration of full-batch Adam: gradient, step, new MSE."""

    def __init__(self, problem: Datafit, adam: Adam) -> None:
        self.problem = problem
        self.adam = adam
        self.grad = np.empty((problem.n_params, problem.n_targets))

    def start(self, params):
        """The MSE at the starting point (which the first step's gradient is
        taken at)."""
        with np.errstate(over="ignore", invalid="ignore"):  # the solver checks
            return self.problem.evaluate(params)

    def run(self, params, rate):
        self.problem.gradient(self.grad)
        self.adam.step(params, self.grad, rate)
        return self.problem.evaluate(params)

    def restart(self, params):
        """Continue from ``params`` (the gradient is that of the last
        evaluation)."""
        self.problem.evaluate(params)

    def gap(self):
        """How far above the least-squares minimum the MSE of the last
        iteration lies, per target, where the problem knows it (whitened
        statistics), else None."""
        return self.problem.gap()

    def null_loss(self):
        """The MSE of all-zero parameters per target, where the gap is
        known, else None."""
        if not isinstance(self.problem, WhitenedLeastSquares):
            return None
        return self.problem.null_loss()

    def stepper(self, spent: float = 0.0):
        """:meth:`run_steps` where the steps can run as one compiled loop (a
        whitened problem, numba available, and the loop built: once the
        numpy steps of this process, ``spent`` seconds more of them
        included, have taken what building it takes), else None."""
        if not isinstance(self.problem, WhitenedLeastSquares):
            return None
        return None if compiled_steps(spent) is None else self.run_steps

    def run_steps(self, params, rate, count, best, weights, tol, gap_tol):
        """Up to ``count`` iterations in one compiled call (see
        :func:`sk_adam._kernel._whitened_steps`): the same steps as
        :meth:`run`, each loss combined with ``weights`` as the solver
        combines them. ``best`` is ``(value, params, state)``: an iterate
        below ``value`` is copied into ``params`` and ``state``. Stops
        after a loss that is not finite, below ``tol``, or whose weighted
        gap is at most ``gap_tol``. Returns the losses, the stop code (0
        none, 1 tol, 2 gap, 3 not finite) and the step of the last new best
        (-1 for none).
        """
        state, adam, problem = self.adam.state, self.adam, self.problem
        value, best_params, best_state = best
        counters = np.array([state.t, state.beta1_power, state.beta2_power], float)
        best_counters = np.zeros(3)
        losses = np.empty(count)
        run, code, _, best_step = compiled_steps()(
            params, state.moment1, state.moment2, counters, problem.cross,
            problem.minimum, weights, rate, adam.beta1, adam.beta2, adam.epsilon,
            count, value, best_params, best_state.moment1, best_state.moment2,
            best_counters, tol, gap_tol, losses,
        )  # fmt: skip
        state.t = int(counters[0])
        state.beta1_power, state.beta2_power = counters[1], counters[2]
        if best_step >= 0:
            best_state.t = int(best_counters[0])
            best_state.beta1_power = best_counters[1]
            best_state.beta2_power = best_counters[2]
        with np.errstate(over="ignore", invalid="ignore"):
            problem.evaluate(params)  # the next step's gradient
        return losses[:run], int(code), int(best_step)


class NumpyEngine:
    """Mini-batches in numpy: a :class:`RowLeastSquares` on each batch's rows,
    then :meth:`Adam.step` (and :meth:`IterateAverage.update`, if any)."""

    def __init__(self, coords, dtype, n_targets: int, adam: Adam, average, decay):
        self.batch = RowLeastSquares(coords, dtype, n_targets)
        self.adam = adam
        self.average = average
        self.decay = decay
        self.grad = np.empty((coords.n_params, n_targets))

    def run(self, X, Y, s, order, n, size, params, rate):
        """The batches of ``size`` rows of ``order`` (None: rows in order);
        returns the weighted sum of their MSEs and their total weight."""
        total = np.zeros(self.grad.shape[1])
        weight = 0.0
        batch, step, grad, decay = self.batch, self.adam.step, self.grad, self.decay
        for start in range(0, n, size):
            if order is None:
                idx = slice(start, start + size)
            else:
                idx = order[start : start + size]
            w = batch.select(X[idx], Y[idx], None if s is None else s[idx])
            if w == 0.0:
                continue
            total += w * batch.evaluate(params)
            factor = 1.0 if decay is None else decay.factor(self.adam.state.t + 1)
            step(params, batch.gradient(grad), rate * factor)
            if self.average is not None:
                self.average.update(params)
            weight += w
        return total, weight


class CompiledEngine:
    """The same batches in one compiled call (see :mod:`sk_adam._kernel`):
    dense arrays and CSR matrices of float32 or float64, one target, not
    whitened."""

    def __init__(self, kernel, coords: Coordinates, adam: Adam, average, decay):
        self.kernel = kernel
        self.coords = coords
        self.adam = adam
        self.average = average
        self.decay = decay

    @staticmethod
    def applies(X, n_targets: int, coords: Coordinates) -> bool:
        return (
            (isinstance(X, np.ndarray) or (sp.issparse(X) and X.format == "csr"))
            and X.dtype in (np.float32, np.float64)
            and X.ndim == 2
            and n_targets == 1
            and coords.axes is None
        )

    def run(self, X, Y, s, order, n, size, params, rate):
        state, adam, coords = self.adam.state, self.adam, self.coords
        # 1-D views of the (n_params, 1) arrays, updated in place
        theta, m, v = params[:, 0], state.moment1[:, 0], state.moment2[:, 0]
        if sp.issparse(X):
            dense, csr = NO_DENSE, (X.data, X.indices, X.indptr)
        else:
            dense, csr = np.asarray(X), NO_CSR
        if order is None:
            order = np.empty(0, dtype=np.intp)
        average = self.average
        mean, count = (np.empty(0), 0) if average is None else (
            average.params[:, 0], average.count
        )  # fmt: skip
        (t, b1, b2, loss, weight, count) = self.kernel(
            dense, *csr, Y, np.empty(0) if s is None else s,
            order.astype(np.intp, copy=False),
            size, theta, m, v, state.t, state.beta1_power, state.beta2_power,
            rate, adam.beta1, adam.beta2, adam.epsilon,
            coords.x_offset, coords.x_scale, coords.varying, coords.intercept,
            mean, count, IterateAverage.GAMMA,
            np.inf if self.decay is None else self.decay.steps,
            0 if self.decay is None else self.decay.start,
        )  # fmt: skip
        state.t, state.beta1_power, state.beta2_power = int(t), b1, b2
        if average is not None:
            average.count = int(count)
        return np.array([loss]), weight


class MiniBatchEpochs:
    """One epoch of mini-batch Adam over the rows with positive weight.

    Parameters
    ----------
    X : {ndarray, CSR or CSC matrix} of shape (n, d)
        The rows, used as given (row batches are drawn by indexing).
    Y : ndarray of shape (n, k)
        Targets in the data's units.
    s : ndarray of shape (n,)
        Sample weights; rows of weight zero are never visited.
    coords : Coordinates
        The working coordinates.
    adam : Adam
        The optimiser, whose state the epochs advance.
    rng : RandomState
        Draws the shuffled orders.
    size : int or None
        Rows per batch; None: all the rows in one batch.
    shuffle : bool
        Whether each epoch visits the rows in a new random order.
    average : IterateAverage or None
        Updated with the parameters after every step, when given.
    decay : InverseSqrtDecay or None
        What each step multiplies the epoch's rate by, when given.
    """

    def __init__(
        self, X, Y, s, coords, adam, rng, *, size, shuffle, average=None, decay=None
    ):
        self.X = X
        Y_work = (Y - coords.y_offset) / coords.y_scale
        self.Y = Y_work[:, 0] if Y.shape[1] == 1 else Y_work
        lowest, highest = s.min(), s.max()  # two reductions, no copies
        if lowest > 0:
            self.rows, equal = None, lowest == highest
        else:
            self.rows = np.flatnonzero(s > 0)
            positive = s[self.rows]
            equal = np.all(positive == positive[0])
        self.s = None if equal else s
        self.rng = rng
        self.shuffle = shuffle
        self.size = X.shape[0] if size is None else size
        kernel = None
        if CompiledEngine.applies(X, Y.shape[1], coords):
            kernel = compiled_epoch()
        if kernel is not None:
            self.engine = CompiledEngine(kernel, coords, adam, average, decay)
        else:
            self.engine = NumpyEngine(coords, X.dtype, Y.shape[1], adam, average, decay)
        self.weight = 0.0

    def start(self, params):
        """Not known without a pass over the data."""
        return None

    def run(self, params, rate):
        n = self.X.shape[0] if self.rows is None else self.rows.size
        if self.shuffle and self.size < n:
            order = shuffled_order(n, self.rng)
            if self.rows is not None:
                order = self.rows[order]
        else:
            order = self.rows  # None: contiguous slices, no copies
        total, self.weight = self.engine.run(
            self.X, self.Y, self.s, order, n, self.size, params, rate
        )
        return total / self.weight

    def restart(self, params):
        """Continue from ``params``: nothing is cached between epochs."""

    def gap(self):
        """Not known for mini-batches."""

    def null_loss(self):
        """Not needed without :meth:`gap`."""


def block_epoch(x, y, s, params, rate, coords, adam, rng, *, size, shuffle):
    """One block's share of an epoch over row blocks: one
    :class:`MiniBatchEpochs` pass over its rows (``params`` and ``adam``'s
    state advanced in place, shuffled orders drawn from ``rng``). Returns
    the weighted sum of its batches' MSEs and their total weight (zeros for
    a block without positive weight, which takes no step).

    Where the block is does not matter: :class:`BlockEpochs` runs it on
    blocks loaded into this process, :mod:`sk_adam._dask` on the worker
    that holds the block, with the same results.
    """
    if not np.any(s > 0):
        return 0.0, 0.0
    epoch = MiniBatchEpochs(x, y, s, coords, adam, rng, size=size, shuffle=shuffle)
    loss = epoch.run(params, rate)
    return epoch.weight * loss, epoch.weight


class BlockEpochs:
    """Mini-batch epochs over row blocks loaded one at a time.

    Parameters
    ----------
    blocks : callable
        ``blocks()`` iterates over one epoch's blocks, in that epoch's order,
        each as in-memory ``(X, Y, s)`` (``Y`` ``(m, k)``, ``s`` its rows'
        weights).
    coords, adam, rng, size, shuffle
        As for :class:`MiniBatchEpochs`, for every block.
    """

    def __init__(
        self,
        blocks: Callable[[], Iterable[tuple]],
        coords: Coordinates,
        adam: Adam,
        rng: np.random.RandomState,
        *,
        size: int | None,
        shuffle: bool,
    ) -> None:
        self.blocks = blocks
        self.coords, self.adam, self.rng = coords, adam, rng
        self.size, self.shuffle = size, shuffle

    def start(self, params):
        return None

    def run(self, params, rate):
        total, weight = 0.0, 0.0
        for x, y, s in self.blocks():
            part, part_weight = block_epoch(
                x, y, s, params, rate, self.coords, self.adam, self.rng,
                size=self.size, shuffle=self.shuffle,
            )  # fmt: skip
            total, weight = total + part, weight + part_weight
        return total / weight

    def restart(self, params):
        """Continue from ``params``: nothing is cached between epochs."""

    def gap(self):
        """Not known for mini-batches."""

    def null_loss(self):
        """Not needed without :meth:`gap`."""


class Validation:
    """Validation MSE and R^2 of working parameters on the held-out rows."""

    def __init__(self, X, Y, s, coords: Coordinates, fit_intercept: bool):
        rows = np.flatnonzero(s > 0)
        self.X, self.Y, self.s = X[rows], Y[rows], s[rows]
        self.coords = coords
        self.fit_intercept = fit_intercept

    def __call__(self, params):
        coef, intercept = self.coords.to_original(params, self.fit_intercept)
        pred = safe_sparse_dot(self.X, coef.T.astype(self.X.dtype), dense_output=True)
        pred = pred + intercept
        mse = np.average((self.Y - pred) ** 2, axis=0, weights=self.s)
        score = r2_score(self.Y, pred, sample_weight=self.s)
        return mse, score
