"""notebooks/catalog.ipynb runs top to bottom (nbclient), so it cannot rot."""

from __future__ import annotations

from pathlib import Path

from _docs import execute_notebook

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "catalog.ipynb"


def test_catalog_notebook_executes(tmp_path):
    _, text = execute_notebook(NOTEBOOK, tmp_path)
    assert "<Catalog sqlite:///" in text
    assert "<Hit storage_nodes.demo.relax in" in text and "upstream: ['start']" in text
    assert "(['energies', 'positions']," in text  # lookup found the recorded call
    assert "refused: StaleEntryError" in text and "'file was rewritten'" in text
    assert not any(tmp_path.iterdir())  # the notebook writes into its own temporary directory
