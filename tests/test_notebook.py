"""notebooks/quickstart.ipynb runs top to bottom (nbclient), so it cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

from _docs import execute_notebook

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_executes(tmp_path):
    nb, text = execute_notebook(NOTEBOOK, tmp_path)
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
