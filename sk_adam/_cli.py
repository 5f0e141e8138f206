"""The ``sk-adam`` command line: a demo against LinearRegression, and fit /
predict on CSV or Parquet files for people who do not write Python.

Files are read by :class:`~sk_adam.FileRows` (pandas and pyarrow, the
``files`` extra): ``fit`` in one pass of chunks into sufficient statistics,
``predict`` chunk by chunk, so neither holds a large file in memory.

Model files are ``.npz`` archives of plain arrays and a JSON string, read
with ``allow_pickle=False``: loading one runs no code from it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error, r2_score

from ._files import FileRows
from ._regressor import AdamRegressor
from ._version import __version__

MODEL_FORMAT = 1


class UserError(Exception):
    """A mistake in the user's input: reported in one line, exit code 2."""


def _enough_rows(rows, n_rows=None, least=2):
    """Fitting needs ``least`` rows (an R^2 needs two): counted in ``n_rows``
    or, without it, in the file's first chunk(s)."""
    if n_rows is None:
        n_rows = 0
        for X, _ in rows.chunks():
            n_rows += len(X)
            if n_rows >= least:
                break
    if n_rows < least:
        raise UserError(
            f"{rows.path} has {n_rows} data row(s); fitting needs at least {least}"
        )


# -- model files -------------------------------------------------------------


def save_model(est, path, feature_names, target):
    """Write a fitted model as arrays and JSON (no pickle), all at once: to
    a temporary file next to ``path``, renamed onto it when complete."""
    meta = {
        "format": MODEL_FORMAT,
        "sk_adam": __version__,
        "params": est.get_params(),
        "target": target,
        "n_iter": int(est.n_iter_),
        "stop_reason": est.stop_reason_,
    }
    with _whole_file(path) as handle:
        np.savez(
            handle,
            meta=np.array(json.dumps(meta)),
            coef=np.asarray(est.coef_, dtype=np.float64),
            intercept=np.asarray(est.intercept_, dtype=np.float64),
            feature_names=np.array(feature_names, dtype=str),
        )


@contextlib.contextmanager
def _whole_file(path):
    """A binary handle whose content lands in ``path`` whole or not at all:
    written to a temporary file next to it, renamed onto it when the block
    ends without an error (no partial file is ever left)."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _check_output(path):
    """An output path a command can write, checked before any work."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"--out {path} is a folder: give a file name")
    folder = path.parent
    if not folder.is_dir():
        raise UserError(f"--out {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UserError(f"--out {path}: the folder {folder} is not writable")


def load_model(path):
    """Read a model written by :func:`save_model`; returns (estimator, meta).

    Everything in the file is checked before it is used (its schema: the
    arrays' shapes, dtypes and finiteness, the JSON's keys and types, the
    parameters against the estimator's): a damaged or hand-edited file is
    an error that says what is wrong, never a traceback or a wrong model.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        meta = json.loads(str(arrays["meta"]))
    except Exception as exc:  # a damaged zip raises anything from zipfile
        raise UserError(
            f"{path} is not an sk-adam model file (damaged or truncated: "
            f"{type(exc).__name__}: {exc})"
        ) from None
    return _checked_model(path, meta, arrays)


def _checked_model(path, meta, arrays):
    """The estimator a model file describes, after checking its schema."""
    params = _checked_meta(path, meta, arrays)
    coef, intercept, names = _checked_arrays(path, arrays)
    est = AdamRegressor()
    unknown = set(params) - set(est.get_params())
    if unknown:
        raise _invalid(path, f"unknown parameter(s) {', '.join(sorted(unknown))}")
    try:
        est.set_params(**params)._validate_params()
    except ValueError as exc:
        raise _invalid(path, str(exc).splitlines()[0]) from None
    est.coef_ = coef
    est.intercept_ = float(intercept)
    est.n_features_in_ = coef.size
    meta["feature_names"] = names.tolist()
    return est, meta


def _invalid(path, what):
    return UserError(f"{path} is not a valid sk-adam model file: {what}")


def _checked_meta(path, meta, arrays):
    """The parameters, after checking the metadata's keys and types."""
    if not isinstance(meta, dict):
        raise _invalid(path, "its metadata is not a JSON object")
    if meta.get("format") != MODEL_FORMAT:
        raise UserError(
            f"{path} has model format {meta.get('format')}; this sk-adam "
            f"({__version__}) reads format {MODEL_FORMAT}"
        )
    missing = {"params", "target"} - set(meta)
    missing |= {"coef", "intercept", "feature_names"} - set(arrays)
    if missing:
        raise _invalid(path, f"it lacks {', '.join(sorted(missing))}")
    params, target = meta["params"], meta["target"]
    if not isinstance(params, dict):
        raise _invalid(path, f"params is {type(params).__name__}, not an object")
    if not isinstance(target, str):
        raise _invalid(path, f"target is {target!r}, not a column name")
    return params


def _checked_arrays(path, arrays):
    """``coef``, ``intercept`` and ``feature_names``: 1-D finite floats, a
    finite scalar, and as many distinct names as coefficients."""
    coef, intercept, names = (
        arrays["coef"], arrays["intercept"], arrays["feature_names"]
    )  # fmt: skip
    if coef.dtype.kind != "f" or coef.ndim != 1 or coef.size == 0:
        raise _invalid(
            path, f"coef is a {coef.dtype} array of shape {coef.shape}, not 1-D floats"
        )
    if intercept.dtype.kind != "f" or intercept.ndim != 0:
        raise _invalid(
            path, f"intercept is a {intercept.dtype} array of shape {intercept.shape}"
        )
    if names.dtype.kind != "U" or names.shape != coef.shape:
        raise _invalid(path, f"{names.size} feature names for {coef.size} coefficients")
    if len(set(names.tolist())) != names.size:
        raise _invalid(path, "a feature name appears twice")
    if not (np.all(np.isfinite(coef)) and np.isfinite(intercept)):
        raise _invalid(path, "a coefficient or the intercept is NaN or infinite")
    return coef, intercept, names


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
    if args.png is not None:
        _check_output(args.png)
    if args.data is None:
        data = load_diabetes()
        X, y, names = data.data, data.target, list(data.feature_names)
        source = "diabetes data (scikit-learn)"
    else:
        if args.target is None:
            raise UserError("--data needs --target COLUMN")
        rows = FileRows(args.data, args.target, columns=args.columns, drop=args.drop)
        X, y = rows.to_arrays()  # the demo compares with LinearRegression
        _enough_rows(rows, len(y))
        names = rows.feature_names
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
    """Fit on a data file, in one pass of chunks, and write a model file."""
    _check_output(args.out)
    rows = FileRows(args.data, args.target, columns=args.columns, drop=args.drop)
    _enough_rows(rows)
    est = _estimator(args, verbose=0 if args.quiet else 1)
    seconds = _fit(est, rows, None, args.quiet)
    save_model(est, args.out, rows.feature_names, args.target)
    print(
        f"fitted {rows.n_rows} rows x {rows.n_features} features in "
        f"{seconds:.2f} s ({est.n_iter_} iterations, {est.stop_reason_} rule), "
        f"training R^2 {est.score(rows):.6f}; model written to {args.out}"
    )
    return 0


def predict(args):
    """Predict for the rows of a data file, with the model's columns, one
    chunk at a time."""
    if args.out:
        _check_output(args.out)
    est, meta = load_model(args.model)
    rows = FileRows(args.data, columns=meta["feature_names"])
    if args.out:
        with _whole_file(args.out) as handle:
            _write_predictions(est, rows, meta["target"], handle)
    else:
        _write_predictions(est, rows, meta["target"], sys.stdout.buffer)
        sys.stdout.flush()
    return 0


def _write_predictions(est, rows, target, handle):
    """A CSV column named ``target`` (quoted where the name needs it) of the
    predictions, written chunk by chunk into the binary ``handle``."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow([target])
    handle.write(text.getvalue().encode())
    for X, _ in rows.chunks():
        values = est.predict(X)
        handle.write(("\n".join(map(repr, values.tolist())) + "\n").encode())


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


#: The estimator's parameters the commands expose: option, parameter, type
#: and help (the default is the estimator's own).
ADAM_OPTIONS = (
    ("--alpha", "alpha", _rate,
     "Adam's learning rate (not a penalty); 'auto': 0.1 in full batch"),
    ("--beta1", "beta1", float,
     "decay rate of Adam's first moment (the mean gradient), in [0, 1)"),
    ("--beta2", "beta2", float,
     "decay rate of Adam's second moment (the mean squared gradient), in [0, 1)"),
    ("--tol", "tol", float, "stop once the training MSE is below this (0: off)"),
    ("--max-iter", "max_iter", int, "at most this many Adam iterations"),
)  # fmt: skip


def _add_column_options(parser):
    parser.add_argument(
        "--columns",
        nargs="+",
        metavar="COLUMN",
        help="the feature columns to use (None: every column but the target)",
    )
    parser.add_argument(
        "--drop",
        nargs="+",
        metavar="COLUMN",
        default=[],
        help="columns to leave out (an ID, a date)",
    )


def _add_adam_options(parser):
    defaults = AdamRegressor().get_params()
    for option, name, kind, text in ADAM_OPTIONS:
        parser.add_argument(option, type=kind, default=defaults[name], help=text)
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
    shown = {"formatter_class": argparse.ArgumentDefaultsHelpFormatter}

    p = commands.add_parser(
        "demo", help="compare AdamRegressor with LinearRegression", **shown
    )
    p.add_argument("--data", help="a CSV or Parquet file (None: diabetes)")
    p.add_argument("--target", help="the target column of --data")
    p.add_argument("--png", default="sk-adam-demo.png", help="where to draw the plots")
    _add_column_options(p)
    _add_adam_options(p)
    p.set_defaults(handler=demo)

    p = commands.add_parser(
        "fit", help="fit on a CSV or Parquet file, write a model file", **shown
    )
    p.add_argument("data", help="a CSV file with a header row, or a Parquet file")
    required = {"required": True, "default": argparse.SUPPRESS}  # no default shown
    p.add_argument("--target", help="the target column", **required)
    p.add_argument("--out", help="the model file to write (.npz)", **required)
    _add_column_options(p)
    _add_adam_options(p)
    p.set_defaults(handler=fit)

    p = commands.add_parser(
        "predict", help="predict for the rows of a CSV or Parquet file", **shown
    )
    p.add_argument("model", help="a model file written by 'sk-adam fit'")
    p.add_argument("data", help="a CSV or Parquet file with the model's features")
    p.add_argument("--out", help="write the predictions here (None: stdout)")
    p.set_defaults(handler=predict)

    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except UserError as exc:
        print(f"sk-adam: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, ImportError) as exc:  # the estimator's and the
        # reader's checks (parameters, cells), a missing optional package
        print(f"sk-adam: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`... | head -1`)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error at exit
        return 0
    except OSError as exc:  # a file the checks could not foresee
        print(f"sk-adam: error: {exc}", file=sys.stderr)
        return 2
