"""The sk-adam command line."""

import re
import subprocess
import sys

import pytest
from sklearn.exceptions import ConvergenceWarning

from sk_adam import __version__
from sk_adam._cli import main


def test_demo_prints_both_models(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    adam = re.search(r"AdamRegressor\s+([\d.]+)\s+([\d.]+)\s+(\d+)", out)
    ols = re.search(r"LinearRegression\s+([\d.]+)\s+([\d.]+)", out)
    assert adam and ols
    assert abs(float(adam[1]) - float(ols[1])) < 1e-4
    assert "stopped by the stall rule" in out


def test_demo_options_reach_the_estimator(capsys):
    with pytest.warns(ConvergenceWarning, match="max_iter=5"):
        main(["demo", "--alpha", "0.01", "--max-iter", "5"])
    out = capsys.readouterr().out
    assert re.search(r"AdamRegressor\s+\S+\s+\S+\s+5\s", out)
    assert "max_iter rule" in out


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
