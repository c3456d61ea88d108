"""notebooks/catalog.ipynb runs top to bottom (nbclient), so it cannot rot."""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "catalog.ipynb"


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def test_catalog_notebook_executes(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []  # judge this run only, not the outputs saved in the file
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = "\n".join(_text(c) for c in nb.cells if c.cell_type == "code")
    assert "<Catalog sqlite:///" in text
    assert "<Hit storage_nodes.demo.relax in" in text and "upstream: ['start']" in text
    assert "(['energies', 'positions']," in text  # lookup found the recorded call
    assert "refused: StaleEntryError" in text and "'file was rewritten'" in text
    assert not any(tmp_path.iterdir())  # the notebook writes into its own temporary directory
