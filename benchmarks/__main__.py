"""Benchmarks: ``python -m benchmarks [--quick] [--out DIR]``.

Runs every case of :mod:`benchmarks.suite` in one process, so that each
AdamRegressor timing sits next to peers measured in the same run (medians of
``--repeats`` runs), and writes ``results/latest.md`` (with the machine it ran
on) and ``results/suboptimality.png`` (when matplotlib is installed).
``--quick`` runs the same code on tiny sizes and writes ``quick.*`` instead.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
from pathlib import Path

import numpy as np
import scipy
import sklearn

import sk_adam
from sk_adam._kernel import compiled, compiled_steps

from . import suite


def machine() -> str:
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(
            sorted(
                {
                    f"{i['internal_api']} {i.get('architecture') or ''} "
                    f"{i['num_threads']} threads"
                    for i in threadpool_info()
                    if i["user_api"] == "blas"
                }
            )
        )
    except Exception:  # threadpoolctl is a scikit-learn dependency; be safe
        blas = "unknown BLAS"
    return (
        f"{platform.machine()}, {os.cpu_count()} cores ({blas}); Python "
        f"{platform.python_version()}, numpy {np.__version__}, scipy "
        f"{scipy.__version__}, scikit-learn {sklearn.__version__}, sk-adam "
        f"{sk_adam.__version__}"
    )


def _seconds(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


def markdown(rows, sizes) -> str:
    lines = [
        "# sk-adam benchmarks",
        "",
        f"Machine: {machine()}.",
        "",
        f"Medians of {sizes.repeats} repeat(s) ({sizes.throughput_repeats} "
        "rounds, models in turns, for partial_fit throughput); every ratio "
        "compares timings taken in this same run. Reproduce with "
        "`python -m benchmarks`.",
        "",
        "| case | method | time | note |",
        "| --- | --- | ---: | --- |",
    ]
    previous = None
    for case, method, seconds, note in rows:
        shown = case if case != previous else ""
        previous = case
        lines.append(f"| {shown} | {method} | {_seconds(seconds)} | {note} |")
    return "\n".join(lines) + "\n"


def plot(traces, path: Path) -> bool:
    """Suboptimality against time; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, trace in traces.items():
        t, excess = zip(*trace, strict=True)
        ax.loglog(t, np.maximum(excess, 1e-17), marker="o", label=name)
    ax.axhline(suite.TARGET_EXCESS, color="grey", ls="--", lw=1, label="target")
    ax.set_xlabel("fit time [s]")
    ax.set_ylabel("(MSE - OLS MSE) / OLS MSE")
    ax.set_title("Tall dense least squares: suboptimality against time")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    sizes = suite.QUICK if args.quick else suite.Sizes()
    if args.repeats:
        sizes.repeats = args.repeats

    # a long-running process has the compiled full-batch steps and statistics
    # pass built (its numpy work pays for them, see sk_adam._kernel.PAYS_AFTER):
    # build them now, so that every round times the same code
    compiled_steps()
    compiled("stats")
    tall_rows, traces, _ = suite.tall_dense(sizes)
    rows = (
        tall_rows
        + suite.full_batch(sizes)
        + suite.exactness(sizes)
        + suite.per_step(sizes)
        + suite.direct_steps(sizes)
        + suite.memory(sizes)
        + suite.history_cost(sizes)
        + suite.minibatch(sizes)
        + suite.sparse_minibatch(sizes)
        + suite.minibatch_accuracy(sizes)
        + suite.stream_defaults(sizes)
        + suite.dask_scale(sizes)
        + suite.files(sizes)
        + suite.grid_search(sizes)
    )
    text = markdown(rows, sizes)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "quick" if args.quick else "latest"
    (args.out / f"{stem}.md").write_text(text)
    if plot(traces, args.out / f"{stem}-suboptimality.png"):
        print(f"plot: {args.out / f'{stem}-suboptimality.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
