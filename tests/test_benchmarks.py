"""The benchmark code runs (on tiny sizes); timings are never asserted."""

from benchmarks.__main__ import main


def test_benchmarks_run_quick(tmp_path, capsys):
    assert main(["--quick", "--out", str(tmp_path)]) == 0
    table = (tmp_path / "quick.md").read_text()
    assert "Machine:" in table
    for method in [
        "LinearRegression().fit",
        "AdamRegressor(tol=...)",
        "seed loop",
        "SGDRegressor",
        "MLPRegressor",
        "torch.optim.Adam",
        "X @ u and X.T @ r",
        "AdamRegressor(precompute=True)",
        "StandardScaler + AdamRegressor",
        "partial_fit throughput",
        "mini-batch fit",
        "partial_fit, one pass with defaults",
        "SGDRegressor() on scaled rows",
        "dask array generated blockwise",
        "dask array persisted on 2 workers",
        "AdamRegressor(record_history=True)",
        "a CSV file of",
        "a PARQUET file of",
        "pandas.read_csv + LinearRegression().fit",
        "sk-adam fit",
        "statistics pass 2,000 x 5 (in rounds of its own)",
        "gram_stats without numba",
        "one bare pass over the persisted blocks",
        "the same rows as a persisted dask DataFrame",
        "5 epochs, steps on the workers",
        "dask_ml LinearRegression(solver='newton')",
        "dask_ml Incremental(SGDRegressor())",
        "(solver='newton'), blocks generated during the fit",
    ]:
        assert method in table, method


def test_passes_benchmark_runs_quick(capsys):
    from benchmarks import passes
    from sk_adam import _datafit

    margin = _datafit._BLOCK_MARGIN
    try:
        assert passes.main(["--quick"]) == 0
    finally:
        passes.ROUNDS, passes.SHRINK = 5, 1
        _datafit._BLOCK_MARGIN = margin
    out = capsys.readouterr().out
    cases = ("in memory, 10,000 x 35", "csv file", "dask, 40,000 x 7", "batch_size")
    for case in cases:
        assert case in out, case
