"""The examples run (on small sizes)."""

import importlib.util
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_streaming_and_dask_example(capsys):
    example = _load("streaming_and_dask")
    model = example.streaming(n_chunks=20, rows=500)
    # one epoch a chunk, in batches of 256 with the defaults: 500 rows, 2
    assert model.n_iter_ == 20 and model.t_ == 20 * 2
    on_cluster = example.on_dask(n_rows=8_000, block=2_000)
    np.testing.assert_allclose(on_cluster.coef_, example.TRUE_COEF, atol=0.05)
    out = capsys.readouterr().out
    assert "largest difference to the in-memory fit" in out
