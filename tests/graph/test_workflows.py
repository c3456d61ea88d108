"""Whole workflows: save_workflow -> load_workflow -> rerun, partial loads, save/load_outputs."""

from __future__ import annotations

import json

import flowrep
import numpy as np
import pydantic
import pyiron_workflow as pwf
import pytest
from _compare import assert_same
from _nodes_helpers import make_grid, save_and_reload, summarize

import storage_nodes as sn
from storage_nodes.graph.workflows import WORKFLOW_KEY

pytestmark = pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")

BACKENDS = ["pickle", "cloudpickle", "json", "h5"]
SUFFIX = {"pickle": ".pkl", "cloudpickle": ".cpkl", "json": ".json", "h5": ".h5"}


def _workflow() -> pwf.Workflow:
    wf = pwf.Workflow("grid_stats")
    wf.grid = pwf.node(make_grid, scale=2.0)
    wf.create_input_for(wf.grid.inputs.n)
    wf.stats = pwf.node(summarize, grid=wf.grid, power=3)
    wf.set_outputs_to_unconnected_child_output()
    return wf


@pytest.fixture
def ran():
    wf = _workflow()
    run = wf.run(n=6)
    return wf, run


def _node_values(run) -> dict:
    return {
        label: {
            "inputs": {k: p.value for k, p in data.input_ports.items()},
            "outputs": {k: p.value for k, p in data.output_ports.items()},
        }
        for label, data in run.result.nodes.items()
        if label in ("grid", "stats")
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_load_rerun_reproduces_every_port(tmp_path, ran, backend):
    wf, run = ran
    path = sn.save_workflow(wf, tmp_path / f"wf{SUFFIX[backend]}", backend, metadata={"who": "test"})
    assert sn.registry.detect(path) == backend
    stored = sn.load_workflow(path)
    assert stored.label == "grid_stats"
    assert stored.inputs == {"n": 6}
    assert set(stored.outputs) == {"stats__total", "stats__squares"}
    assert_same(stored.outputs, dict(run.outputs))
    for label, ports in _node_values(run).items():
        assert_same(stored.nodes[label], ports)
    assert stored.nodes["stats"]["inputs"]["power"] == 3
    rerun = stored.rerun()
    assert_same(dict(rerun.outputs), stored.outputs)
    assert_same(_node_values(rerun), {k: stored.nodes[k] for k in ("grid", "stats")})
    assert sn.inspect(path).metadata == {"who": "test"}


def test_rebuilt_workflow_is_the_same_graph(tmp_path, ran):
    wf, _ = ran
    stored = sn.load_workflow(sn.save_workflow(wf, tmp_path / "wf.pkl", "pickle"))
    assert stored.recipe_json == wf.recipe.model_dump_json()
    assert stored.workflow.recipe.model_dump_json() == wf.recipe.model_dump_json()
    assert set(stored.workflow.nodes) == set(wf.nodes)
    other = stored.rerun(n=3)  # new inputs on the rebuilt workflow
    np.testing.assert_allclose(other.outputs["stats__squares"], np.linspace(0, 2, 3) ** 3)


def test_partial_load_of_one_port_and_inspect(tmp_path, ran):
    wf, run = ran
    path = sn.save_workflow(wf, tmp_path / "wf.json", "json")
    squares = sn.load(path, key="stats/outputs/squares")
    np.testing.assert_array_equal(squares, run.result.nodes["stats"].output_ports["squares"].value)
    assert sn.load(path, key="grid/inputs/n") == 6
    assert sn.load(path, key="outputs/stats__total") == run.outputs["stats__total"]
    listing = sn.inspect(path)
    for key in ("grid/inputs/n", "grid/outputs/grid", "stats/outputs/total", f"{WORKFLOW_KEY}/recipe"):
        assert key in listing
    assert listing["stats/outputs/squares"].shape == (6,)
    stored = sn.load_workflow(path)
    np.testing.assert_array_equal(stored["stats/outputs/squares"], squares)
    with pytest.raises(sn.KeyNotFoundError):
        stored["stats/outputs/nope"]


def test_recipe_is_readable_without_this_package_or_unpickling(tmp_path, ran):
    wf, _ = ran
    path = sn.save_workflow(wf, tmp_path / "wf.json", "json")
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)["data"][WORKFLOW_KEY]["recipe"]
    recipe = pydantic.TypeAdapter(flowrep.schemas.RecipeDiscrimination).validate_json(raw)
    assert set(recipe.nodes) >= {"grid", "stats"}
    assert sn.load(path, key=f"{WORKFLOW_KEY}/recipe", safe=True) == raw


def test_safe_loading(tmp_path, ran):
    wf, _ = ran
    stored = sn.load_workflow(sn.save_workflow(wf, tmp_path / "wf.json", "json"), safe=True)
    assert stored.inputs == {"n": 6}
    with pytest.raises(sn.UnsafeLoadError):
        sn.load_workflow(sn.save_workflow(wf, tmp_path / "wf.pkl", "pickle"), safe=True)


def test_explicit_run_is_saved_not_the_last(tmp_path):
    wf = _workflow()
    first = wf.run(n=2)
    wf.run(n=9)
    stored = sn.load_workflow(sn.save_workflow(wf, tmp_path / "wf.pkl", "pickle", run=first))
    assert stored.inputs == {"n": 2} and len(stored.outputs["stats__squares"]) == 2


def test_macro_children_are_stored_under_nodes(tmp_path):
    wf = pwf.Workflow("outer")
    wf.mac = pwf.node(save_and_reload, n=3, path=str(tmp_path / "inner.pkl"))
    wf.set_outputs_to_unconnected_child_output()
    wf.run()
    path = sn.save_workflow(wf, tmp_path / "outer.pkl", "pickle")
    np.testing.assert_array_equal(sn.load(path, key="mac/nodes/make_grid_0/outputs/grid"), np.linspace(0, 1, 3))
    assert sn.load(path, key="mac/nodes/SaveNode_0/inputs/backend") == "pickle"
    stored = sn.load_workflow(path)
    with pytest.raises(sn.FileExistsStorageError, match=r"mac\.SaveNode_0 -> .*inner\.pkl.*overwrite=True"):
        stored.rerun()  # the macro's SaveNode writes to an absolute path, fed through the macro's input
    assert_same(dict(stored.rerun(overwrite=True).outputs), stored.outputs)


def test_workflow_without_run_and_wrong_arguments(tmp_path):
    with pytest.raises(sn.StorageError, match=r"'grid_stats' has no finished run to save: call \.run\(\)"):
        sn.save_workflow(_workflow(), tmp_path / "wf.pkl", "pickle")
    with pytest.raises(sn.InvalidArgumentError):
        sn.save_workflow({"not": "a workflow"}, tmp_path / "wf.pkl", "pickle")
    assert not list(tmp_path.iterdir())


def test_json_refuses_values_it_cannot_hold_and_writes_nothing(tmp_path):
    wf = pwf.Workflow("objects")
    wf.grid = pwf.node(make_grid, n=2)
    wf.save = pwf.node(sn.SaveNode, obj=wf.grid, path=str(tmp_path / "g.pkl"))
    wf.info = pwf.node(sn.InspectNode, path=wf.save)
    wf.run()
    sn.save_workflow(wf, tmp_path / "ok.json", "json")  # a listing dict is JSON-able
    wf.opaque = pwf.node(_make_object)
    wf.run()
    with pytest.raises(sn.SerializationError, match="json"):
        sn.save_workflow(wf, tmp_path / "bad.json", "json")
    assert not (tmp_path / "bad.json").exists()
    stored = sn.load_workflow(sn.save_workflow(wf, tmp_path / "ok.cpkl", "cloudpickle"))
    assert isinstance(stored.nodes["opaque"]["outputs"]["thing"], _Thing)


def test_load_workflow_of_another_file_says_what_it_is(tmp_path):
    path = sn.save({"a": 1}, tmp_path / "plain.json")
    with pytest.raises(sn.CorruptFileError, match="does not hold a stored workflow"):
        sn.load_workflow(path)


def test_save_and_load_outputs(tmp_path, ran):
    wf, run = ran
    path = sn.save_outputs(run, tmp_path / "out.json", "json")
    assert_same(sn.load_outputs(path), dict(run.outputs))
    assert_same(sn.load_outputs(sn.save_outputs(wf, tmp_path / "wf_out.h5")), dict(run.outputs))  # its last run
    assert sn.load(path, key="stats__total") == run.outputs["stats__total"]
    node = pwf.node(make_grid, "solo")
    node.run(n=4)
    assert_same(sn.load_outputs(sn.save_outputs(node, tmp_path / "n.pkl", "pickle")), {"grid": np.linspace(0, 1, 4)})
    with pytest.raises(sn.StorageError, match="no finished run"):
        sn.save_outputs(pwf.node(make_grid, "never"), tmp_path / "x.pkl", "pickle")
    with pytest.raises(sn.CorruptFileError):
        sn.load_outputs(sn.save([1, 2], tmp_path / "list.json"))


class _Thing:
    pass


@flowrep.atomic("thing")
def _make_object() -> _Thing:
    return _Thing()


def test_default_backend_is_the_h5_archive_browsable_to_each_port(tmp_path, ran):
    wf, run = ran
    path = sn.save_workflow(wf, tmp_path / "wf.data")  # no suffix hint: the default decides
    assert sn.registry.detect(path) == "h5"
    listing = sn.inspect(path)
    assert listing["stats/outputs/squares"].shape == (6,)
    assert listing["grid/inputs/n"].type == "int"
    np.testing.assert_array_equal(sn.load(path, key="stats/inputs/grid"), sn.load(path, key="grid/outputs/grid"))
    assert sn.load(path, key="stats/outputs/total", safe=True) == run.outputs["stats__total"]
    stored = sn.load_workflow(path, safe=True)
    assert_same(dict(stored.rerun().outputs), stored.outputs)


@pytest.mark.parametrize("backend", ["json", "h5", "pickle"])
def test_stored_workflow_records_its_node_functions(tmp_path, backend):
    """The recipe names node functions without storing them: their module is in the record."""
    wf = _workflow_for_record()
    path = sn.save_workflow(wf, tmp_path / "wf.data", backend=backend)
    modules = sn.environment(path)["modules"]
    assert "storage_nodes.demo" in modules
    assert "random_positions" in modules["storage_nodes.demo"]["sources"]


def _workflow_for_record() -> pwf.Workflow:
    from storage_nodes.demo import harmonic_energy, random_positions

    wf = pwf.Workflow("recorded")
    wf.start = pwf.node(random_positions, n=4, seed=0)
    wf.energy = pwf.node(harmonic_energy, positions=wf.start)
    wf.run()
    return wf


def test_stored_workflow_repr_names_the_graph_not_its_recipe(tmp_path, ran):
    wf, _ = ran
    stored = sn.load_workflow(sn.save_workflow(wf, tmp_path / "wf.h5"))
    text = repr(stored)
    assert text.startswith("<StoredWorkflow 'grid_stats' (Workflow) from ") and "wf.h5" in text
    assert "nodes [grid, stats" in text and "inputs ['n']" in text and "stats__total" in text
    assert '"type":' not in text and len(text) < 300  # no recipe JSON, no port values


def test_save_outputs_refuses_a_run_without_outputs(tmp_path):
    """A 0.20 workflow exposes no outputs by default: saving its run stored {} silently."""
    wf = pwf.Workflow("closed")
    wf.grid = pwf.node(make_grid, n=3)
    run = wf.run()
    with pytest.raises(sn.InvalidArgumentError, match="set_outputs_to_unconnected_child_output"):
        sn.save_outputs(run, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()
    with pytest.raises(sn.StorageError, match="pass the workflow's Run"):
        sn.save_outputs(wf.grid, tmp_path / "child.h5")  # ran inside the workflow: no run of its own
