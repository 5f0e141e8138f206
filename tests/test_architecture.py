"""The structure of sk_adam (docs/architecture.rst).

The layering itself is import-linter's contract in pyproject.toml, run by
``make test``; these tests check what it cannot: that every input kind and
both fitting methods go down the one fit path, that the solver is handed
settings (never the estimator), and that no function grows past 60 lines
of code.
"""

import ast
import inspect
import io
import tokenize
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import sk_adam
from sk_adam import AdamRegressor, _solver
from sk_adam._regressor import AdamRegressor as Regressor

PACKAGE = Path(sk_adam.__file__).parent
MAX_CODE_LINES = 60


def _code_lines(source: str) -> set[int]:
    """Line numbers holding code: not blank, not only a comment, not part
    of a docstring."""
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (
            tokenize.COMMENT,
            tokenize.NL,
            tokenize.NEWLINE,
            tokenize.INDENT,
            tokenize.DEDENT,
            tokenize.ENDMARKER,
        ):
            continue
        lines.update(range(token.start[0], token.end[0] + 1))
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(
                getattr(first, "value", None), ast.Constant
            ):
                if isinstance(first.value.value, str):
                    lines -= set(range(first.lineno, first.end_lineno + 1))
    return lines


def _function_lengths():
    for path in sorted(PACKAGE.glob("*.py")):
        source = path.read_text()
        code = _code_lines(source)
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                span = range(node.lineno, node.end_lineno + 1)
                yield f"{path.name}:{node.name}", len(code.intersection(span))


def test_code_line_counter_counts_code_only():
    source = '''
def f(x):
    """A docstring
    of three lines.
    """
    # a comment

    y = (x +
         1)  # trailing comment
    return y
'''
    lengths = {}
    code = _code_lines(source)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            span = range(node.lineno, node.end_lineno + 1)
            lengths[node.name] = len(code.intersection(span))
    assert lengths == {"f": 4}  # def, the two lines of y, return


def test_no_function_longer_than_60_code_lines():
    lengths = dict(_function_lengths())
    assert len(lengths) > 100  # the whole package was read
    too_long = {name: n for name, n in lengths.items() if n > MAX_CODE_LINES}
    assert too_long == {}


def test_solver_receives_settings_not_the_estimator():
    parameters = inspect.signature(_solver.solve).parameters
    assert list(parameters)[:4] == ["epoch", "params", "state", "settings"]
    source = inspect.getsource(_solver)
    assert "AdamRegressor" not in source.replace("``AdamRegressor``", "")
    with pytest.raises(AttributeError):  # frozen
        _solver.SolverSettings(0.1, 10, 0.0, None, 0.0, 0).alpha = 1.0


@pytest.fixture
def calls(monkeypatch):
    """The ``incremental`` flag of every call of ``AdamRegressor._fit``."""
    seen = []
    original = Regressor._fit

    def spy(self, X, y, sample_weight, incremental):
        seen.append((type(X).__module__.split(".")[0], incremental))
        return original(self, X, y, sample_weight, incremental)

    monkeypatch.setattr(Regressor, "_fit", spy)
    return seen


def test_fit_partial_fit_and_dask_share_one_fit_path(calls):
    da = pytest.importorskip("dask.array")
    rng = np.random.RandomState(0)
    X = rng.randn(60, 3)
    y = X @ [1.0, -2.0, 0.5]
    est = AdamRegressor().fit(X, y)
    est.partial_fit(X, y)
    AdamRegressor().fit(da.from_array(X, chunks=20), y)
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        AdamRegressor(batch_size=16, max_iter=3).fit(X, y)
    assert calls == [
        ("numpy", False),
        ("numpy", True),
        ("dask", False),
        ("numpy", False),
    ]
