"""The Python examples of docs/collections.md run as written, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "collections.md"


def test_collections_guide_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks
    namespace: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"collections.md[block {i}]", "exec"), namespace)
    col = namespace["col"]
    assert col.names == ["relax-300K", "relax-600K", "forces", "harmonic-run"]
    assert (tmp_path / "paper-2026.zip").exists()
    assert isinstance(col.load("harmonic-run/energy/outputs/energy"), float)
    assert col.member("relax-300K").location == "../runs/relax_300K.h5"
