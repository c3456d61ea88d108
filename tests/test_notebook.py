"""notebooks/quickstart.ipynb runs top to bottom (nbclient), so it cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import nbclient
import nbformat

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def test_quickstart_notebook_executes(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []  # judge this run only, not the outputs saved in the file
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = "\n".join(_text(c) for c in nb.cells if c.cell_type == "code")
    assert "['cloudpickle', 'h5', 'json', 'pickle']" in text
    assert "positions: ndarray (numpy), shape=(64, 3)" in text  # the InspectNode / inspect listing
    assert "'relax'" in text and "True)" in text  # rebuilt from the recipe, rerun identical
    assert "valid backends are" in text
    data = [out.get("data", {}) for c in nb.cells if c.cell_type == "code" for out in c.get("outputs", [])]
    listing_html = [d["text/html"] for d in data if "sn-listing" in d.get("text/html", "")]
    assert listing_html and "<details open>" in listing_html[0] and "positions" in listing_html[0]
    svg = [d["image/svg+xml"] for d in data if "image/svg+xml" in d]  # the drawn stored workflow
    assert svg and "<svg" in svg[0] and "storage_nodes.demo.relax" in svg[0] and "= ndarray (64, 3) float64" in svg[0]
    widgets = [d for d in data if "application/vnd.jupyter.widget-view+json" in d]  # the pyironflow GUI
    assert widgets and re.search(r"analysis \['info', .*'load', .*'stats'\]", text)
    assert not any(tmp_path.iterdir())  # the notebook writes into its own temporary directory
