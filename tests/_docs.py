"""Run the Python code blocks of a Markdown page as written, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent.parent / "docs"


def python_blocks(text: str) -> list[str]:
    """The ```python blocks of a Markdown text."""
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def section_namespace(page: Path, heading: str) -> dict[str, Any]:
    """Execute the first ```python block after ``heading`` in ``page``; return its namespace
    (the procedures a format page gives for readers without storage_nodes)."""
    text = page.read_text()
    block = python_blocks(text[text.index(heading) :])[0]
    namespace: dict[str, Any] = {}
    exec(compile(block, f"{page.name}[{heading}]", "exec"), namespace)
    return namespace


def run_python_blocks(page: Path) -> tuple[dict[str, Any], int]:
    """Execute the blocks of ``page`` in one namespace; return it and the number of blocks.

    A failing block raises ``AssertionError`` naming the page, the block and its text.
    """
    blocks = python_blocks(page.read_text())
    namespace: dict[str, Any] = {}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{page.name}[block {i}]", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{page.name} block {i} failed: {exc!r}\n{block}") from exc
    return namespace, len(blocks)


def execute_notebook(notebook: Path, directory: Path) -> tuple[Any, str]:
    """Run ``notebook`` top to bottom in ``directory`` (nbclient); return it and its text outputs.

    Saved outputs are cleared first, so the assertions judge this run only.
    """
    import nbclient
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(directory)}}
    ).execute()
    cells = [
        "".join(out.get("text", "") + out.get("data", {}).get("text/plain", "") for out in cell.get("outputs", []))
        for cell in nb.cells
        if cell.cell_type == "code"
    ]
    return nb, "\n".join(cells)
