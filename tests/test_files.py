"""FileRows: a CSV or Parquet file fitted in one pass of chunks.

Oracles: the same rows fitted in memory (the statistics are merged exactly,
so the coefficients agree to round-off), least squares (``numpy.linalg.lstsq``)
and scikit-learn's ``r2_score``.
"""

import sys
import tracemalloc

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.metrics import r2_score

from sk_adam import AdamRegressor, FileRows
from sk_adam import _files as files


def _predicted(est, X):
    """In-memory predictions, without feature names."""
    return X @ est.coef_ + est.intercept_


def _design(n=3000, d=4, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) * np.arange(1, d + 1) + np.arange(d) * 10
    y = X @ np.linspace(-2, 2, d) + 5 + 0.3 * rng.randn(n)
    return X, y


def _csv(path, X, y, *, names=None, extra=None):
    names = names or [f"x{j}" for j in range(X.shape[1])]
    lines = [",".join([*names, "y"])]
    lines += [
        ",".join(repr(float(v)) for v in [*row, t]) for row, t in zip(X, y, strict=True)
    ]
    if extra:
        lines = [f"{line},{note}" for line, note in zip(lines, extra, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _parquet(path, X, y):
    columns = {f"x{j}": X[:, j] for j in range(X.shape[1])}
    pq.write_table(pa.table({**columns, "y": y}), path, row_group_size=700)
    return path


def test_a_file_fit_equals_the_in_memory_fit(tmp_path):
    X, y = _design()
    rows = FileRows(_csv(tmp_path / "d.csv", X, y), target="y", chunk_rows=250)
    est = AdamRegressor().fit(rows)
    ref = AdamRegressor().fit(X, y)
    # the same statistics merged in another order: equal to round-off
    assert_allclose(est.coef_, ref.coef_, rtol=1e-9)
    assert_allclose(est.intercept_, ref.intercept_, rtol=1e-9)
    assert est.n_iter_ == ref.n_iter_ and est.stop_reason_ == ref.stop_reason_
    exact = np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)[0]
    assert_allclose(est.coef_, exact[:-1], rtol=1e-7)
    assert list(est.feature_names_in_) == ["x0", "x1", "x2", "x3"]
    assert est.n_features_in_ == 4


def test_parquet_reads_as_the_csv_does(tmp_path):
    X, y = _design()
    csv_rows = FileRows(_csv(tmp_path / "d.csv", X, y), target="y", chunk_rows=700)
    parquet = FileRows(_parquet(tmp_path / "d.bin", X, y), target="y", chunk_rows=700)
    assert parquet.format == "parquet" and csv_rows.format == "csv"
    a, b = AdamRegressor().fit(csv_rows), AdamRegressor().fit(parquet)
    assert_allclose(a.coef_, b.coef_, rtol=1e-12)  # repr round-trips floats
    assert_array_equal(b.predict(parquet), a.predict(csv_rows))
    assert_allclose(b.predict(parquet), _predicted(b, X), rtol=1e-12)


def test_two_threads_over_byte_ranges_equal_one(tmp_path, monkeypatch):
    X, y = _design(n=20000, d=3, seed=1)
    path = _csv(tmp_path / "d.csv", X, y)
    one = AdamRegressor().fit(FileRows(path, target="y", chunk_rows=1000))
    monkeypatch.setattr(files, "SPLIT_BYTES", 1)
    monkeypatch.setattr(files, "usable_cpus", lambda: 2)
    rows = FileRows(path, target="y", chunk_rows=1000)
    parts = rows.parts(2)
    assert len(parts) == 2 and parts[0].end == parts[1].start
    assert sum(len(x) for p in parts for x, _ in rows.chunks(p)) == 20000
    two = AdamRegressor().fit(rows)
    again = AdamRegressor().fit(FileRows(path, target="y", chunk_rows=1000))
    assert_allclose(two.coef_, one.coef_, rtol=1e-10)
    assert_array_equal(two.coef_, again.coef_)  # merged in file order


def test_a_quoted_cell_with_a_line_break_is_read_whole(tmp_path, monkeypatch):
    X, y = _design(n=400, d=2)
    notes = ["note"] + [f'"line {i}\nstill {i}"' for i in range(len(y))]
    path = _csv(tmp_path / "q.csv", X, y, extra=notes)
    monkeypatch.setattr(files, "SPLIT_BYTES", 1)
    monkeypatch.setattr(files, "usable_cpus", lambda: 2)
    rows = FileRows(path, target="y", drop=["note"], chunk_rows=64)
    est = AdamRegressor().fit(rows)
    assert_allclose(est.coef_, AdamRegressor().fit(X, y).coef_, rtol=1e-9)


def test_the_first_bad_cell_is_named_even_in_a_later_part(tmp_path, monkeypatch):
    X, y = _design(n=4000, d=2)
    path = _csv(tmp_path / "d.csv", X, y)
    lines = path.read_text().splitlines()
    lines[3001] = lines[3001].replace(lines[3001].split(",")[1], "oops", 1)
    lines[3500] = lines[3500].replace(lines[3500].split(",")[0], "", 1)
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(files, "SPLIT_BYTES", 1)
    monkeypatch.setattr(files, "usable_cpus", lambda: 2)
    rows = FileRows(path, target="y", chunk_rows=512)
    with pytest.raises(ValueError, match=r"column 'x1' .* row 3002 holds 'oops'"):
        AdamRegressor().fit(rows)


@pytest.mark.parametrize(
    "cell, message",
    [
        ("", "missing value at row 5"),
        ("NA", "missing value at row 5"),
        ("inf", "infinite value at row 5"),
        ("1e400", "infinite value at row 5"),
        ("True", "not numeric: row 5 holds 'True'"),
        ("0x10", "not numeric: row 5 holds '0x10'"),
    ],
)
def test_cells_that_are_not_finite_numbers_are_named(tmp_path, cell, message):
    X, y = _design(n=20, d=2)
    path = _csv(tmp_path / "d.csv", X, y)
    lines = path.read_text().splitlines()
    _, rest = lines[4].split(",", 1)
    lines[4] = f"{cell},{rest}"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=f"column 'x0' .*{message}"):
        AdamRegressor().fit(FileRows(path, target="y", chunk_rows=3))


def test_parquet_cells_not_allowed_are_named(tmp_path):
    table = pa.table({"a": [1.0, None, 3.0], "b": ["x", "y", "z"], "y": [1, 2, 3]})
    pq.write_table(table, tmp_path / "t.parquet")
    path = tmp_path / "t.parquet"
    with pytest.raises(ValueError, match=r"column 'a' .* missing value at row 2"):
        AdamRegressor().fit(FileRows(path, target="y", drop=["b"]))
    pq.write_table(table.set_column(0, "a", pa.array([1.0, 2.0, 3.0])), path)
    with pytest.raises(ValueError, match=r"column 'b' .* not numeric: row 1 holds"):
        AdamRegressor().fit(FileRows(path, target="y"))


def test_score_comes_from_the_kept_statistics_while_the_file_is_unchanged(
    tmp_path,
):
    X, y = _design()
    path = _csv(tmp_path / "d.csv", X, y)
    rows = FileRows(path, target="y", chunk_rows=500)
    est = AdamRegressor().fit(rows)
    assert rows.cached_stats() is not None and rows.n_rows == len(y)
    assert est.score(rows) == pytest.approx(r2_score(y, _predicted(est, X)), abs=1e-12)
    # another file content under the same name: read again
    _csv(path, X[:1000], -y[:1000])
    assert rows.cached_stats() is None
    assert est.score(rows) == pytest.approx(
        r2_score(-y[:1000], _predicted(est, X[:1000])), abs=1e-12
    )
    assert rows.n_rows == 1000


def test_predict_reads_chunks_and_checks_the_columns(tmp_path):
    X, y = _design()
    path = _csv(tmp_path / "d.csv", X, y)
    est = AdamRegressor().fit(FileRows(path, target="y"))
    assert_allclose(
        est.predict(FileRows(path, chunk_rows=128, drop=["y"])),
        _predicted(est, X),
        rtol=1e-13,
    )
    swapped = FileRows(path, columns=["x1", "x0", "x2", "x3"])
    with pytest.raises(ValueError, match="feature names should match"):
        est.predict(swapped)


def test_what_a_file_fit_refuses(tmp_path):
    X, y = _design(n=50, d=2)
    path = _csv(tmp_path / "d.csv", X, y)
    rows = FileRows(path, target="y")
    with pytest.raises(ValueError, match="carries its target"):
        AdamRegressor().fit(rows, y)
    with pytest.raises(ValueError, match="early_stopping is not supported"):
        AdamRegressor(early_stopping=True).fit(rows)
    with pytest.raises(ValueError, match="partial_fit takes in-memory chunks"):
        AdamRegressor().partial_fit(rows, None)
    with pytest.raises(ValueError, match="no target"):
        AdamRegressor().fit(FileRows(path))
    with pytest.raises(ValueError, match="requires y to be passed"):
        AdamRegressor().fit(X)
    with pytest.raises(ValueError, match="no column 'z'"):
        FileRows(path, target="z")
    with pytest.raises(ValueError, match="chunk_rows"):
        FileRows(path, target="y", chunk_rows=0)
    with pytest.raises(FileNotFoundError, match="file not found"):
        FileRows(tmp_path / "none.csv")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_mini_batches_read_the_file_each_epoch(tmp_path):
    X, y = _design(n=5000, d=3)
    rows = FileRows(_csv(tmp_path / "d.csv", X, y), target="y", chunk_rows=1000)
    est = AdamRegressor(batch_size=256, random_state=0, max_iter=30).fit(rows)
    best = r2_score(y, np.c_[X, np.ones(len(X))] @ np.linalg.lstsq(
        np.c_[X, np.ones(len(X))], y, rcond=None)[0])  # fmt: skip
    assert best - r2_score(y, _predicted(est, X)) < 1e-3


def test_squares_that_overflow_are_scaled_as_in_memory(tmp_path):
    X, y = _design(n=300, d=2)
    big = X * 1e160
    rows = FileRows(_csv(tmp_path / "d.csv", big, y), target="y", chunk_rows=64)
    est = AdamRegressor().fit(rows)
    assert_allclose(est.coef_, AdamRegressor().fit(big, y).coef_, rtol=1e-9)


def _traced_peak(rows):
    tracemalloc.start()
    try:
        AdamRegressor().fit(rows)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_fit_holds_one_chunk_not_the_file(tmp_path):
    """The memory numpy and pandas allocate during a fit (traced) does not
    grow with the file: four times the rows, the same peak, far below the
    rows as one array."""
    X, y = _design(n=60000, d=8)
    small = FileRows(_csv(tmp_path / "s.csv", X[:15000], y[:15000]), target="y")
    large = FileRows(_csv(tmp_path / "l.csv", X, y), target="y")
    small.chunk_rows = large.chunk_rows = 2000
    peaks = _traced_peak(small), _traced_peak(large)
    assert peaks[1] < 1.25 * peaks[0], peaks
    assert peaks[1] < (X.nbytes + y.nbytes) / 2, peaks


def test_without_pandas_the_message_says_what_to_install(tmp_path, monkeypatch):
    X, y = _design(n=20, d=2)
    rows = FileRows(_csv(tmp_path / "d.csv", X, y), target="y")
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install 'sk-adam\[files\]'"):
        AdamRegressor().fit(rows)


@pytest.mark.parametrize("compression", ["gzip", "bz2", "xz", "zip"])
def test_a_compressed_csv_is_read_as_the_plain_one(tmp_path, compression):
    import pandas as pd

    X, y = _design(n=2000, d=3)
    plain = _csv(tmp_path / "d.csv", X, y)
    packed = tmp_path / "d.data"  # recognised by its content, not its name
    pd.read_csv(plain).to_csv(
        packed, index=False, compression=compression, float_format="%.17g"
    )
    rows = FileRows(packed, target="y", chunk_rows=300)
    assert rows.compression == compression and rows.parts(2) == [None]
    a = AdamRegressor().fit(rows)
    b = AdamRegressor().fit(FileRows(plain, target="y", chunk_rows=300))
    assert_array_equal(a.coef_, b.coef_)


def test_a_repeated_quoted_header_name_is_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('"a,1",b,"a,1",y\n1,2,3,4\n5,6,7,8\n')
    with pytest.raises(ValueError, match="names the column 'a,1' twice"):
        FileRows(path, target="y")


def test_an_ill_conditioned_file_is_read_once(tmp_path, monkeypatch):
    # polynomial features (a standardized condition number of 6e4, beyond
    # what the Gram matrix resolves): every chunk's own Gram matrix fails
    # too, so the pass brings the chunks' QR factors with their statistics
    # and the file is read once, not a second time for the factors
    rng = np.random.RandomState(0)
    x = rng.uniform(0, 2, 1200)
    X = np.column_stack([x**p for p in range(1, 8)])
    y = X @ np.linspace(1, -1, 7) + 0.01 * rng.randn(1200)
    reads = []
    chunks = files.FileRows.chunks

    def counted(self, part=None):
        reads.append(part)
        return chunks(self, part)

    monkeypatch.setattr(files.FileRows, "chunks", counted)
    rows = FileRows(_csv(tmp_path / "p.csv", X, y), target="y", chunk_rows=200)
    est = AdamRegressor().fit(rows)
    assert reads == [None]
    # the factors are kept with the statistics: a refit reads nothing
    again = AdamRegressor().fit(rows)
    assert reads == [None]
    assert_array_equal(again.coef_, est.coef_)
    ref = AdamRegressor().fit(X, y)
    assert est.n_iter_ == ref.n_iter_
    assert_allclose(est.coef_, ref.coef_, rtol=1e-8)
    exact = np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)[0]
    assert r2_score(y, _predicted(est, X)) == pytest.approx(
        r2_score(y, np.c_[X, np.ones(len(X))] @ exact), abs=1e-10
    )
