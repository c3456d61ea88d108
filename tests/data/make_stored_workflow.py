"""Write ``stored_workflow_0.1.json``: a workflow of every node storage_nodes ships, stored as JSON.

Run once (``python tests/data/make_stored_workflow.py`` in a scratch directory) by the code
of the day the fixture was made; ``tests/graph/test_stored_recipes.py`` then loads and reruns it
with today's code, so the module paths that recipes record (``storage_nodes.nodes.SaveNode``,
``storage_nodes.collection_nodes.CollectNode``, ``storage_nodes.demo.*``) stay loadable.
Do not regenerate it to make a failing test pass: a failure means stored workflows broke.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pyiron_workflow as pwf

import storage_nodes as sn
from storage_nodes import CollectNode, InspectNode, LoadNode, SaveNode
from storage_nodes.demo import collect, distance_stats, harmonic_energy, random_positions, relax


def build() -> pwf.Workflow:
    wf = pwf.Workflow("every_node")
    wf.start = pwf.node(random_positions, n=4, seed=3)
    wf.relax = pwf.node(relax, positions=wf.start, k=2.0, steps=3)
    wf.energy = pwf.node(harmonic_energy, positions=wf.relax.outputs.positions, k=2.0)
    wf.collect = pwf.node(
        collect,
        positions=wf.relax.outputs.positions,
        energy=wf.energy.outputs.energy,
        forces=wf.energy.outputs.forces,
        energies=wf.relax.outputs.energies,
    )
    wf.save = pwf.node(SaveNode, obj=wf.collect, path="results.json", backend="json", metadata={"n": 4})
    wf.add = pwf.node(CollectNode, manifest="collection.json", path=wf.save, name="results")
    wf.load = pwf.node(LoadNode, path=wf.save, key="positions", safe=True)
    wf.stats = pwf.node(distance_stats, positions=wf.load)
    wf.info = pwf.node(InspectNode, path=wf.save)
    return wf


if __name__ == "__main__":
    out = Path(__file__).with_name("stored_workflow_0.1.json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        wf = build()
        wf.run()
        out.unlink(missing_ok=True)
        sn.save_workflow(wf, out, "json")
    print(f"wrote {out} with storage_nodes {sn.__version__}", file=sys.stderr)
