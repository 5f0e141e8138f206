"""The benchmark cases. Each returns rows ``(case, method, seconds, note)``
and, where it measures convergence, ``(method, [(seconds, excess), ...])``
traces for the suboptimality plot.

Sizes come from a :class:`Sizes` so that ``--quick`` runs the same code on
tiny problems (that is what the test suite checks; timings are never tested).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
import tracemalloc
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, Ridge, SGDRegressor
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_adam import AdamRegressor

TARGET_EXCESS = 1e-6


@dataclass
class Sizes:
    tall: tuple[int, int] = (200_000, 50)
    wide: tuple[int, int] = (2_000, 4_000)
    sparse: tuple[int, int] = (100_000, 50_000)
    sparse_nnz_per_row: int = 10
    full_batch: tuple[tuple[int, int], ...] = (
        (10_000, 10),
        (100_000, 50),
        (1_000_000, 50),
    )
    rounds: int = 7
    conditions: tuple[float, ...] = (1e5, 1e8, 1e10, 1e12)
    step_d: tuple[int, ...] = (10, 100)
    step_n: int = 10_000
    step_iters: int = 2_000
    long_steps: int = 2_000
    peer_budget_s: float = 20.0
    grid: tuple[int, int, int] = (3, 3, 3)
    dask: tuple[int, int] = (10_000_000, 20)
    file: tuple[int, int] = (1_000_000, 20)
    dask_block: int = 250_000
    dask_rounds: int = 3
    repeats: int = 3
    # one partial_fit pass is 10-100 ms and SGDRegressor's shuffled pass
    # varies by a third between runs: more repeats, taken in turns
    throughput_repeats: int = 9


QUICK = Sizes(
    tall=(2_000, 10),
    full_batch=((2_000, 5),),
    rounds=1,
    conditions=(1e5,),
    wide=(50, 100),
    sparse=(2_000, 500),
    step_d=(10,),
    step_n=500,
    step_iters=50,
    long_steps=20,
    peer_budget_s=0.5,
    grid=(1, 1, 1),
    dask=(20_000, 5),
    file=(20_000, 5),
    dask_block=5_000,
    dask_rounds=1,
    repeats=1,
    throughput_repeats=1,
)


def median_time(fn, repeats):
    """Median wall time of ``fn()`` over ``repeats`` runs, and its last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def tall_problem(n, d, seed=0):
    """Correlated features (AR(1), rho 0.7) with offsets and unequal scales."""
    rng = np.random.RandomState(seed)
    corr = 0.7 ** np.abs(np.subtract.outer(np.arange(d), np.arange(d)))
    X = rng.randn(n, d) @ np.linalg.cholesky(corr).T
    X *= rng.uniform(0.5, 3.0, d)
    X += rng.uniform(-1e3, 1e3, d)
    y = X @ rng.randn(d) + 5.0 + rng.randn(n)
    return X, y


def seed_loop(X, y, alpha, n_iter, beta1=0.9, beta2=0.999, epsilon=1e-8):
    """The article's loop as written (mean gradient), on the given X."""
    weights = np.zeros(X.shape[1])
    moment1 = np.zeros(X.shape[1])
    moment2 = np.zeros(X.shape[1])
    for iteration in range(n_iter):
        error = y - X @ weights
        gradient = -(X.T @ error) / X.shape[0]
        moment1 = beta1 * moment1 + (1 - beta1) * gradient
        moment2 = beta2 * moment2 + (1 - beta2) * gradient**2
        moment1hat = moment1 / (1 - beta1 ** (iteration + 1))
        moment2hat = moment2 / (1 - beta2 ** (iteration + 1))
        weights = weights - alpha * moment1hat / (np.sqrt(moment2hat) + epsilon)
        mse = np.mean(error**2)  # the article tracks the MSE every iteration
    return weights, mse


def _excess(mse, mse_opt):
    return max(mse - mse_opt, 0.0) / mse_opt


def tall_dense(sizes: Sizes):
    """Time to reach MSE <= (1 + 1e-6) * OLS MSE, against every peer."""
    n, d = sizes.tall
    X, y = tall_problem(n, d)
    rows, traces = [], {}
    case = f"tall dense {n:,} x {d}: time to {TARGET_EXCESS:g} excess MSE"

    ols_time, ols = median_time(lambda: LinearRegression().fit(X, y), sizes.repeats)
    mse_opt = np.mean((y - ols.predict(X)) ** 2)
    tol = (1 + TARGET_EXCESS) * mse_opt
    rows.append((case, "LinearRegression().fit", ols_time, "closed form (reference)"))
    # the closed form that tall data should be measured against: one X'X and
    # a Cholesky solve (LinearRegression's SVD-based lstsq is memory-bound)
    ridge_time, _ = median_time(
        lambda: Ridge(alpha=1e-10, solver="cholesky").fit(X, y), sizes.repeats
    )
    rows.append((case, "Ridge(alpha=1e-10, solver='cholesky')", ridge_time, "peer"))
    default_time, default = median_time(
        lambda: AdamRegressor().fit(X, y), sizes.repeats
    )
    rows.append(
        (
            case,
            "AdamRegressor() (defaults)",
            default_time,
            f"{default.n_iter_} iterations, stop: {default.stop_reason_}; "
            f"{default_time / ols_time:.2f} x LinearRegression, "
            f"{default_time / ridge_time:.2f} x Ridge(cholesky)",
        )
    )

    adam_time, adam = median_time(
        lambda: AdamRegressor(tol=tol).fit(X, y), sizes.repeats
    )
    steps = adam.n_iter_
    rows.append(
        (
            case,
            "AdamRegressor(tol=...)",
            adam_time,
            f"{steps} iterations, stop: {adam.stop_reason_}; "
            f"{adam_time / ols_time:.2f} x LinearRegression",
        )
    )
    traces["AdamRegressor"] = _adam_trace(X, y, mse_opt, steps)

    # the article's loop, for the same number of steps, on the same
    # standardized coordinates as AdamRegressor (so it converges the same way)
    Xs = StandardScaler().fit_transform(X)
    yc = y - y.mean()
    seed_time, _ = median_time(lambda: seed_loop(Xs, yc, 0.1, steps), sizes.repeats)
    rows.append(
        (
            case,
            "seed loop (plain numpy), same steps",
            seed_time,
            f"{steps} steps; AdamRegressor is {seed_time / adam_time:.0f} x faster",
        )
    )
    rows += _torch_rows(case, Xs, yc, steps, adam_time, sizes.repeats)
    # a longer run, where the one pass that builds the statistics is amortised
    long = sizes.long_steps
    long_case = f"tall dense {n:,} x {d}: {long:,} iterations, no early stop"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        adam_long, _ = median_time(
            lambda: AdamRegressor(max_iter=long, n_iter_no_change=None).fit(X, y),
            sizes.repeats,
        )
    seed_long, _ = median_time(lambda: seed_loop(Xs, yc, 0.1, long), sizes.repeats)
    rows.append((long_case, "AdamRegressor(max_iter=...)", adam_long, ""))
    rows.append(
        (
            long_case,
            "seed loop (plain numpy), same steps",
            seed_long,
            f"AdamRegressor is {seed_long / adam_long:.0f} x faster",
        )
    )
    for name, make, unit in _stochastic_peers():
        row, trace = _stochastic_time_to_target(
            name, make, unit, X, y, mse_opt, sizes.peer_budget_s
        )
        rows.append((case, *row))
        traces[name] = trace
    return rows, traces, mse_opt


def exactness(sizes: Sizes):
    """R^2 short of exact least squares (refined in extended precision,
    evaluated in extended precision: :mod:`benchmarks.designs`) on designs
    of growing condition number, for the default fit and the closed forms
    users compare it with."""
    from scipy.linalg import lstsq

    from .designs import exact_r2, extended_r2, ill_conditioned, standardized_condition

    rows = []
    for condition in sizes.conditions:
        X, y = ill_conditioned(condition)
        best = exact_r2(X, y)
        case = (
            f"exactness, {X.shape[0]} x {X.shape[1]}, standardized condition "
            f"number {standardized_condition(X):.1e}: R^2 short of least squares"
        )
        mean = X.mean(axis=0)
        centred = lstsq(X - mean, y - y.mean())[0]
        fits = {
            "AdamRegressor()": AdamRegressor().fit(X, y),
            "LinearRegression()": LinearRegression().fit(X, y),
            RIDGE: Ridge(alpha=1e-10, solver="cholesky").fit(X, y),
        }
        for name, est in fits.items():
            gap = best - extended_r2(X, y, est.coef_, est.intercept_)
            note = f"{gap:.1e}"
            if name == "AdamRegressor()":
                note += f" ({est.n_iter_} iterations, stop: {est.stop_reason_})"
            rows.append((case, name, float("nan"), note))
        gap = best - extended_r2(X, y, centred, y.mean() - mean @ centred)
        rows.append(
            (case, "scipy.linalg.lstsq (centred X)", float("nan"), f"{gap:.1e}")
        )
    return rows


RIDGE = "Ridge(alpha=1e-10, solver='cholesky')"
STATS = "gram_stats (the statistics pass)"
STATS_NUMPY = "gram_stats without numba (SK_ADAM_NO_NUMBA=1)"


def _without_numba(run):
    """``run`` as a process without numba runs it: the numpy pass."""

    def without():
        os.environ["SK_ADAM_NO_NUMBA"] = "1"
        try:
            return run()
        finally:
            del os.environ["SK_ADAM_NO_NUMBA"]

    return without


def _full_batch_contenders(X, y):
    return {
        "LinearRegression()": lambda: LinearRegression().fit(X, y),
        RIDGE: lambda: Ridge(alpha=1e-10, solver="cholesky").fit(X, y),
        "AdamRegressor()": lambda: AdamRegressor().fit(X, y),
    }


def _statistics_contenders(X, y):
    from sk_adam._statistics import gram_stats

    Y, s = y[:, None], np.full(len(y), 1.0 / len(y))
    return {
        "X.T @ X": lambda: X.T @ X,
        STATS: lambda: gram_stats(X, Y, s),
        STATS_NUMPY: _without_numba(lambda: gram_stats(X, Y, s)),
    }


#: A contender's turn in :func:`full_batch` lasts about this long: a call
#: shorter than that is repeated within the turn and the turn's mean taken
#: (one 0.07 ms ``X.T @ X`` timed alone varies by half between turns).
TURN_S = 0.02


def _calls_per_turn(run) -> int:
    """How many calls of ``run`` fill one turn (timed from one call, after
    one call that warms it up)."""
    run()
    start = time.perf_counter()
    run()
    return max(1, min(1000, int(TURN_S / max(time.perf_counter() - start, 1e-6))))


def _in_turns(contenders, rounds):
    """Median seconds per call of each contender, in turns (one turn of
    each per round; a turn repeats a short call for about :data:`TURN_S`
    and counts its mean)."""
    calls = {name: _calls_per_turn(run) for name, run in contenders.items()}
    times = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            start = time.perf_counter()
            for _ in range(calls[name]):
                run()
            times[name].append((time.perf_counter() - start) / calls[name])
    return {name: statistics.median(t) for name, t in times.items()}


def full_batch(sizes: Sizes):
    """Default full-batch fits against the closed forms, then the statistics
    pass against one ``X.T @ X``: contenders in turns (:func:`_in_turns`,
    ``sizes.rounds`` rounds), medians, ratios within a size.

    BLAS keeps its own threads, scikit-learn's OpenMP its own: timed in the
    same rounds as the fits, ``X.T @ X`` at 100,000 x 50 took 7-19 ms as
    the pools took turns, so the statistics pass is timed in rounds of its
    own, with ``X.T @ X`` only. The compiled pass uses no BLAS (two Python
    threads over large inputs); the numpy pass holds BLAS to one thread per
    Python thread while it runs its two."""
    rows = []
    for n, d in sizes.full_batch:
        X, y = tall_problem(n, d)
        med = _in_turns(_full_batch_contenders(X, y), sizes.rounds)
        adam = AdamRegressor().fit(X, y)
        fit = med["AdamRegressor()"]
        note = (
            f"{adam.n_iter_} iterations, stop: {adam.stop_reason_}; "
            f"{fit / med['LinearRegression()']:.2f} x LinearRegression, "
            f"{fit / med[RIDGE]:.2f} x Ridge(cholesky)"
        )
        case = f"full batch {n:,} x {d}, defaults"
        rows += [
            (case, name, med[name], note if name == "AdamRegressor()" else "")
            for name in med
        ]
        med = _in_turns(_statistics_contenders(X, y), sizes.rounds)
        notes = {
            STATS: f"{med[STATS] / med['X.T @ X']:.2f} x X.T @ X (compiled pass)",
            STATS_NUMPY: f"{med[STATS_NUMPY] / med['X.T @ X']:.2f} x X.T @ X",
        }
        case = f"statistics pass {n:,} x {d} (in rounds of its own)"
        rows += [(case, name, med[name], notes.get(name, "")) for name in med]
    return rows


def _adam_trace(X, y, mse_opt, steps):
    trace = []
    for k in sorted({1, 3, 10, 30, 100, 300, 1000, steps}):
        if k > steps:
            break
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t, est = median_time(
                lambda k=k: AdamRegressor(max_iter=k, n_iter_no_change=None).fit(X, y),
                1,
            )
        trace.append((t, _excess(np.mean((y - est.predict(X)) ** 2), mse_opt)))
    return trace


def _stochastic_peers():
    """(name, factory(n_iter) -> estimator, what one unit of n_iter is)."""
    return [
        (
            "StandardScaler + SGDRegressor",
            lambda k: make_pipeline(
                StandardScaler(),
                SGDRegressor(max_iter=k, tol=None, random_state=0),
            ),
            "epochs",
        ),
        (
            "StandardScaler + MLPRegressor(solver='adam', hidden_layer_sizes=())",
            lambda k: make_pipeline(
                StandardScaler(),
                MLPRegressor(
                    hidden_layer_sizes=(),
                    solver="adam",
                    max_iter=k,
                    tol=0.0,
                    n_iter_no_change=10**9,
                    random_state=0,
                ),
            ),
            "epochs",
        ),
    ]


def _stochastic_time_to_target(name, make, unit, X, y, mse_opt, budget):
    """Double the epochs until the target is met or the time budget is spent."""
    trace, spent, k = [], 0.0, 1
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t, est = median_time(lambda k=k: make(k).fit(X, y), 1)
        spent += t
        excess = _excess(np.mean((y - est.predict(X)) ** 2), mse_opt)
        trace.append((t, excess))
        if excess <= TARGET_EXCESS:
            return (name, t, f"reached with {k} {unit}"), trace
        if spent + 2 * t > budget:
            best = min(e for _, e in trace)
            return (
                name,
                float("nan"),
                f"not reached: best excess {best:.1e} after {k} {unit} "
                f"({spent:.1f} s spent)",
            ), trace
        k *= 2


def _torch_rows(case, Xs, yc, steps, adam_time, repeats):
    try:
        import torch
    except ImportError:
        return [(case, "torch.optim.Adam", float("nan"), "torch not installed")]
    Xt = torch.from_numpy(Xs)
    yt = torch.from_numpy(yc)

    def run(n_steps):
        w = torch.zeros(Xs.shape[1], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([w], lr=0.1)
        for _ in range(n_steps):
            opt.zero_grad()
            loss = 0.5 * torch.mean((yt - Xt @ w) ** 2)
            loss.backward()
            opt.step()
        return w

    run(2)  # the first call initialises torch's kernels; not timed
    seconds, _ = median_time(lambda: run(steps), repeats)
    return [
        (
            case,
            f"torch.optim.Adam {torch.__version__} (CPU, full batch), same steps",
            seconds,
            f"{1e3 * seconds / steps:.2f} ms/step; AdamRegressor is "
            f"{seconds / adam_time:.0f} x faster",
        )
    ]


def seconds_per_iteration(X, y, n_iter, repeats):
    """(time of n_iter iterations - time of 1) / (n_iter - 1), and the fit.

    Differencing two fits removes validation and set-up from the figure.
    """

    def fit(k):
        est = AdamRegressor(max_iter=k, n_iter_no_change=None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return est.fit(X, y)

    many, est = median_time(lambda: fit(n_iter), repeats)
    one, _ = median_time(lambda: fit(1), repeats)
    return (many - one) / (n_iter - 1), est


def per_step(sizes: Sizes):
    """Microseconds per iteration on the statistics path, d = 10 and 100."""
    rows = []
    rng = np.random.RandomState(1)
    for d in sizes.step_d:
        X = rng.randn(sizes.step_n, d)
        y = X @ rng.randn(d) + rng.randn(sizes.step_n)
        step, est = seconds_per_iteration(X, y, sizes.step_iters, sizes.repeats)
        rows.append(
            (
                f"per-step overhead, {sizes.step_n:,} x {d}",
                f"AdamRegressor (precomputed_={est.precomputed_})",
                step,
                f"{1e6 * step:.1f} us per iteration",
            )
        )
    return rows


def _sparse_problem(n, d, per_row, seed=2):
    rng = np.random.RandomState(seed)
    nnz = n * per_row
    X = sp.csr_array(
        (rng.randn(nnz), rng.randint(0, d, nnz), np.arange(0, nnz + 1, per_row)),
        shape=(n, d),
    )
    X.sum_duplicates()
    return X, rng.randn(n)


def direct_steps(sizes: Sizes):
    """Time per iteration on the direct path against its two products."""
    rng = np.random.RandomState(3)
    n, d = sizes.wide
    wide = (rng.randn(n, d), rng.randn(n))
    sparse = _sparse_problem(*sizes.sparse, sizes.sparse_nnz_per_row)
    rows = []
    for label, (X, y) in [
        (f"wide dense {n:,} x {d:,}", wide),
        (
            f"sparse {sizes.sparse[0]:,} x {sizes.sparse[1]:,}, "
            f"{sizes.sparse_nnz_per_row} nnz/row",
            sparse,
        ),
    ]:
        # the reference and AdamRegressor are timed alternately, 100
        # iterations each, so that both see the same state of the machine;
        # the ratio is the median of the per-round ratios
        products, steps, ratios = [], [], []
        for _ in range(max(3, sizes.repeats)):
            products.append(_chained_products(X, 100))
            step, est = seconds_per_iteration(X, y, 100, 1)
            steps.append(step)
            ratios.append(step / products[-1])
        rows.append(
            (
                f"{label}: time per iteration",
                "X @ u and X.T @ r",
                statistics.median(products),
                "reference, 100 chained iterations",
            )
        )
        rows.append(
            (
                f"{label}: time per iteration",
                f"AdamRegressor (precomputed_={est.precomputed_})",
                statistics.median(steps),
                f"{statistics.median(ratios):.2f} x the two products (rounds: "
                + ", ".join(f"{q:.2f}" for q in ratios)
                + ")",
            )
        )
    return rows


def _chained_products(X, n_iter):
    """Seconds per iteration of ``r = y - X @ u; g = X.T @ r`` repeated."""
    rng = np.random.RandomState(0)
    u, y = rng.randn(X.shape[1]), rng.randn(X.shape[0])
    start = time.perf_counter()
    for _ in range(n_iter):
        r = y - X @ u
        u = X.T @ r * 1e-3
    return (time.perf_counter() - start) / n_iter


def memory(sizes: Sizes):
    """Peak memory allocated during fit, as a fraction of X.nbytes."""
    n, d = sizes.tall
    X, y = tall_problem(n, d, seed=4)
    rows = []
    variants = [
        ("C float64", X),
        ("F float64", np.asfortranarray(X)),
        ("C float32", X.astype(np.float32)),
        ("F float32", np.asfortranarray(X, dtype=np.float32)),
    ]
    for label, Xv in variants:
        for precompute in (True, False):
            est = AdamRegressor(
                max_iter=20, n_iter_no_change=None, precompute=precompute
            )
            tracemalloc.start()
            try:
                base = tracemalloc.get_traced_memory()[0]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    est.fit(Xv, y)
                peak = tracemalloc.get_traced_memory()[1] - base
            finally:
                tracemalloc.stop()
            rows.append(
                (
                    f"peak extra memory of fit, {n:,} x {d} {label}",
                    f"AdamRegressor(precompute={precompute})",
                    float("nan"),
                    f"{peak / Xv.nbytes:.3f} x X.nbytes ({peak / 2**20:.1f} MiB)",
                )
            )
    return rows


def grid_search(sizes: Sizes):
    """alpha x beta1 x beta2, 5 folds, on diabetes, against MLPRegressor."""
    X, y = load_diabetes(return_X_y=True)
    cv = KFold(5, shuffle=True, random_state=0)
    na, nb1, nb2 = sizes.grid
    grid = {
        "alpha": [0.1, 0.03, 0.3][:na],
        "beta1": [0.9, 0.8, 0.95][:nb1],
        "beta2": [0.999, 0.99, 0.9999][:nb2],
    }
    n_fits = 5 * na * nb1 * nb2
    case = f"GridSearchCV on diabetes, {na * nb1 * nb2} settings x 5 folds"
    rows = []
    peers = [
        ("AdamRegressor", AdamRegressor(), {}),
        (
            "MLPRegressor(solver='adam', hidden_layer_sizes=())",
            MLPRegressor(hidden_layer_sizes=(), max_iter=2000, random_state=0),
            {"alpha": "learning_rate_init", "beta1": "beta_1", "beta2": "beta_2"},
        ),
    ]
    for name, est, spelled in peers:
        pipe = make_pipeline(StandardScaler(), est)
        step = pipe.steps[-1][0]
        params = {f"{step}__{spelled.get(k, k)}": v for k, v in grid.items()}
        search = GridSearchCV(pipe, params, cv=cv)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            seconds, _ = median_time(lambda s=search: s.fit(X, y), sizes.repeats)
        rows.append(
            (
                case,
                f"StandardScaler + {name}",
                seconds,
                f"{n_fits} fits, best CV R^2 {search.best_score_:.4f}",
            )
        )
    return rows


_NUMPY_NAME = "AdamRegressor(batch_size=256), numpy epoch"


def minibatch(sizes: Sizes):
    """Samples per second of partial_fit passes over the same chunks.

    Every model gets the same standardized data in the same chunks; AdamRegressor
    uses batch_size 256, like MLPRegressor's batches here. Rows are shuffled
    within each chunk (each estimator's own shuffle) or not at all. AdamRegressor
    runs twice: with its compiled epoch (numba installed) and with the numpy
    implementation (``SK_ADAM_NO_NUMBA=1``). Each model's first pass and its
    second (a stream that goes on: see :func:`_throughput`) are timed apart.
    The models take turns, two passes each per round, so that a slow spell
    of the machine hits them all; the times are medians over the rounds.
    """
    n, d = sizes.tall
    X, y = tall_problem(n, d, seed=5)
    X = StandardScaler().fit_transform(X)
    rows = []
    for shuffle in (True, False):
        case = (
            f"partial_fit throughput, {n:,} x {d} in chunks of {n // 10:,}, "
            f"{'shuffled' if shuffle else 'unshuffled'} rows"
        )
        peers = [
            *_adam_and_sgd(shuffle, standardize=True),
            (
                "MLPRegressor(solver='adam', hidden_layer_sizes=(), batch_size=256)",
                lambda s=shuffle: MLPRegressor(
                    hidden_layer_sizes=(),
                    batch_size=min(256, n // 10),
                    shuffle=s,
                    random_state=0,
                ),
            ),
        ]
        rows += _throughput(case, X, y, peers, sizes)
    return rows


def sparse_minibatch(sizes: Sizes):
    """:func:`minibatch` on sparse rows (CSR chunks, shuffled), where
    SGDRegressor's updates cost what the stored entries cost, while Adam's
    update touches every coefficient once per batch: 20 stored entries in
    1,000 columns, and 30 in 65,536 (feature hashing's size)."""
    n = sizes.tall[0]
    rows = []
    for d, per_row in ((1000, 20), (2**16, 30)):
        rng = np.random.RandomState(9)
        nnz = n * per_row
        X = sp.csr_matrix(
            (rng.randn(nnz), rng.randint(0, d, nnz), np.arange(0, nnz + 1, per_row)),
            shape=(n, d),
        )
        X.sum_duplicates()  # SGDRegressor takes only 32-bit indices
        X.indices, X.indptr = X.indices.astype(np.int32), X.indptr.astype(np.int32)
        y = X @ (rng.randn(d) * (rng.rand(d) < 0.1)) + 0.1 * rng.randn(n)
        case = (
            f"partial_fit throughput, sparse {n:,} x {d:,} ({per_row} stored per "
            f"row) in chunks of {n // 10:,}, shuffled rows"
        )
        peers = _adam_and_sgd(True, standardize=False)
        rows += _throughput(case, X, y, peers, sizes)
    return rows


_COMPILED_NAME = "AdamRegressor(batch_size=256)"


def _adam_and_sgd(shuffle, standardize):
    def adam(s=shuffle):
        return AdamRegressor(
            batch_size=256,
            alpha=1e-3,
            shuffle=s,
            random_state=0,
            standardize=standardize,
        )

    return [
        (_COMPILED_NAME, adam),
        (_NUMPY_NAME, adam),
        ("SGDRegressor", lambda s=shuffle: SGDRegressor(shuffle=s, random_state=0)),
    ]


def _throughput(case, X, y, peers, sizes):
    """Rows of one throughput case: ten chunks; per model and round, a new
    estimator's first pass over them, then its second pass.

    The first pass includes what a stream's first call sets up (for
    AdamRegressor with ``standardize=True``, a pass for the column
    statistics); the second is what every later chunk of a stream costs.
    """
    n = X.shape[0]
    chunk = max(n // 10, 1)
    chunks = [(X[i : i + chunk], y[i : i + chunk]) for i in range(0, n, chunk)]

    def two_passes(name, make):
        with _numpy_epoch(name == _NUMPY_NAME):
            est = make()
            seconds = []
            for _ in range(2):
                start = time.perf_counter()
                for Xc, yc in chunks:
                    est.partial_fit(Xc, yc)
                seconds.append(time.perf_counter() - start)
            return seconds, est

    for name, make in peers:
        two_passes(name, make)  # compiles (or loads) the kernel outside the timing
    times = {name: ([], []) for name, _ in peers}
    fitted = {}
    for _ in range(sizes.throughput_repeats):
        for name, make in peers:
            seconds, fitted[name] = two_passes(name, make)
            for kept, value in zip(times[name], seconds, strict=True):
                kept.append(value)
    return _throughput_rows(case, X, y, peers, times, fitted)


def _throughput_rows(case, X, y, peers, times, fitted):
    """The table rows of :func:`_throughput`'s timings: medians, and the
    ratio to SGDRegressor with its range over the rounds."""
    n = X.shape[0]
    rows = []
    for which, label in ((0, "first pass"), (1, "second pass")):
        for name, _ in peers:
            mine = times[name][which]
            seconds = statistics.median(mine)
            note = f"{n / seconds / 1e6:.2f} M samples/s"
            if which == 1:
                note += f", R^2 after both {fitted[name].score(X, y):.4f}"
            if name in (_COMPILED_NAME, _NUMPY_NAME):
                sgd = times["SGDRegressor"][which]
                ratio = statistics.median(sgd) / seconds
                rounds = np.divide(sgd, mine)
                note += (
                    f"; {ratio:.2f} x SGDRegressor's throughput "
                    f"(rounds: {rounds.min():.2f} to {rounds.max():.2f})"
                )
            rows.append((f"{case}, {label}", name, seconds, note))
    return rows


@contextlib.contextmanager
def _numpy_epoch(on: bool):
    """Run AdamRegressor's numpy epoch instead of the compiled one."""
    old = os.environ.get("SK_ADAM_NO_NUMBA")
    if on:
        os.environ["SK_ADAM_NO_NUMBA"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SK_ADAM_NO_NUMBA", None)
        else:
            os.environ["SK_ADAM_NO_NUMBA"] = old


def minibatch_accuracy(sizes: Sizes):
    """R^2 of mini-batch fit (batch 256) against LinearRegression."""
    n, d = sizes.tall
    X, y = tall_problem(n, d, seed=6)
    ols = LinearRegression().fit(X, y).score(X, y)
    est = AdamRegressor(batch_size=256, alpha=1e-3, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        seconds, est = median_time(lambda: est.fit(X, y), sizes.repeats)
    rows = [
        (
            f"mini-batch fit, {n:,} x {d}, batch 256, alpha 1e-3, 5 epochs",
            "AdamRegressor",
            seconds,
            f"R^2 gap to LinearRegression {ols - est.score(X, y):.1e}",
        )
    ]
    default = AdamRegressor(batch_size=256, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        seconds, default = median_time(lambda: default.fit(X, y), sizes.repeats)
    rows.append(
        (
            f"mini-batch fit, {n:,} x {d}, batch 256, defaults (stall rule)",
            "AdamRegressor",
            seconds,
            f"{default.n_iter_} epochs, {default.alpha_decays_} decays of alpha; "
            f"R^2 gap to LinearRegression {ols - default.score(X, y):.1e}",
        )
    )
    return rows


def _stream_peers(X, y):
    """The defaults-only contenders of :func:`stream_defaults`: each gets
    the chunks it is given, fresh, with every parameter at its default
    (``random_state`` aside)."""
    scaled = StandardScaler().fit_transform(X)  # all rows up front, not timed
    return [
        ("AdamRegressor()", lambda: AdamRegressor(random_state=0), X),
        ("SGDRegressor()", lambda: SGDRegressor(random_state=0), X),
        ("SGDRegressor() on scaled rows", lambda: SGDRegressor(random_state=0), scaled),
        (
            "MLPRegressor(hidden_layer_sizes=())",
            lambda: MLPRegressor(hidden_layer_sizes=(), random_state=0),
            X,
        ),
        (
            "MLPRegressor(hidden_layer_sizes=()) on scaled rows",
            lambda: MLPRegressor(hidden_layer_sizes=(), random_state=0),
            scaled,
        ),
    ]


def stream_defaults(sizes: Sizes):
    """One ``partial_fit`` pass with default parameters, as a new user would
    make it: 200,000 x 50 (mixed scales and offsets, rows in random order)
    in ten chunks; the R^2 short of least squares and the time of the pass.

    SGDRegressor and MLPRegressor (``solver='adam'``, no hidden layer: a
    linear model) need scaled features; they get them both raw, as given,
    and scaled by a StandardScaler fitted on every row beforehand (which a
    stream would not have, and whose time is not counted). AdamRegressor
    gets the raw rows. The models take turns, one pass each per round,
    medians over ``sizes.throughput_repeats`` rounds; each starts fresh.
    AdamRegressor's compiled epoch and SGDRegressor run on one thread,
    MLPRegressor's products on BLAS's threads.
    """
    n, d = sizes.tall
    X, y = tall_problem(n, d, seed=7)
    exact = LinearRegression().fit(X, y).score(X, y)
    chunk = max(n // 10, 1)
    peers = _stream_peers(X, y)

    def one_pass(make, data):
        est = make()
        start = time.perf_counter()
        for i in range(0, n, chunk):
            est.partial_fit(data[i : i + chunk], y[i : i + chunk])
        return time.perf_counter() - start, est

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLPRegressor's, and overflows
        for _, make, data in peers:
            one_pass(make, data)  # builds (or loads) the compiled epoch
        times = {name: [] for name, _, _ in peers}
        fitted = {}
        for _ in range(sizes.throughput_repeats):
            for name, make, data in peers:
                seconds, fitted[name] = one_pass(make, data)
                times[name].append(seconds)
    case = (
        f"partial_fit, one pass with defaults, {n:,} x {d} in chunks of "
        f"{chunk:,} (R^2 short of least squares)"
    )
    sgd = statistics.median(times["SGDRegressor() on scaled rows"])
    rows = []
    for name, _, data in peers:
        seconds = statistics.median(times[name])
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gap = exact - fitted[name].score(data, y)
        note = f"{gap:.1e}" if np.isfinite(gap) and abs(gap) < 1e6 else "diverged"
        note += f"; {seconds / sgd:.2f} x the time of SGDRegressor on scaled rows"
        rows.append((case, name, seconds, note))
    return rows


def _generated_block(block_id, rows, d, seed):
    """Rows of a synthetic regression problem, made where they are needed."""
    rng = np.random.default_rng([seed, block_id])
    X = rng.standard_normal((rows, d))
    X[:, : d // 2] += 100.0  # offsets
    y = X @ np.linspace(-1, 1, d) + rng.standard_normal(rows)
    return np.c_[X, y]


def _rss_mib():
    import psutil  # a dependency of distributed

    return psutil.Process().memory_info().rss / 2**20


class _WorkerMemory:
    """Largest resident memory of any worker, sampled every 50 ms."""

    def __init__(self, client):
        import threading

        self.client, self.peak, self._stop = client, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, *self.client.run(_rss_mib).values())
            self._stop.wait(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def _environment_kept():
    """Restore ``os.environ`` on leaving: distributed's LocalCluster leaves
    ``OMP_NUM_THREADS=1``, ``OPENBLAS_NUM_THREADS=1`` and
    ``MALLOC_TRIM_THRESHOLD_=65536`` in this process's environment, which
    every later subprocess would inherit (the file cases run in fresh
    processes: glibc then returns memory to the system after each chunk,
    and sk-adam's file pass ran 1.7 times slower)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def dask_scale(sizes: Sizes):
    """A dask array fitted on a 2-worker LocalCluster against the same data
    in memory. Needs the [dask] extra; skipped in the table otherwise."""
    with _environment_kept():
        return _dask_scale(sizes)


def _dask_scale(sizes: Sizes):
    case = f"dask, {sizes.dask[0]:,} x {sizes.dask[1]} float64"
    try:
        import dask.array as da
        from distributed import Client, LocalCluster
    except ImportError:
        return [(case, "AdamRegressor on dask", float("nan"), "dask not installed")]
    n, d = sizes.dask
    rows_per_block = sizes.dask_block
    n_blocks = n // rows_per_block
    blocks = [
        da.from_delayed(
            _delayed_block(i, rows_per_block, d), (rows_per_block, d + 1), np.float64
        )
        for i in range(n_blocks)
    ]
    Xy = da.concatenate(blocks)
    X, y = Xy[:, :d], Xy[:, d]
    block_mib = rows_per_block * (d + 1) * 8 / 2**20
    rows = []
    with (
        LocalCluster(
            host="127.0.0.1",
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        from distributed import wait

        baseline = max(client.run(_rss_mib).values())
        with _WorkerMemory(client) as sampler:
            on_the_fly, _ = median_time(
                lambda: AdamRegressor().fit(X, y), sizes.repeats
            )
        peak = sampler.peak
        generated_peers = _dask_ml_fits(client, X, y)
        generate_only, _ = median_time(lambda: Xy.sum().compute(), sizes.repeats)
        Xp, yp = X.persist(), y.persist()
        wait([Xp, yp])
        persisted, est_p = median_time(
            lambda Xp=Xp, yp=yp: AdamRegressor().fit(Xp, yp), sizes.repeats
        )
        peers = _dask_peers(client, Xp, yp, sizes)
    memory = np.concatenate(
        [_generated_block(i, rows_per_block, d, 0) for i in range(n_blocks)]
    )
    Xm, ym = memory[:, :d], memory[:, d]
    in_memory, est_m = median_time(
        lambda Xm=Xm, ym=ym: AdamRegressor().fit(Xm, ym), sizes.repeats
    )
    peers["in memory epochs"] = median_time(lambda: _epochs(Xm, ym), 1)
    gap = np.max(np.abs(est_p.coef_ - est_m.coef_) / np.abs(est_m.coef_))
    rows.append(
        (
            case,
            "AdamRegressor().fit, numpy array in memory",
            in_memory,
            f"{est_m.n_iter_} iterations",
        )
    )
    rows.append(
        (
            case,
            "AdamRegressor().fit, dask array persisted on 2 workers",
            persisted,
            f"{persisted / in_memory:.2f} x in memory; coefficients equal to "
            f"{gap:.1e} relative",
        )
    )
    rows.append(
        (
            case,
            "AdamRegressor().fit, dask array generated blockwise during the fit",
            on_the_fly,
            f"{on_the_fly / in_memory:.2f} x in memory including generating the "
            f"data, {(on_the_fly - generate_only) / in_memory:.2f} x net of it "
            f"(the row below); largest worker memory {peak:.0f} MiB "
            f"({baseline:.0f} MiB before), blocks of {block_mib:.0f} MiB",
        )
    )
    rows.append(
        (
            case,
            "generating the same blocks and summing them (no fit)",
            generate_only,
            "what the fit above spends on making the data",
        )
    )
    rows += _peer_rows(case, peers, Xm, ym, est_m)
    for name, result in generated_peers.items():
        if result is None:
            rows.append((case, name, float("nan"), "dask-ml not installed"))
            continue
        seconds, est, worker_peak, client_rise = result
        rows.append(
            (
                case,
                f"{name}, blocks generated during the fit",
                seconds,
                f"{seconds / on_the_fly:.1f} x AdamRegressor's time on the same "
                f"generated blocks; {_quality(est, Xm, ym, est_m)}; largest worker "
                f"memory {worker_peak:.0f} MiB, client +{client_rise:.0f} MiB",
            )
        )
    return rows


def _dask_ml_fits(client, X, y):
    """dask-ml's estimators fitted on ``X``, ``y`` (one run each): time,
    the fitted model, the largest worker memory and the client's rise
    (MiB), or None where dask-ml is missing."""
    result = {}
    for name, make in _dask_ml_peers():
        if make is None:
            result[name] = None
            continue
        with _WorkerMemory(client) as workers, _ClientMemory() as memory:
            start = time.perf_counter()
            est = make().fit(X, y)
            seconds = time.perf_counter() - start
        result[name] = (seconds, est, workers.peak, memory.rise)
    return result


def _quality(est, Xm, ym, reference):
    """R^2 short of the in-memory AdamRegressor fit, or 'diverged'."""
    pred = np.asarray(est.predict(Xm))
    with np.errstate(all="ignore"):
        r2 = 1 - np.sum((ym - pred) ** 2) / np.sum((ym - ym.mean()) ** 2)
    best = reference.score(Xm, ym)
    if best - r2 < 1:
        return f"R^2 {best - r2:.1e} short of AdamRegressor's"
    return f"R^2 {r2:.3g}: diverged"


def _dask_peers(client, X, y, sizes):
    """Persisted ``X``, ``y`` on the cluster: one bare pass, sk-adam's fit
    with the workers' compiled statistics pass built (as long-running
    workers build it), the same data as a dask DataFrame (the client's
    memory sampled), and dask-ml's estimators. Contenders in turns,
    ``sizes.dask_rounds`` rounds; dask-ml's (seconds to a minute each) one
    round after them."""
    import dask
    import dask.dataframe as dd

    from sk_adam import _kernel

    client.run(_kernel.compiled, "stats")
    Xf = dd.from_dask_array(X, columns=[f"x{j}" for j in range(X.shape[1])])
    yf = dd.from_dask_array(y)
    Xf, yf = client.persist([Xf, yf])
    contenders = {
        BARE: lambda: dask.compute(X.sum(axis=0), y.sum()),
        COMPILED_WORKERS: lambda: AdamRegressor().fit(X, y),
        FRAME: lambda: AdamRegressor().fit(Xf, yf),
    }
    times = {name: [] for name in contenders}
    fitted, rises = {}, dict.fromkeys(contenders, 0.0)
    for _ in range(sizes.dask_rounds):
        for name, run in contenders.items():
            with _ClientMemory() as memory:
                start = time.perf_counter()
                fitted[name] = run()
                times[name].append(time.perf_counter() - start)
            rises[name] = max(rises[name], memory.rise)
    with _ClientMemory() as memory:
        lazy = fitted[FRAME].predict(Xf)
        lazy.sum().compute()
    result = {name: (statistics.median(t), fitted[name]) for name, t in times.items()}
    result["client"] = (rises, memory.rise, type(lazy).__name__)
    start = time.perf_counter()
    est = _epochs(X, y)
    result[MINIBATCH] = (time.perf_counter() - start, est)
    result.update(_dask_ml_fits(client, X, y))
    return result


BARE = "one bare pass over the persisted blocks (X.sum(axis=0), y.sum())"
MINIBATCH = "AdamRegressor(batch_size=256).fit, 5 epochs, steps on the workers"


def _epochs(X, y):
    """Five epochs of mini-batches (no stopping rule): what an epoch over
    the blocks costs, on a cluster or in memory."""
    est = AdamRegressor(batch_size=256, max_iter=5, n_iter_no_change=None,
                        random_state=0)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


COMPILED_WORKERS = "AdamRegressor().fit, persisted, workers' compiled pass built"
FRAME = "AdamRegressor().fit, the same rows as a persisted dask DataFrame"


def _dask_ml_peers():
    """(name, factory or None when dask-ml is missing)."""
    names = [
        "dask_ml LinearRegression() (admm)",
        "dask_ml LinearRegression(solver='newton')",
        "dask_ml Incremental(SGDRegressor()), one pass",
    ]
    try:
        from dask_ml.linear_model import LinearRegression as DaskLinearRegression
        from dask_ml.wrappers import Incremental
    except ImportError:
        return [(name, None) for name in names]
    return [
        (names[0], lambda: DaskLinearRegression()),
        (names[1], lambda: DaskLinearRegression(solver="newton")),
        (names[2], lambda: Incremental(SGDRegressor(random_state=0))),
    ]


def _peer_rows(case, peers, Xm, ym, reference):
    """Rows for :func:`_dask_peers`: times against the bare pass, R^2 short
    of the in-memory AdamRegressor fit (itself at least squares to 1e-9)."""
    bare = peers[BARE][0]
    best = reference.score(Xm, ym)
    rows = [(case, BARE, bare, "reference: reading every block once")]
    rises, predict_rise, kind = peers["client"]
    for name in (COMPILED_WORKERS, FRAME):
        seconds, est = peers[name]
        note = (
            f"{seconds / bare:.2f} x the bare pass; client memory "
            f"+{rises[name]:.0f} MiB during fit"
        )
        if name == FRAME:
            note += f", +{predict_rise:.0f} MiB during predict (a lazy {kind}, summed)"
        rows.append((case, name, seconds, note))
    seconds, est = peers[MINIBATCH]
    memory, local = peers["in memory epochs"]
    rows.append(
        (
            case,
            MINIBATCH,
            seconds,
            f"{seconds / memory:.2f} x the same epochs on the numpy array in "
            f"memory ({memory:.2f} s); R^2 {best - est.score(Xm, ym):.1e} "
            f"short (in memory {best - local.score(Xm, ym):.1e})",
        )
    )
    for name, _ in _dask_ml_peers():
        if peers[name] is None:
            rows.append((case, name, float("nan"), "dask-ml not installed"))
            continue
        seconds, est, _, client_rise = peers[name]
        ratio = seconds / peers[COMPILED_WORKERS][0]
        quality = _quality(est, Xm, ym, reference)
        rows.append(
            (
                case,
                name,
                seconds,
                f"{ratio:.1f} x AdamRegressor's time; {quality}; client "
                f"+{client_rise:.0f} MiB",
            )
        )
    return rows


class _ClientMemory:
    """The rise of this process's resident memory within the block (MiB),
    sampled every 5 ms by a thread."""

    def __enter__(self):
        import threading

        self.rise, self._stop = 0.0, threading.Event()
        base = _rss_mib()

        def watch():
            while not self._stop.wait(0.005):
                self.rise = max(self.rise, _rss_mib() - base)

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _delayed_block(i, rows, d):
    from dask import delayed

    return delayed(_generated_block)(i, rows, d, 0)


def history_cost(sizes: Sizes):
    """Fit time and peak memory with record_history off and on."""
    n, d = sizes.tall
    X, y = tall_problem(n, d, seed=7)
    rows = []
    case = f"record_history, tall dense {n:,} x {d}, default fit"
    for record in (False, True):
        seconds, est = median_time(
            lambda r=record: AdamRegressor(record_history=r).fit(X, y), sizes.repeats
        )
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            AdamRegressor(record_history=record).fit(X, y)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        shape = "None" if est.history_ is None else f"step {est.history_.step.shape}"
        rows.append(
            (
                case,
                f"AdamRegressor(record_history={record})",
                seconds,
                f"{est.n_iter_} iterations; peak extra memory {peak / 2**20:.1f} MiB; "
                f"history_: {shape}",
            )
        )
    return rows


#: One measurement in a fresh process: ``{path}``, ``{target}`` and
#: ``{out}`` filled in; it prints the seconds from before its imports to the
#: end (``total``), of the call alone (``call``), and its peak resident
#: memory (``rss``, MiB, Linux's VmHWM).
_FILE_RUNS = {
    "pandas.read_csv": (
        "import pandas as pd; start = time.perf_counter(); pd.read_csv({path!r})"
    ),
    "pandas.read_parquet": (
        "import pandas as pd; start = time.perf_counter(); pd.read_parquet({path!r})"
    ),
    "pandas.read_csv + LinearRegression().fit": (
        "import pandas as pd; from sklearn.linear_model import LinearRegression; "
        "start = time.perf_counter(); frame = pd.read_csv({path!r}); "
        "LinearRegression().fit(frame.drop(columns={target!r}), frame[{target!r}])"
    ),
    "pandas.read_parquet + LinearRegression().fit": (
        "import pandas as pd; from sklearn.linear_model import LinearRegression; "
        "start = time.perf_counter(); frame = pd.read_parquet({path!r}); "
        "LinearRegression().fit(frame.drop(columns={target!r}), frame[{target!r}])"
    ),
    "AdamRegressor().fit(FileRows(...))": (
        "from sk_adam import AdamRegressor, FileRows; "
        "start = time.perf_counter(); "
        "AdamRegressor().fit(FileRows({path!r}, target={target!r}))"
    ),
    "sk-adam fit": (
        "from sk_adam._cli import main; start = time.perf_counter(); "
        "assert main(['fit', {path!r}, '--target', {target!r}, '--out', "
        "{out!r}, '--quiet']) == 0"
    ),
}


def _medians(runs):
    """The median of each measure over a contender's runs."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _file_run(name, path, out):
    import json
    import subprocess
    import sys

    code = (
        "import json, time; begin = time.perf_counter(); "
        + _FILE_RUNS[name].format(path=str(path), target="y", out=str(out))
        + "; end = time.perf_counter(); "
        # VmHWM: this process's own peak (ru_maxrss would carry the peak of
        # the benchmark process that forked it across the exec)
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')]; "
        "print(json.dumps({'total': end - begin, 'call': end - start, "
        "'rss': int(hwm[0].split()[1]) / 1024}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def files(sizes: Sizes):
    """``sk-adam fit`` and ``fit(FileRows(...))`` on a CSV and a Parquet file
    of ``sizes.file`` rows x columns (and a target), against pandas reading
    the same file whole, and reading it whole into LinearRegression (what a
    script would do without sk-adam): each run is a fresh process (so that its peak
    memory is its own, and numba's compiled steps are not built: a one-shot
    fit never pays for them), the contenders in turns, medians over
    ``sizes.repeats`` rounds. "call" times the read or the fit alone,
    "total" from before the imports (pandas; sk-adam with scikit-learn) to
    the end. pandas 3 reads a large CSV with one thread per core; sk-adam's
    pass reads two byte ranges in two threads, BLAS on one thread each.
    """
    import tempfile

    import pandas as pd

    n, d = sizes.file
    rng = np.random.default_rng(11)
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 3, d) + rng.uniform(-5, 5, d)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(d)])
    frame["y"] = X @ np.linspace(-1, 1, d) + rng.standard_normal(n)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        csv, parquet = Path(folder, "rows.csv"), Path(folder, "rows.parquet")
        frame.to_csv(csv, index=False, float_format="%.9g")
        frame.to_parquet(parquet, row_group_size=65_536)
        del frame
        out = Path(folder, "model.npz")
        ours = ("AdamRegressor().fit(FileRows(...))", "sk-adam fit")
        pairs = (
            (csv, ("pandas.read_csv", "pandas.read_csv + LinearRegression().fit",
                   *ours)),
            (parquet, ("pandas.read_parquet",
                       "pandas.read_parquet + LinearRegression().fit", *ours)),
        )  # fmt: skip
        for path, names in pairs:
            runs = {name: [] for name in names}
            for _ in range(sizes.repeats):
                for name in names:
                    runs[name].append(_file_run(name, path, out))
            mib = path.stat().st_size / 2**20
            bound = mib / 2 + 300
            kind = path.suffix[1:].upper() if path.suffix != ".csv" else "CSV"
            case = (
                f"a {kind} file of {n:,} x {d} and a target ({mib:.0f} MiB): "
                f"read or fit, peak memory (bound: half the file + 300 MiB = "
                f"{bound:.0f} MiB)"
            )
            reader = names[0]
            med = {name: _medians(runs[name]) for name in names}
            for name in names:
                m = med[name]
                note = f"total {m['total']:.2f} s with imports; peak {m['rss']:.0f} MiB"
                if name in ours:
                    script = med[names[1]]
                    note += (
                        f"; {m['call'] / med[reader]['call']:.2f} x {reader}'s call, "
                        f"{m['total'] / script['total']:.2f} x the total of "
                        f"{names[1]}"
                    )
                rows.append((case, name, m["call"], note))
    return rows
