"""The sk-adam command line."""

import csv
import re
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from sk_adam import AdamRegressor, __version__
from sk_adam._cli import load_model, main


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


@pytest.fixture
def data_csv(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.randn(80, 3) * [1, 10, 100] + [0, 50, 1000]
    y = X @ [1.0, -0.5, 0.01] + 3 + 0.1 * rng.randn(80)
    rows = np.c_[X[:, 0], y, X[:, 1:]]  # the target is not the last column
    return _write_csv(tmp_path / "data.csv", ["a", "price", "b", "c"], rows), X, y


def test_demo_prints_both_models_and_draws(capsys, tmp_path):
    png = tmp_path / "demo.png"
    assert main(["demo", "--png", str(png), "--quiet"]) == 0
    out = capsys.readouterr().out
    adam = re.search(r"AdamRegressor\s+([\d.]+)\s+([\d.]+)\s+(\d+)", out)
    ols = re.search(r"LinearRegression\s+([\d.]+)\s+([\d.]+)", out)
    assert adam and ols
    assert abs(float(adam[1]) - float(ols[1])) < 1e-4
    assert "largest |coef difference|" in out and "optimum rule" in out
    assert png.stat().st_size > 10_000


def test_demo_progress_goes_to_stderr(capsys, tmp_path):
    main(["demo", "--png", str(tmp_path / "d.png")])
    captured = capsys.readouterr()
    assert re.search(r"iteration 100 MSE [\d.]+ \([\d.]+ s\)", captured.err)
    assert not re.search(r"iteration \d+ MSE", captured.out)  # progress: stderr


def test_building_a_compiled_loop_is_announced_on_stderr(
    capsys, data_csv, tmp_path, monkeypatch
):
    from sk_adam import _kernel

    monkeypatch.delenv("SK_ADAM_NO_NUMBA", raising=False)
    if _kernel.compiled_steps() is None:
        pytest.skip("numba is not installed")  # it is in the test extra
    monkeypatch.setattr(_kernel, "_BUILT", {})  # as in a new process
    path, _, _ = data_csv
    fit = ["fit", path, "--target", "price", "--out", str(tmp_path / "m.npz")]
    assert main(fit) == 0
    err = capsys.readouterr().err
    assert "[sk-adam] preparing the full-batch steps" in err
    assert re.search(r"full-batch steps (compiled|loaded from the disk cache) in", err)
    monkeypatch.setattr(_kernel, "_BUILT", {})
    assert main([*fit, "--quiet"]) == 0
    assert "preparing" not in capsys.readouterr().err


def test_demo_options_and_user_csv(capsys, data_csv, tmp_path):
    path, _, _ = data_csv
    with pytest.warns(ConvergenceWarning, match="max_iter=5"):
        code = main(
            [
                "demo",
                "--data",
                path,
                "--target",
                "price",
                "--alpha",
                "0.01",
                "--max-iter",
                "5",
                "--png",
                str(tmp_path / "d.png"),
                "--quiet",
            ]
        )
    assert code == 0
    out = capsys.readouterr().out
    assert "target 'price': 80 samples, 3 features" in out
    assert re.search(r"AdamRegressor\s+\S+\s+\S+\s+5\s", out)


@pytest.mark.parametrize(
    "content, args, message",
    [
        ("a,price\n1,2\n", ["--target", "cost"], "no column 'cost'"),
        (
            "a,price\nx,2\n",
            ["--target", "price"],
            "column 'a' .* is not numeric: row 2",
        ),
        ("a,price\n1,\n", ["--target", "price"], "column 'price' .* missing"),
        ("a,price\n1,nan\n", ["--target", "price"], "missing or infinite"),
        ("", ["--target", "price"], "is empty"),
        ("a,price\n", ["--target", "price"], "no data rows"),
    ],
)
def test_bad_csv_exits_2_with_one_line(tmp_path, capsys, content, args, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["fit", str(path), "--out", str(tmp_path / "m.npz"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("sk-adam: error: ")
    assert re.search(message, err)


def test_missing_file_and_model(tmp_path, capsys):
    assert (
        main(
            [
                "fit",
                str(tmp_path / "nope.csv"),
                "--target",
                "y",
                "--out",
                str(tmp_path / "m.npz"),
            ]
        )
        == 2
    )
    assert "file not found" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nope.npz"), str(tmp_path / "x.csv")]) == 2
    assert "model file not found" in capsys.readouterr().err


def test_fit_then_predict_round_trip(tmp_path, capsys, data_csv):
    path, X, y = data_csv
    model = str(tmp_path / "model.npz")
    assert main(["fit", path, "--target", "price", "--out", model, "--quiet"]) == 0
    assert "model written to" in capsys.readouterr().out
    # predict on a file whose columns come in another order, without target
    rows = np.c_[X[:, 2], X[:, 0], X[:, 1]]
    other = _write_csv(tmp_path / "new.csv", ["c", "a", "b"], rows)
    out = str(tmp_path / "pred.csv")
    assert main(["predict", model, other, "--out", out]) == 0
    lines = open(out).read().split()
    assert lines[0] == "price"
    expected = AdamRegressor().fit(X, y).predict(X)
    assert_allclose(np.array(lines[1:], dtype=float), expected, rtol=1e-12)


def test_model_file_is_read_without_pickle(tmp_path):
    # an archive holding a pickled object is refused, not unpickled
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array([object()], dtype=object))
    with pytest.raises(Exception, match="not an sk-adam model file"):
        load_model(path)


def test_version_and_module_entry_point():
    with pytest.raises(SystemExit):
        main(["--version"])
    run = subprocess.run(
        [sys.executable, "-m", "sk_adam", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.strip() == __version__


def test_demo_on_a_csv_with_a_bad_column(tmp_path, capsys):
    path = _write_csv(tmp_path / "bad.csv", ["a", "b", "y"], [[1, "x", 2], [2, 3, 4]])
    code = main(
        ["demo", "--data", path, "--target", "y", "--png", str(tmp_path / "d.png")]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == f"sk-adam: error: column 'b' of {path} is not numeric: row 2 holds 'x'"
    )
