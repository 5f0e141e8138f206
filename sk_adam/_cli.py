"""The ``sk-adam`` command line."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error, r2_score

from . import __version__
from ._regressor import AdamRegressor


def _timed_fit(model, X, y):
    start = time.perf_counter()
    model.fit(X, y)
    return time.perf_counter() - start


def demo(args: argparse.Namespace) -> int:
    """Fit AdamRegressor and LinearRegression on diabetes; print a table."""
    X, y = load_diabetes(return_X_y=True)
    adam = AdamRegressor(
        alpha=args.alpha,
        beta1=args.beta1,
        beta2=args.beta2,
        tol=args.tol,
        max_iter=args.max_iter,
    )
    ols = LinearRegression()
    rows = []
    for name, model in (("AdamRegressor", adam), ("LinearRegression", ols)):
        seconds = _timed_fit(model, X, y)
        pred = model.predict(X)
        rows.append(
            (
                name,
                r2_score(y, pred),
                mean_squared_error(y, pred),
                getattr(model, "n_iter_", "-"),
                seconds,
            )
        )
    print(f"Diabetes data: {X.shape[0]} samples, {X.shape[1]} features\n")
    header = f"{'model':<18} {'R^2':>10} {'MSE':>12} {'iterations':>10} {'fit [ms]':>9}"
    print(header)
    print("-" * len(header))
    for name, r2, mse, n_iter, seconds in rows:
        print(
            f"{name:<18} {r2:>10.6f} {mse:>12.4f} {n_iter!s:>10} {1e3 * seconds:>9.2f}"
        )
    gap = np.max(np.abs(adam.coef_ - ols.coef_))
    print(
        f"\nlargest |coef difference|: {gap:.3g} "
        f"(coefficients up to {np.max(np.abs(ols.coef_)):.0f}); "
        f"Adam stopped by the {adam.stop_reason_} rule."
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sk-adam`` console script."""
    parser = argparse.ArgumentParser(
        prog="sk-adam", description="Linear regression solved by Adam."
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser(
        "demo", help="compare AdamRegressor with LinearRegression on diabetes"
    )
    defaults = AdamRegressor()
    p.add_argument("--alpha", type=float, default=defaults.alpha)
    p.add_argument("--beta1", type=float, default=defaults.beta1)
    p.add_argument("--beta2", type=float, default=defaults.beta2)
    p.add_argument("--tol", type=float, default=defaults.tol)
    p.add_argument("--max-iter", type=int, default=defaults.max_iter)
    p.set_defaults(handler=demo)
    args = parser.parse_args(argv)
    return args.handler(args)
