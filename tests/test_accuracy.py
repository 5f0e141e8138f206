"""Accuracy on hard designs (the table of examples/plot_accuracy.py)."""

import importlib.util
from pathlib import Path

PATH = Path(__file__).parents[1] / "examples" / "plot_accuracy.py"


def test_defaults_match_the_closed_form_on_every_design():
    spec = importlib.util.spec_from_file_location("plot_accuracy", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.table()
    assert len(rows) == 10
    for name, cond, _, gap, gap_pipeline, _, stop, whitened in rows:
        assert abs(gap) < 1e-6, (name, gap)
        assert abs(gap_pipeline) < 1e-6, (name, gap_pipeline)
        assert stop != "max_iter", name
        # whitening is what the ill-conditioned, full-rank designs need
        if 1e2 < cond < 1e6:
            assert whitened, name
