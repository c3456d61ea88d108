"""CollectNode inside a pyiron_workflow Workflow: saved files join a collection as the workflow runs."""

from __future__ import annotations

import warnings

import flowrep
import pyiron_workflow as pwf

import storage_nodes as sn
from storage_nodes.collection_nodes import CollectNode
from storage_nodes.collections.collection import Collection


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


def test_collect_node_survives_a_recipe_round_trip(tmp_path):
    import pydantic

    manifest = str(tmp_path / "collection.json")
    text = _workflow(tmp_path, manifest, 1).recipe.model_dump_json()
    recipe = pydantic.TypeAdapter(flowrep.schemas.RecipeDiscrimination).validate_json(text)
    rebuilt = pwf.Workflow.from_recipe(recipe, "rebuilt")
    _run(rebuilt)
    assert Collection.open(manifest).load("run-0", key="energy") == 0.0


def test_real_save_node_feeds_collect_node_and_a_stored_workflow_is_a_member(tmp_path):
    from storage_nodes import SaveNode

    manifest = str(tmp_path / "collection.json")
    wf = pwf.Workflow("with_save_node")
    wf.save = pwf.node(SaveNode, obj={"energy": -1.0}, path=str(tmp_path / "r.json"))
    wf.collect = pwf.node(CollectNode, manifest=manifest, path=wf.save, name="r")
    run = _run(wf)
    col = Collection.open(manifest)
    assert col.load("r", key="energy") == -1.0
    col.add(sn.save_workflow(wf, tmp_path / "wf.pkl", backend="pickle", run=run), name="workflow")
    assert "workflow/save" in col.inspect()  # pickle headers list the top level
    assert col.load("workflow/collect/outputs/collection") == manifest
