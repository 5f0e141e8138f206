"""The ``sk-adam`` command line: a demo against LinearRegression, and fit /
predict on CSV files for people who do not write Python.

Model files are ``.npz`` archives of plain arrays and a JSON string, read
with ``allow_pickle=False``: loading one runs no code from it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error, r2_score

from ._regressor import AdamRegressor
from ._version import __version__

MODEL_FORMAT = 1


class UserError(Exception):
    """A mistake in the user's input: reported in one line, exit code 2."""


# -- CSV -------------------------------------------------------------------


def read_csv(path, target=None, columns=None):
    """Numeric data from a CSV file with a header row.

    Returns ``(X, y, feature_names)``; ``y`` is None without ``target``.
    ``columns`` selects and orders the feature columns (for predict).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise UserError(f"{path} is empty: it needs a header row and data rows")
    header, body = [c.strip() for c in rows[0]], [r for r in rows[1:] if r]
    if not body:
        raise UserError(f"{path} has a header but no data rows")
    columns = _feature_columns(path, header, target, columns)
    X = np.column_stack(
        [_numeric_column(path, name, header.index(name), body) for name in columns]
    )
    y = None
    if target is not None:
        y = _numeric_column(path, target, header.index(target), body)
    return X, y, list(columns)


def _feature_columns(path, header, target, columns):
    """The feature columns to read: ``columns``, or all but ``target``."""
    if target is not None and target not in header:
        raise UserError(
            f"no column {target!r} in {path}; the columns are: {', '.join(header)}"
        )
    if columns is None:
        columns = [c for c in header if c != target]
    missing = [c for c in columns if c not in header]
    if missing:
        raise UserError(f"{path} lacks the model's columns: {', '.join(missing)}")
    if not columns:
        raise UserError(f"{path} has no feature columns besides {target!r}")
    return columns


def _numeric_column(path, name, j, body):
    """Column ``j`` (named ``name``) of the data rows as finite floats."""
    values = np.empty(len(body))
    for i, row in enumerate(body):
        cell = row[j].strip() if j < len(row) else ""
        if cell == "":
            raise UserError(
                f"column {name!r} of {path} has a missing value at row "
                f"{i + 2}: remove or impute it first"
            )
        try:
            values[i] = float(cell)
        except ValueError:
            raise UserError(
                f"column {name!r} of {path} is not numeric: row {i + 2} holds {cell!r}"
            ) from None
        if not np.isfinite(values[i]):
            raise UserError(
                f"column {name!r} of {path} has a missing or infinite value "
                f"at row {i + 2}: remove or impute it first"
            )
    return values


# -- model files -------------------------------------------------------------


def save_model(est, path, feature_names, target):
    """Write a fitted model as arrays and JSON (no pickle)."""
    meta = {
        "format": MODEL_FORMAT,
        "sk_adam": __version__,
        "params": est.get_params(),
        "target": target,
        "n_iter": int(est.n_iter_),
        "stop_reason": est.stop_reason_,
    }
    with Path(path).open("wb") as handle:
        np.savez(
            handle,
            meta=np.array(json.dumps(meta)),
            coef=np.asarray(est.coef_, dtype=np.float64),
            intercept=np.asarray(est.intercept_, dtype=np.float64),
            feature_names=np.array(feature_names, dtype=str),
        )


def load_model(path):
    """Read a model written by :func:`save_model`; returns (estimator, meta)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            coef, intercept = archive["coef"], archive["intercept"]
            names = [str(n) for n in archive["feature_names"]]
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{path} is not an sk-adam model file ({exc})") from None
    if meta.get("format") != MODEL_FORMAT:
        raise UserError(
            f"{path} has model format {meta.get('format')}; this sk-adam "
            f"({__version__}) reads format {MODEL_FORMAT}"
        )
    est = AdamRegressor(**meta["params"])
    est.coef_ = coef
    est.intercept_ = intercept if intercept.ndim else float(intercept)
    est.n_features_in_ = coef.shape[-1]
    meta["feature_names"] = names
    return est, meta


# -- commands ----------------------------------------------------------------


def _estimator(args, verbose=0):
    return AdamRegressor(
        alpha=args.alpha,
        beta1=args.beta1,
        beta2=args.beta2,
        tol=args.tol,
        max_iter=args.max_iter,
        record_history=getattr(args, "png", None) is not None,
        verbose=verbose,
    )


def _fit(est, X, y, quiet):
    """Fit, with progress lines on stderr unless quiet; returns seconds."""
    start = time.perf_counter()
    stream = (
        contextlib.nullcontext() if quiet else contextlib.redirect_stdout(sys.stderr)
    )
    with stream:
        est.fit(X, y)
    return time.perf_counter() - start


def demo(args):
    """Fit AdamRegressor and LinearRegression; print a table, draw a PNG."""
    if args.data is None:
        data = load_diabetes()
        X, y, names = data.data, data.target, list(data.feature_names)
        source = "diabetes data (scikit-learn)"
    else:
        if args.target is None:
            raise UserError("--data needs --target COLUMN")
        X, y, names = read_csv(args.data, args.target)
        source = f"{args.data}, target {args.target!r}"
    adam = _estimator(args, verbose=0 if args.quiet else 1)
    ols = LinearRegression()
    adam_seconds = _fit(adam, X, y, quiet=args.quiet)
    start = time.perf_counter()
    ols.fit(X, y)
    ols_seconds = time.perf_counter() - start
    print(f"{source}: {X.shape[0]} samples, {X.shape[1]} features\n")
    header = f"{'model':<18} {'R^2':>10} {'MSE':>14} {'iterations':>10} {'fit [ms]':>9}"
    print(header)
    print("-" * len(header))
    for name, model, seconds in (
        ("AdamRegressor", adam, adam_seconds),
        ("LinearRegression", ols, ols_seconds),
    ):
        pred = model.predict(X)
        iterations = getattr(model, "n_iter_", "-")
        print(
            f"{name:<18} {r2_score(y, pred):>10.6f} "
            f"{mean_squared_error(y, pred):>14.6g} {iterations!s:>10} "
            f"{1e3 * seconds:>9.2f}"
        )
    gap = np.max(np.abs(adam.coef_ - ols.coef_))
    print(
        f"\nlargest |coef difference|: {gap:.3g} (coefficients up to "
        f"{np.max(np.abs(ols.coef_)):.3g}); Adam stopped by the "
        f"{adam.stop_reason_} rule."
    )
    if args.png is not None:
        if _draw(adam, X, y, names, args.png):
            print(f"plots written to {args.png}")
        else:
            print("no plots: matplotlib is not installed (pip install sk-adam[plot])")
    return 0


def _draw(est, X, y, names, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    from .plotting import AdamHistoryDisplay, CoefficientPathDisplay

    fig, axes = plt.subplots(2, 3, figsize=(16, 8), layout="constrained")
    axis_names = None  # the moments are per whitened axis, if whitened
    if est.whitened_:
        axis_names = [f"axis {j}" for j in range(est.moment1_.shape[0])]
    history = AdamHistoryDisplay(
        loss_curve=est.loss_curve_,
        tol=est.tol,
        history=est.history_,
        feature_names=axis_names or names,
    )
    history.plot(ax=np.array([axes[0, 0], axes[0, 1], axes[1, 0], axes[1, 1]]))
    ols = LinearRegression().fit(X, y)
    CoefficientPathDisplay(
        coef_path=est.history_.coef, reference_coef=ols.coef_, feature_names=names
    ).plot(ax=axes[0, 2])
    axes[1, 2].axis("off")
    fig.suptitle("AdamRegressor: loss, moments, steps and coefficient path")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def fit(args):
    """Fit on a CSV file and write a model file."""
    X, y, names = read_csv(args.data, args.target)
    est = _estimator(args, verbose=0 if args.quiet else 1)
    seconds = _fit(est, X, y, args.quiet)
    save_model(est, args.out, names, args.target)
    print(
        f"fitted {X.shape[0]} rows x {X.shape[1]} features in {seconds:.2f} s "
        f"({est.n_iter_} iterations, {est.stop_reason_} rule), training R^2 "
        f"{est.score(X, y):.6f}; model written to {args.out}"
    )
    return 0


def predict(args):
    """Predict for the rows of a CSV file, with the model's columns."""
    est, meta = load_model(args.model)
    X, _, _ = read_csv(args.data, columns=meta["feature_names"])
    pred = est.predict(X)
    out = open(args.out, "w") if args.out else contextlib.nullcontext(sys.stdout)
    with out as handle:
        handle.write(f"{meta['target']}\n")
        for value in pred:
            handle.write(f"{float(value)!r}\n")
    return 0


def _rate(text):
    """``--alpha``: a number, or ``auto``."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a number nor 'auto'"
        ) from None


def _add_adam_options(parser):
    defaults = AdamRegressor()
    parser.add_argument(
        "--alpha",
        type=_rate,
        default=defaults.alpha,
        help="Adam's learning rate (not a penalty); 'auto': 0.1 in full batch "
        "(default: %(default)s)",
    )
    parser.add_argument("--beta1", type=float, default=defaults.beta1)
    parser.add_argument("--beta2", type=float, default=defaults.beta2)
    parser.add_argument(
        "--tol",
        type=float,
        default=defaults.tol,
        help="stop once the training MSE is below this",
    )
    parser.add_argument("--max-iter", type=int, default=defaults.max_iter)
    parser.add_argument(
        "--quiet", action="store_true", help="no progress lines on stderr"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sk-adam`` console script."""
    parser = argparse.ArgumentParser(
        prog="sk-adam", description="Linear regression solved by Adam."
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("demo", help="compare AdamRegressor with LinearRegression")
    p.add_argument("--data", help="a CSV file with a header row (default: diabetes)")
    p.add_argument("--target", help="the target column of --data")
    p.add_argument(
        "--png",
        default="sk-adam-demo.png",
        help="where to draw the plots (default: %(default)s)",
    )
    _add_adam_options(p)
    p.set_defaults(handler=demo)

    p = commands.add_parser("fit", help="fit on a CSV file, write a model file")
    p.add_argument("data", help="a CSV file with a header row")
    p.add_argument("--target", required=True, help="the target column")
    p.add_argument("--out", required=True, help="the model file to write (.npz)")
    _add_adam_options(p)
    p.set_defaults(handler=fit)

    p = commands.add_parser("predict", help="predict for the rows of a CSV file")
    p.add_argument("model", help="a model file written by 'sk-adam fit'")
    p.add_argument("data", help="a CSV file with the model's feature columns")
    p.add_argument("--out", help="write the predictions here (default: stdout)")
    p.set_defaults(handler=predict)

    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except UserError as exc:
        print(f"sk-adam: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # the estimator's own checks (e.g. parameters)
        print(f"sk-adam: error: {exc}", file=sys.stderr)
        return 2
