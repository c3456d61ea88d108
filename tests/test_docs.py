"""The code blocks of the user docs run as written."""

from __future__ import annotations

import pytest
from _docs import DOCS, run_python_blocks

EXECUTED = ["api.md", "catalog.md"]


@pytest.mark.parametrize("page", EXECUTED)
def test_doc_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, count = run_python_blocks(DOCS / page)
    assert count, f"{page} has no python examples"
