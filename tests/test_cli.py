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
    # whose numpy passes and steps have already taken what building them takes
    monkeypatch.setattr(_kernel, "PAYS_AFTER", {"steps": 0.0, "stats": 0.0})
    path, _, _ = data_csv
    fit = ["fit", path, "--target", "price", "--out", str(tmp_path / "m.npz")]
    assert main(fit) == 0
    err = capsys.readouterr().err
    assert "[sk-adam] preparing the full-batch steps" in err
    assert re.search(r"full-batch steps (compiled|loaded from the disk cache) in", err)
    assert "[sk-adam] preparing the statistics pass" in err
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
        (
            "a,price\n1,nan\n",
            ["--target", "price"],
            "missing value at row 2: remove or impute",
        ),
        ("a,price\n1,NA\n2,3\n", ["--target", "price"], "missing value at row 2"),
        ("a,price\n1,inf\n2,3\n", ["--target", "price"], "infinite value at row 2"),
        ("a,a,price\n1,2,3\n", ["--target", "price"], "names the column 'a' twice"),
        ("a,price\n1,2,9\n3,4\n", ["--target", "price"], "row 2 .* more cells than"),
        ("a,price\n1,2\n", ["--target", "price"], "1 data row.*at least 2"),
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


def _one_line_error(capsys, code, pattern):
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("sk-adam: error: "), err
    assert re.search(pattern, err), err
    return err


def test_a_bom_is_not_part_of_the_first_name(tmp_path, capsys):
    path = tmp_path / "bom.csv"
    path.write_bytes("a,price\n1,2\n2,4.5\n3,5\n".encode("utf-8-sig"))
    out = str(tmp_path / "m.npz")
    assert main(["fit", str(path), "--target", "a", "--out", out, "--quiet"]) == 0
    assert load_model(out)[1]["feature_names"] == ["price"]


def test_an_unterminated_quote_is_reported_briefly(tmp_path, capsys):
    path = tmp_path / "quote.csv"
    path.write_text("a,price\n" + '"1,2\n' + "3,4\n" * 2000)
    err = _one_line_error(
        capsys,
        main(["fit", str(path), "--target", "price", "--out", str(tmp_path / "m")]),
        "",
    )
    assert len(err) < 300


@pytest.mark.parametrize("where", ["missing folder", "a folder"])
def test_output_paths_are_checked_before_any_work(tmp_path, capsys, where):
    data = _write_csv(tmp_path / "d.csv", ["a", "y"], [[1, 2], [2, 3], [3, 5]])
    out = tmp_path / "no" / "m.npz" if where == "missing folder" else tmp_path
    pattern = "does not exist" if where == "missing folder" else "is a folder"
    code = main(["fit", data, "--target", "y", "--out", str(out)])
    _one_line_error(capsys, code, pattern)
    model = tmp_path / "m.npz"
    assert main(["fit", data, "--target", "y", "--out", str(model), "--quiet"]) == 0
    capsys.readouterr()
    code = main(["predict", str(model), data, "--out", str(out)])
    _one_line_error(capsys, code, pattern)


def test_a_failed_fit_leaves_no_output_file(tmp_path, capsys):
    data = _write_csv(tmp_path / "d.csv", ["a", "y"], [[1, "x"], [2, 3]])
    out = tmp_path / "m.npz"
    _one_line_error(
        capsys, main(["fit", data, "--target", "y", "--out", str(out)]), "numeric"
    )
    assert list(tmp_path.iterdir()) == [tmp_path / "d.csv"]


def _saved(tmp_path, **changes):
    """A model file as sk-adam writes it, with ``changes`` to its arrays or
    (for ``meta``) its metadata dict."""
    import json

    data = _write_csv(
        tmp_path / "d.csv", ["a", "b", "y"], [[1, 0, 2], [2, 1, 3], [3, 5, 5]]
    )
    good = tmp_path / "good.npz"
    assert main(["fit", data, "--target", "y", "--out", str(good), "--quiet"]) == 0
    with np.load(good) as archive:
        arrays = {key: archive[key] for key in archive.files}
    meta = json.loads(str(arrays["meta"]))
    edit = changes.pop("meta", None)
    if edit is not None:
        meta = edit(meta)
    arrays["meta"] = np.array(json.dumps(meta))
    arrays.update(changes)
    arrays = {key: value for key, value in arrays.items() if value is not None}
    path = tmp_path / "edited.npz"
    np.savez(path, **arrays)
    return str(path), data


@pytest.mark.parametrize(
    "changes, pattern",
    [
        ({"coef": np.ones((1, 2))}, "coef is a float64 array of shape \\(1, 2\\)"),
        ({"coef": np.float64(1.0)}, "coef is a float64 array of shape \\(\\)"),
        ({"coef": np.array(["1", "2"])}, "not 1-D floats"),
        ({"coef": np.array([np.nan, 1.0])}, "NaN or infinite"),
        ({"intercept": np.array([1.0, 2.0])}, "intercept is a float64 array"),
        ({"feature_names": np.array(["a", "a"])}, "appears twice"),
        ({"feature_names": None}, "it lacks feature_names"),
        ({"meta": lambda m: {**m, "params": None}}, "params is NoneType"),
        (
            {"meta": lambda m: {**m, "params": {**m["params"], "gamma": 1}}},
            "unknown parameter",
        ),
        ({"meta": lambda m: {**m, "params": {**m["params"], "beta1": 2.0}}}, "beta1"),
        (
            {"meta": lambda m: {k: v for k, v in m.items() if k != "target"}},
            "lacks target",
        ),
        ({"meta": lambda m: [1, 2]}, "not a JSON object"),
    ],
)
def test_a_hand_edited_model_file_is_one_line_error(tmp_path, capsys, changes, pattern):
    model, data = _saved(tmp_path, **changes)
    _one_line_error(capsys, main(["predict", model, data]), pattern)


def test_a_truncated_model_file_is_one_line_error(tmp_path, capsys):
    model, data = _saved(tmp_path)
    content = open(model, "rb").read()
    open(model, "wb").write(content[: len(content) // 2])
    _one_line_error(capsys, main(["predict", model, data]), "damaged or truncated")


def test_a_target_name_with_a_comma_reads_back_as_one_column(tmp_path, capsys):
    data = _write_csv(
        tmp_path / "d.csv", ["a", "price, in $"], [[1, 2], [2, 3.5], [3, 5]]
    )
    model, out = str(tmp_path / "m.npz"), str(tmp_path / "p.csv")
    assert (
        main(["fit", data, "--target", "price, in $", "--out", model, "--quiet"]) == 0
    )
    assert main(["predict", model, data, "--out", out]) == 0
    with open(out, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["price, in $"] and all(len(row) == 1 for row in rows)


def test_predict_into_a_closed_pipe_ends_quietly(tmp_path, capsys):
    rows = [[i, 2 * i + 1] for i in range(20_000)]
    data = _write_csv(tmp_path / "d.csv", ["a", "y"], rows)
    model = str(tmp_path / "m.npz")
    assert main(["fit", data, "--target", "y", "--out", model, "--quiet"]) == 0
    run = subprocess.run(
        f"{sys.executable} -m sk_adam predict {model} {data} | head -1",
        shell=True, capture_output=True, text=True,
    )  # fmt: skip
    assert run.stdout == "y\n"
    assert "Traceback" not in run.stderr and "Error" not in run.stderr


def test_every_option_shows_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option, default in [
        ("--beta1", "0.9"), ("--beta2", "0.999"), ("--max-iter", "50000"),
        ("--alpha", "auto"), ("--tol", "0.0"),
    ]:  # fmt: skip
        assert re.search(
            re.escape(option) + r" \S+ .*?\(default: " + re.escape(default), text
        ), option


def test_columns_and_drop_choose_the_features(tmp_path, capsys):
    rng = np.random.RandomState(3)
    X = rng.randn(50, 2)
    y = X @ [1.0, -2.0] + 0.5
    ids = np.arange(50) * 1e6  # an ID column would spoil the fit
    data = _write_csv(tmp_path / "d.csv", ["id", "a", "b", "y"], np.c_[ids, X, y])
    model = str(tmp_path / "m.npz")
    fit = ["fit", data, "--target", "y", "--out", model, "--quiet"]
    assert main([*fit, "--drop", "id"]) == 0
    assert load_model(model)[1]["feature_names"] == ["a", "b"]
    assert main([*fit, "--columns", "b", "a"]) == 0
    est, meta = load_model(model)
    assert meta["feature_names"] == ["b", "a"]
    assert_allclose(est.coef_, [-2.0, 1.0], rtol=1e-6)
    capsys.readouterr()
    _one_line_error(capsys, main([*fit, "--drop", "nope"]), "no column\\(s\\) 'nope'")
    _one_line_error(capsys, main([*fit, "--columns", "a", "y"]), "is the target")
    _one_line_error(
        capsys, main([*fit, "--columns", "a", "--drop", "a"]), "no feature columns"
    )
