"""Workflows stored by earlier versions still load and rerun: recipe module paths are format.

``data/stored_workflow_0.1.json`` was written by ``data/make_stored_workflow.py`` with
storage_nodes 0.1.0 before the package was split into subpackages. Its recipe names every
node storage_nodes ships by ``module`` + ``qualname``; if one of those modules moves, this
test fails (never regenerate the fixture to make it pass).
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import storage_nodes as sn

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "stored_workflow_0.1.json"

RECORDED = {
    ("storage_nodes.demo", "random_positions"),
    ("storage_nodes.demo", "relax"),
    ("storage_nodes.demo", "harmonic_energy"),
    ("storage_nodes.demo", "collect"),
    ("storage_nodes.demo", "distance_stats"),
    ("storage_nodes.nodes", "SaveNode"),
    ("storage_nodes.nodes", "LoadNode"),
    ("storage_nodes.nodes", "InspectNode"),
    ("storage_nodes.collection_nodes", "CollectNode"),
}


def _references(recipe: dict) -> set[tuple[str, str]]:
    found = set()
    for node in recipe["nodes"].values():
        info = (node.get("reference") or {}).get("info")
        if info:
            found.add((info["module"], info["qualname"]))
    return found


def test_the_fixture_names_every_shipped_node():
    stored = sn.load_workflow(FIXTURE, version_policy="ignore", safe=True)
    assert _references(json.loads(stored.recipe_json)) == RECORDED


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    shutil.copy(FIXTURE, tmp_path / FIXTURE.name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_workflow_stored_by_0_1_reruns_with_todays_code(in_tmp):
    stored = sn.load_workflow(FIXTURE.name, version_policy="ignore")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        run = stored.rerun(directory="again")
    nodes = run.result.nodes
    out = in_tmp / "again"  # a rerun's SaveNodes and CollectNodes write beside, never over, the first run's files
    # the node functions came back from their recorded module paths and ran again
    for label in ("relax", "energy", "stats"):
        for port, value in stored.nodes[label]["outputs"].items():
            again = nodes[label].output_ports[port].value
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(again, value)
            elif isinstance(value, dict):
                assert again.keys() == value.keys()
            else:
                assert again == value
    # the storage nodes wrote, collected, loaded and inspected real files in the run directory
    assert sn.load(out / "results.json")["steps"] == 3
    assert sn.Collection.open(out / "collection.json").names == ["results"]
    np.testing.assert_array_equal(
        nodes["load"].output_ports["obj"].value, sn.load(out / "results.json", key="positions")
    )
    assert "positions" in str(sn.Listing.from_dict(nodes["info"].output_ports["listing"].value))
