"""The code blocks of docs/caching.md run as written, in order, in an empty directory.

The blocks run in a namespace with a ``__name__`` (unlike ``_docs.run_python_blocks``):
fleche refuses functions whose ``__module__`` is None, as exec gives them otherwise.
"""

from __future__ import annotations

from typing import Any

import pytest
from _docs import DOCS, python_blocks

PAGE = DOCS / "caching.md"


@pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")
def test_caching_page_examples_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(PAGE.read_text())
    assert len(blocks) >= 4
    namespace: dict[str, Any] = {"__name__": "caching_docs"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"caching.md[block {i}]", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"caching.md block {i} failed: {exc!r}\n{block}") from exc
    out = capsys.readouterr().out
    assert out.count("computing") == 1  # the second call is a cache hit
    assert "positions: ndarray (numpy), shape=(8, 3), dtype=float64" in out
    assert 'metadata: {"fleche": {"key"' in out
    assert len(list((tmp_path / "cache" / "values").rglob("*.h5"))) == len(list(namespace["cache"].values.list()))
    namespace["cache"].calls.engine.dispose()
