"""CollectNode inside a pyiron_workflow Workflow: saved files join a collection as the workflow runs."""

from __future__ import annotations

import warnings

import flowrep
import pyiron_workflow as pwf

import storage_nodes as sn
from storage_nodes.collection import Collection
from storage_nodes.collection_nodes import CollectNode


@flowrep.atomic("path")
def save_result(value: float, path: str):
    """Stands in for SaveNode: saves and returns the path written (a Path)."""
    return sn.save({"energy": value}, path)


def _run(wf: pwf.Workflow):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a workflow without exposed ports warns
        return wf.run()


def _workflow(tmp_path, manifest: str, n: int) -> pwf.Workflow:
    wf = pwf.Workflow("collect")
    for i in range(n):
        save = pwf.node(save_result, value=float(-i), path=str(tmp_path / f"run{i}.json"))
        setattr(wf, f"save{i}", save)
        setattr(
            wf,
            f"collect{i}",
            pwf.node(CollectNode, manifest=manifest, path=save, name=f"run-{i}", tags=["Cu"], metadata={"i": i}),
        )
    return wf


def test_collect_node_adds_saved_files_from_parallel_branches(tmp_path):
    manifest = str(tmp_path / "collection.json")
    run = _run(_workflow(tmp_path, manifest, 4))
    assert run.result.nodes["collect0"].output_ports["collection"].value == manifest
    col = Collection.open(manifest)
    assert sorted(col.names) == [f"run-{i}" for i in range(4)]
    assert col.member("run-2").tags == ["Cu"] and col.member("run-2").metadata == {"i": 2}
    assert col.load("run-3", key="energy") == -3.0
    assert col.verify().ok


def test_rerun_replaces_members_instead_of_failing(tmp_path):
    manifest = str(tmp_path / "collection.json")
    wf = _workflow(tmp_path, manifest, 2)
    _run(wf)
    first = Collection.open(manifest).member("run-1").added
    _run(wf)
    col = Collection.open(manifest)
    assert col.names.count("run-1") == 1 and len(col) == 2 and col.member("run-1").added >= first


def test_collect_node_called_directly(tmp_path):
    path = sn.save([1, 2], tmp_path / "x.pkl")
    manifest = str(tmp_path / "c.json")
    assert CollectNode(manifest, path) == manifest
    assert Collection.open(manifest).names == ["x"]
