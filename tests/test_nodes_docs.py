"""The code blocks of docs/nodes.md run as written, in order, in an empty directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "nodes.md"


@pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")
def test_nodes_page_examples_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert len(blocks) >= 6
    namespace: dict = {}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"nodes.md[block {i}]", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"nodes.md block {i} failed: {exc!r}\n{block}") from exc
    out = capsys.readouterr().out
    assert "valid backends are ['cloudpickle', 'h5', 'json', 'pickle']" in out
    assert "positions: ndarray (numpy), shape=(64, 3)" in out
    assert {"results.h5", "relax_workflow.h5", "outputs.pkl", "energy.data"} <= {p.name for p in tmp_path.iterdir()}
