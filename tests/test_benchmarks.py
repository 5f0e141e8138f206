"""The benchmark code runs (on tiny sizes); timings are never asserted."""

from benchmarks.__main__ import main


def test_benchmarks_run_quick(tmp_path, capsys):
    assert main(["--quick", "--out", str(tmp_path)]) == 0
    table = (tmp_path / "quick.md").read_text()
    assert "| GridSearchCV, 5 fits, AdamRegressor |" in table
    assert "Machine:" in table
