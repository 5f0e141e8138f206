"""The documentation builds with no warning, running every gallery example."""

import shutil
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).parents[1] / "docs"


def test_docs_build_without_warnings(tmp_path):
    # the gallery's generated pages are a cache: without them every example
    # runs again
    shutil.rmtree(DOCS / "auto_examples", ignore_errors=True)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        env={"MPLBACKEND": "Agg", **_env()},
    )
    assert run.returncode == 0, run.stderr[-4000:]
    html = (tmp_path / "html" / "auto_examples" / "index.html").read_text()
    for example in [
        "plot_compare_linear_regression",
        "plot_grid_search",
        "plot_moments",
        "streaming_and_dask",
    ]:
        assert example in html
    # every example ran: its rendered page holds its printed output
    page = (tmp_path / "html" / "auto_examples" / "plot_moments.html").read_text()
    assert "first step of every coefficient" in page
    # and the plotting ones drew a figure (no placeholder thumbnail)
    for example in ["plot_accuracy", "plot_grid_search", "plot_moments"]:
        page = (tmp_path / "html" / "auto_examples" / f"{example}.html").read_text()
        assert f"sphx_glr_{example}_001.png" in page, example


def _env():
    import os

    return dict(os.environ)
