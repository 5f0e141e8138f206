"""Accuracy on hard designs (the table of examples/plot_accuracy.py)."""

import importlib.util
from pathlib import Path

import numpy as np

PATH = Path(__file__).parents[1] / "examples" / "plot_accuracy.py"


def test_defaults_match_the_closed_form_where_adam_can():
    spec = importlib.util.spec_from_file_location("plot_accuracy", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.table()
    assert len(rows) == 10
    for name, cond, _, gap, gap_pipeline, _, _ in rows:
        assert np.isfinite(gap) and np.isfinite(gap_pipeline), name
        assert abs(gap) < 5e-3, name
        if cond < 1e3 or cond > 1e6:  # well conditioned, or singular
            assert abs(gap) < 1e-6, (name, gap)
            assert abs(gap_pipeline) < 1e-6, (name, gap_pipeline)
