"""The code blocks of docs/nodes.md run as written, in order, in an empty directory."""

from __future__ import annotations

import pytest
from _docs import DOCS, run_python_blocks

PAGE = DOCS / "nodes.md"


@pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")
def test_nodes_page_examples_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _, count = run_python_blocks(PAGE)
    assert count >= 6
    out = capsys.readouterr().out
    assert "valid backends are ['cloudpickle', 'h5', 'json', 'pickle']" in out
    assert "positions: ndarray (numpy), shape=(64, 3)" in out
    assert {"results.h5", "relax_workflow.h5", "outputs.pkl", "energy.data"} <= {p.name for p in tmp_path.iterdir()}
