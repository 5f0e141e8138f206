"""Files read in chunks: a CSV or Parquet file's rows as blocks of a fit.

:class:`FileRows` is what a user holds: a file, its target and feature
columns. Reading it is one pass of chunks of ``chunk_rows`` rows (pandas'
CSV parser; pyarrow's Parquet reader), each checked as it is read: numeric
columns, no missing or infinite value, with the row that holds the first
one not allowed. :class:`FileData` is what ``fit`` sees: every pass over the
file summarises each chunk into the same mergeable statistics a dask
cluster reduces (:class:`sk_adam._blocks.BlockData`), so a fit holds one
chunk at a time, whatever the size of the file.

pandas (CSV) and pyarrow (Parquet) are imported only when a file is read:
they are an optional extra (``pip install sk-adam[files]``).
"""

from __future__ import annotations

import io
import itertools
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ._blocks import BlockData
from ._statistics import GramStats, blas_threads, usable_cpus

__all__ = ["FileData", "FileRows"]

#: Rows per chunk: 65,536 rows of 20 columns are 10 MiB of float64.
CHUNK_ROWS = 65_536

#: CSV files from this size on are read in parts, one thread each.
SPLIT_BYTES = 16 * 2**20

#: At most this many parts (each holds a chunk and pandas' buffers, about
#: 30 MiB at 20 columns: the memory stays bounded on many-core machines).
MAX_PARTS = 4


def _needs(module: str):
    """Import ``module`` (pandas, pyarrow), or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"reading files needs {module.split('.')[0]}: pip install 'sk-adam[files]'"
        ) from None


def _shown(cell, width=40):
    """A cell as a message shows it: at most ``width`` characters."""
    cell = str(cell)
    return repr(cell if len(cell) <= width else cell[:width] + "...")


class FileRows:
    """The rows of a CSV or Parquet file, read in chunks by ``fit``.

    Pass it to :meth:`AdamRegressor.fit <sk_adam.AdamRegressor.fit>` as
    ``X`` (without ``y``): the fit reads the file in one pass, chunk by
    chunk, into sufficient statistics (its memory is one chunk and a few
    ``d x d`` matrices, whatever the file's size), and keeps those
    statistics here, so that another fit of the same columns, or
    :meth:`AdamRegressor.score <sk_adam.AdamRegressor.score>`, reads the
    file no more (while it is unchanged). :meth:`predict
    <sk_adam.AdamRegressor.predict>` reads it chunk by chunk too.

    Parameters
    ----------
    path : str or path-like
        A CSV file with a header row (UTF-8, a byte-order mark allowed;
        compressed by gzip, bz2, xz, zip or zstd, or not), or a Parquet file
        (each recognised by its content, not its name).
    target : str, default=None
        The target column; None when the rows are only predicted.
    columns : sequence of str, default=None
        The feature columns, in this order; None: every column but the
        target.
    drop : sequence of str, default=()
        Columns left out of the features (an ID, a date).
    chunk_rows : int, default=65536
        Rows per chunk.

    Attributes
    ----------
    feature_names : list of str
        The feature columns, in the order of the coefficients.
    format : {"csv", "parquet"}
        How the file is read.
    compression : {None, "gzip", "bz2", "xz", "zip", "zstd"}
        A compressed CSV's compression (read in one thread: a compressed
        file cannot be split into byte ranges).

    Raises
    ------
    ValueError
        On construction, for a name that is not a column, a column named
        twice, or no feature left; on reading, for a cell that is not
        numeric, missing or infinite (naming its column and row), or a row
        with more cells than the header.

    Notes
    -----
    Every row weighs one. Cells that pandas reads as missing (an empty
    cell, ``NA``, ``nan``, ``null``, ...) are errors, as are booleans and
    text. In messages a CSV row is its line in the file (the header is row
    1, blank lines are not counted); a Parquet row counts from 1.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sk_adam import AdamRegressor, FileRows
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(1000, 2)
    >>> y = 3 * X[:, 0] - X[:, 1] + 0.5
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.csv")
    >>> table = np.column_stack([np.arange(1000), X, y])
    >>> np.savetxt(path, table, delimiter=",", header="id,a,b,y", comments="")
    >>> rows = FileRows(path, target="y", drop=["id"], chunk_rows=300)
    >>> rows.feature_names
    ['a', 'b']
    >>> est = AdamRegressor().fit(rows)
    >>> est.coef_.round(4), round(float(est.intercept_), 4)
    (array([ 3., -1.]), 0.5)
    >>> round(est.score(rows), 6)
    1.0
    """

    def __init__(
        self,
        path,
        target: str | None = None,
        *,
        columns: Sequence[str] | None = None,
        drop: Sequence[str] = (),
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"file not found: {self.path}")
        if not (isinstance(chunk_rows, int | np.integer) and chunk_rows >= 1):
            raise ValueError(f"chunk_rows={chunk_rows!r}: a positive integer")
        self.chunk_rows = int(chunk_rows)
        self.target = target
        magic = _magic(self.path)
        self.format = "parquet" if magic.startswith(b"PAR1") else "csv"
        #: the CSV's compression, recognised by its content (pandas' name)
        self.compression = next(
            (name for name, start in _COMPRESSED.items() if magic.startswith(start)),
            None,
        )
        self._columns = self._header()
        self.feature_names = _feature_columns(
            self.path, self._columns, target, columns, list(drop)
        )
        self._stats = None  # (file signature, GramStats) of the last pass
        self._factors = None  # the QR factors of the same rows, where taken

    def __repr__(self) -> str:
        return f"FileRows({str(self.path)!r}, target={self.target!r})"

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_rows(self) -> int:
        """The number of data rows: from the statistics of the last pass
        where the file is unchanged since, else counted (a pass)."""
        stats = self.cached_stats()
        if stats is not None:  # every row weighs one
            return round(stats.weight)
        return sum(len(X) for X, _ in self.chunks())

    def _header(self) -> list[str]:
        """The file's column names, each at most once."""
        if self.format == "parquet":
            pq = _needs("pyarrow.parquet")
            header = list(pq.ParquetFile(self.path).schema_arrow.names)
        else:  # the first row as text (pandas would rename a repeated name)
            pd = _needs("pandas")
            try:
                first = pd.read_csv(
                    self.path,
                    header=None,
                    nrows=1,
                    dtype=str,
                    keep_default_na=False,
                    encoding="utf-8-sig",
                    compression=self.compression,
                )
            except pd.errors.EmptyDataError:
                first = None
            except pd.errors.ParserError as exc:
                raise ValueError(_parser_message(self.path, exc, [])) from None
            header = [] if first is None else [str(c).strip() for c in first.iloc[0]]
            if not any(header):
                raise ValueError(
                    f"{self.path} is empty: it needs a header row and data rows"
                )
        seen = set()
        for name in header:
            if name in seen:
                raise ValueError(
                    f"{self.path} names the column {name!r} twice: rename one, "
                    f"so that each column is read once"
                )
            seen.add(name)
        return header

    def _signature(self):
        """What tells that the file changed since a pass."""
        stat = os.stat(self.path)
        return stat.st_size, stat.st_mtime_ns, tuple(self.feature_names), self.target

    def chunks(self, part=None) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """The file's rows, ``chunk_rows`` at a time: ``(X, y)`` with ``X``
        float64 of shape ``(m, n_features)`` and ``y`` float64 of shape
        ``(m,)`` (None without a target), each checked as it is read.

        ``part``, one of :meth:`parts`: only its rows (row numbers in
        messages then count from the part's start)."""
        names = list(self.feature_names)
        wanted = names if self.target is None else [*names, self.target]
        if self.format == "parquet":
            tables, convert = self._parquet_chunks(wanted), _arrow_as_float
        else:
            tables, convert = self._csv_chunks(part), _pandas_as_float
        first = 0  # rows read so far
        for table in tables:
            m = len(table[wanted[0]])
            if not m:
                continue
            X = np.empty((m, len(names)))
            for j, name in enumerate(names):
                X[:, j] = self._numeric(name, convert(table[name]), first)
            y = None
            if self.target is not None:
                y = self._numeric(self.target, convert(table[self.target]), first)
            first += m
            yield X, y
        if not first and part is None:
            raise ValueError(f"{self.path} has a header but no data rows")

    def parts(self, n: int) -> list:
        """Up to ``n`` parts of the data rows that can be read independently
        (by threads; pandas' parser releases the GIL): a CSV file of at least
        :data:`SPLIT_BYTES` whose header holds no quote is split into byte
        ranges at line breaks (:class:`_Part`; reading a part that holds a
        quote raises :class:`_Quoted`, since a quoted cell may hold a line
        break: the caller then reads the whole file instead); anything else
        is one part, None (the whole file)."""
        size = self.path.stat().st_size
        if self.format != "csv" or self.compression or n < 2 or size < SPLIT_BYTES:
            return [None]
        with self.path.open("rb") as handle:
            header = handle.readline()
            bounds = [len(header)]
            if b'"' in header or b"\r" in header.rstrip(b"\r\n"):
                return [None]
            for i in range(1, n):
                handle.seek(max(bounds[0] + (size - bounds[0]) * i // n, bounds[-1]))
                handle.readline()  # to the next line break
                if handle.tell() >= size:
                    break
                bounds.append(handle.tell())
        bounds.append(size)
        pairs = itertools.pairwise(bounds)
        return [_Part(start, end) for start, end in pairs if end > start]

    def _row(self, index) -> str:
        """Row ``index`` (from 0) as messages name it."""
        return f"row {index + 2}" if self.format == "csv" else f"row {index + 1}"

    def _numeric(self, name, converted, first) -> np.ndarray:
        """A column of one chunk (``converted``: ``(values, bad)`` as
        :func:`_pandas_as_float` gives it) as finite float64, or the error
        that names the first cell that is not."""
        values, bad = converted
        if bad is not None:
            raise ValueError(
                f"column {name!r} of {self.path} is not numeric: "
                f"{self._row(first + bad[0])} holds {_shown(bad[1])}"
            )
        finite = np.isfinite(values)
        if not finite.all():
            i = int(np.argmin(finite))
            what = "a missing" if np.isnan(values[i]) else "an infinite"
            raise ValueError(
                f"column {name!r} of {self.path} has {what} value at "
                f"{self._row(first + i)}: remove or impute it first"
            )
        return values

    def _csv_chunks(self, part=None):
        pd = _needs("pandas")
        parser_warning = pd.errors.ParserWarning
        source = self.path if part is None else _ByteRange(self.path, part)
        try:
            with warnings.catch_warnings():
                # pandas warns, and drops cells, where the first data row has
                # more cells than the header: an error here
                warnings.simplefilter("error", parser_warning)
                reader = pd.read_csv(
                    source,
                    header=0 if part is None else None,
                    names=self._columns,
                    # every column, not usecols=wanted: with usecols pandas
                    # drops the extra cells of a ragged row without a word
                    index_col=False,  # a first row with an extra cell is no index
                    encoding="utf-8-sig",
                    compression=self.compression if part is None else None,
                    chunksize=self.chunk_rows,
                )
                with reader:
                    yield from reader
        except parser_warning:
            raise ValueError(
                f"row 2 of {self.path} has more cells than the header has "
                f"columns ({len(self._columns)})"
            ) from None
        except pd.errors.ParserError as exc:
            raise ValueError(_parser_message(self.path, exc, self._columns)) from None
        finally:
            if part is not None:
                source.close()

    def _parquet_chunks(self, wanted):
        pq = _needs("pyarrow.parquet")
        # pre_buffer=False: pyarrow would otherwise hold the whole file
        with pq.ParquetFile(self.path, pre_buffer=False) as handle:
            batches = handle.iter_batches(batch_size=self.chunk_rows, columns=wanted)
            for batch in batches:
                yield {name: batch.column(name) for name in wanted}

    def to_arrays(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Every row in memory: ``(X, y)`` (for what needs whole arrays)."""
        parts = list(self.chunks())
        X = np.concatenate([x for x, _ in parts])
        y = None if self.target is None else np.concatenate([y for _, y in parts])
        return X, y

    # -- the statistics of the last pass -------------------------------

    def cached_stats(self) -> GramStats | None:
        """The statistics of the last complete pass, if the file and the
        columns are as they were then."""
        if self._stats is None or self._stats[0] != self._signature():
            return None
        return self._stats[1]

    def cached_factors(self):
        """The QR factors (:class:`~sk_adam._statistics.FactorStats`) of
        the rows the cached statistics are of, where a pass took them."""
        return None if self.cached_stats() is None else self._factors

    def keep_stats(self, signature, stats: GramStats, factors=None) -> None:
        self._stats, self._factors = (signature, stats), factors

    def keep_factors(self, factors) -> None:
        """Keep the QR factors of the rows the kept statistics are of."""
        self._factors = factors


class _Quoted(Exception):
    """A part of a split CSV file holds a quote character: a quoted cell may
    hold a line break, so the split may have cut a row."""


class _Part:
    """Bytes ``start`` to ``end`` of a CSV file's data rows, starting and
    ending at line breaks; ``stop``, once set, ends its reading (another
    part failed)."""

    def __init__(self, start: int, end: int) -> None:
        import threading

        self.start, self.end = start, end
        self.stop = threading.Event()


class _ByteRange(io.RawIOBase):
    """A :class:`_Part` of a file, as a file (for a parser); raises
    :class:`_Quoted` at the first read that meets a quote character."""

    def __init__(self, path, part: _Part) -> None:
        super().__init__()
        self._file = open(path, "rb")  # closed by close()
        self._file.seek(part.start)
        self._left = part.end - part.start
        self._stop = part.stop

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = min(len(buffer), self._left)
        if size <= 0:
            return 0
        if self._stop.is_set():
            raise _Quoted  # or any reason another part gave up: read again
        view = memoryview(buffer)[:size]
        got = self._file.readinto(view)
        self._left -= got
        data = buffer if isinstance(buffer, bytearray) else bytes(view[:got])
        if data.find(b'"', 0, got) >= 0:
            raise _Quoted
        return got

    def close(self) -> None:
        self._file.close()
        super().close()


#: The first bytes of the compressed files pandas reads, by its names.
_COMPRESSED = {
    "gzip": b"\x1f\x8b",
    "bz2": b"BZh",
    "xz": b"\xfd7zXZ",
    "zip": b"PK\x03\x04",
    "zstd": b"\x28\xb5\x2f\xfd",
}


def _magic(path: Path) -> bytes:
    """A file's first bytes, which say what it is."""
    with path.open("rb") as handle:
        return handle.read(6)


def _parser_message(path, exc, header) -> str:
    """pandas' tokenizer error, in a line that says what to fix."""
    import re

    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if found:
        _, line, saw = found.groups()
        return (
            f"row {line} of {path} has {saw} cells where the header has "
            f"{len(header)} columns"
        )
    text = text.removeprefix("Error tokenizing data. C error: ")
    return f"{path} is not a well-formed CSV file: {text[:200]}"


def _pandas_as_float(column):
    """``(values, None)``: a pandas column as float64; or ``(None, (index,
    cell))`` for its first cell that is not a number."""
    dtype = column.dtype
    if dtype.kind in "iuf":
        return column.to_numpy(dtype=np.float64, na_value=np.nan), None
    pd = _needs("pandas")
    failed = column.notna().to_numpy()
    if dtype.kind != "b":  # booleans are not numbers here; text may be
        numbers = pd.to_numeric(column, errors="coerce")
        failed = failed & numbers.isna().to_numpy()
        if not failed.any():  # every cell a number after all, or missing
            return numbers.to_numpy(dtype=np.float64, na_value=np.nan), None
    i = int(np.argmax(failed))
    return None, (i, column.iloc[i])


def _arrow_as_float(column):
    """As :func:`_pandas_as_float`, for a pyarrow column."""
    import pyarrow as pa

    kind = column.type
    if (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
    ):
        values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return np.asarray(values, dtype=np.float64), None
    valid = np.asarray(column.is_valid().to_numpy(zero_copy_only=False))
    i = int(np.argmax(valid)) if valid.any() else 0
    return None, (i, f"{column[i].as_py()!r} ({kind})")


def _feature_columns(path, header, target, columns, drop):
    """The feature columns to read: ``columns``, or all but ``target``,
    less ``drop``."""
    if target is not None and target not in header:
        raise ValueError(
            f"no column {target!r} in {path}; the columns are: {', '.join(header)}"
        )
    missing = [c for c in [*(columns or []), *drop] if c not in header]
    if missing:
        raise ValueError(
            f"{path} has no column(s) {', '.join(map(repr, missing))}; the "
            f"columns are: {', '.join(header)}"
        )
    if columns is None:
        columns = [c for c in header if c != target]
    if target is not None and target in columns:
        raise ValueError(f"{target!r} is the target: it cannot be a feature too")
    columns = [c for c in columns if c not in drop]
    if not columns:
        raise ValueError(f"{path} has no feature columns left besides {target!r}")
    return list(columns)


def _summarised(blocks, summarize, combine, args):
    """``summarize`` of every block, combined in order (None for none)."""
    result = None
    for x, y, s in blocks:
        part = summarize(x, y, s, *args)
        result = part if result is None else combine(result, part)
    return result


class FileData(BlockData):
    """A file's rows as ``fit`` sees them: each pass reads the file chunk by
    chunk (:meth:`FileRows.chunks`) and merges the chunks' statistics in
    order; an epoch of mini-batches reads the chunks in the file's order."""

    def __init__(self, rows: FileRows) -> None:
        if rows.target is None:
            raise ValueError(
                f"{rows!r} has no target: fitting needs FileRows(path, target=...)"
            )
        super().__init__(one_d=True)
        self.rows = rows

    dtypes = (np.dtype(np.float64),) * 3
    n_targets = 1
    checked_values = True  # FileRows.chunks checks every value it converts

    @property
    def n_features(self) -> int:
        return self.rows.n_features

    @property
    def feature_names(self) -> list[str]:
        return self.rows.feature_names

    @property
    def n_samples(self) -> None:
        """Not known before a pass."""
        return None

    def _blocks(self, part=None):
        """The chunks (of ``part``, else of the file) as blocks."""
        for X, y in self.rows.chunks(part):
            yield X, y[:, None], np.ones(X.shape[0])

    def reduce(self, summarize, combine, *args):
        """One pass: each part of the file (:meth:`FileRows.parts`) read and
        summarised chunk by chunk in file order by its own thread, the
        parts' results merged in file order (so the result does not depend
        on which thread ends first). Where a part holds a cell not allowed,
        the file is read again from its start, in one thread, for the
        message that names the first such cell."""
        parts = self.rows.parts(min(usable_cpus(), MAX_PARTS))
        if len(parts) == 1:
            return _summarised(self._blocks(), summarize, combine, args)
        from concurrent.futures import ThreadPoolExecutor

        def one(part):
            try:
                return _summarised(self._blocks(part), summarize, combine, args)
            except BaseException:
                for other in parts:  # the others need not read on
                    other.stop.set()
                raise

        # one BLAS thread each: the parts are the parallelism
        with blas_threads(1), ThreadPoolExecutor(len(parts)) as pool:
            futures = [pool.submit(one, part) for part in parts]
        try:
            results = [future.result() for future in futures]
        except (ValueError, _Quoted):  # a cell not allowed, or a quote
            return _summarised(self._blocks(), summarize, combine, args)
        results = [r for r in results if r is not None]
        if not results:
            raise ValueError(f"{self.rows.path} has a header but no data rows")
        total = results[0]
        for result in results[1:]:
            total = combine(total, result)
        return total

    def stats(self) -> GramStats:
        """The merged statistics (and the QR factors, where a pass took
        them), from the rows' last pass where the file is unchanged (else
        read now, and kept there)."""
        if self._stats is None:
            self._stats = self.rows.cached_stats()
            self._factors = self.rows.cached_factors()
        if self._stats is None:
            signature = self.rows._signature()
            self.rows.keep_stats(signature, super().stats(), self._factors)
        return self._stats

    def factors(self, ref, yref):
        """As :meth:`BlockData.factors`, kept with the statistics."""
        factors = super().factors(ref, yref)
        self.rows.keep_factors(factors)
        return factors

    def max_abs(self):
        ref, yref = np.zeros(self.n_features), np.zeros(1)
        for x, y, _ in self._blocks():
            ref = np.maximum(ref, np.abs(x).max(axis=0))
            yref = np.maximum(yref, np.abs(y).max(axis=0))
        return ref, yref

    def relative_weights(self) -> None:
        """Nothing to do: every row weighs one, so the weights' sum is the
        number of rows (never zero: an empty file is refused)."""

    def epoch_blocks(self, rng, shuffle):
        """The chunks in the file's order (a file is read front to back);
        ``shuffle`` shuffles the rows within each chunk."""
        return self._blocks()
