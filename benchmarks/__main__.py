"""Benchmarks: ``python -m benchmarks [--quick] [--out DIR]``.

Every number is the median of ``--repeats`` runs, and every AdamRegressor
timing is reported next to a peer measured in the same run. Results go to
``benchmarks/results/latest.md`` with the machine they ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sk_adam
from sk_adam import AdamRegressor


def median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def diabetes_fit(repeats):
    """One default fit on raw diabetes, against LinearRegression."""
    X, y = load_diabetes(return_X_y=True)
    adam = median_seconds(lambda: AdamRegressor().fit(X, y), repeats)
    ols = median_seconds(lambda: LinearRegression().fit(X, y), repeats)
    est = AdamRegressor().fit(X, y)
    r2_gap = LinearRegression().fit(X, y).score(X, y) - est.score(X, y)
    return [
        ("diabetes fit, AdamRegressor()", adam, f"{est.n_iter_} iterations"),
        ("diabetes fit, LinearRegression()", ols, f"R^2 gap {r2_gap:.1e}"),
    ]


def grid_search(repeats, quick):
    """alpha x beta1 x beta2 on a scaled pipeline, 5 folds, against MLP."""
    X, y = load_diabetes(return_X_y=True)
    cv = KFold(5, shuffle=True, random_state=0)
    grid = {
        "alpha": [0.03, 0.1, 0.3],
        "beta1": [0.8, 0.9],
        "beta2": [0.99, 0.999],
    }
    if quick:
        grid = {k: v[:1] for k, v in grid.items()}
    n_fits = 5 * int(np.prod([len(v) for v in grid.values()]))
    rows = []
    for name, est, prefix in [
        ("AdamRegressor", AdamRegressor(), "adamregressor__"),
        (
            "MLPRegressor(solver='adam', hidden_layer_sizes=())",
            MLPRegressor(hidden_layer_sizes=(), max_iter=2000, random_state=0),
            "mlpregressor__",
        ),
    ]:
        # MLPRegressor spells the same three settings differently
        names = (
            {}
            if name == "AdamRegressor"
            else {"alpha": "learning_rate_init", "beta1": "beta_1", "beta2": "beta_2"}
        )
        params = {prefix + names.get(k, k): v for k, v in grid.items()}
        search = GridSearchCV(make_pipeline(StandardScaler(), est), params, cv=cv)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            seconds = median_seconds(lambda s=search: s.fit(X, y), repeats)
        rows.append(
            (
                f"GridSearchCV, {n_fits} fits, {name}",
                seconds,
                f"best CV R^2 {search.best_score_:.4f}",
            )
        )
    return rows


def machine():
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}, sk-adam {sk_adam.__version__}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    rows = diabetes_fit(repeats) + grid_search(repeats, args.quick)
    lines = [
        "# sk-adam benchmarks",
        "",
        f"Machine: {machine()}. Median of {repeats} repeat(s).",
        "",
        "| case | median time [s] | note |",
        "| --- | ---: | --- |",
    ]
    lines += [f"| {case} | {sec:.4f} | {note} |" for case, sec, note in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / ("quick.md" if args.quick else "latest.md")).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
