"""SaveNode / LoadNode / InspectNode: alone, in workflows, in a macro, through a recipe round trip."""

from __future__ import annotations

import json
import typing

import flowrep
import numpy as np
import pydantic
import pyiron_workflow as pwf
import pytest
from _nodes_helpers import count, make_grid, save_and_reload, summarize

import storage_nodes as sn
from storage_nodes import InspectNode, LoadNode, SaveNode
from storage_nodes.nodes import BACKEND_CHOICES

pytestmark = pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")

BACKENDS = ["pickle", "cloudpickle", "json", "h5"]
SUFFIX = {"pickle": ".pkl", "cloudpickle": ".cpkl", "json": ".json", "h5": ".h5"}


def _value(run, node, port, side="output"):
    ports = run.result.nodes[node].output_ports if side == "output" else run.result.nodes[node].input_ports
    return ports[port].value


def _save_load_workflow(path, backend):
    wf = pwf.Workflow("chain")
    wf.grid = pwf.node(make_grid, n=7, scale=2.0)
    wf.save = pwf.node(SaveNode, obj=wf.grid, path=str(path), backend=backend, metadata={"step": "grid"})
    wf.load = pwf.node(LoadNode, path=wf.save)  # the edge orders the load after the save
    wf.info = pwf.node(InspectNode, path=wf.save)
    wf.size = pwf.node(count, data=wf.load)
    return wf


# --- the GUI condition -------------------------------------------------------------------


def _pyironflow_dropdown(hint):
    """pyironflow 0.1.4 ``entry._literal_members`` (the function behind its dropdowns), restated:
    strip ``Annotated``; a ``Literal`` (or a union made only of Literals) whose members are
    str/int/float/bool/None gives a dropdown of those members, anything else none."""
    while typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) is typing.Literal:
        members = list(typing.get_args(hint))
    else:
        return None
    return members if all(isinstance(m, str | int | float | bool | type(None)) for m in members) else None


@pytest.mark.parametrize("node_function", [SaveNode, LoadNode])
def test_backend_port_is_a_literal_of_registered_names(node_function):
    node = pwf.node(node_function, "n")
    hint = node.inputs.backend.type_hint
    assert typing.get_origin(hint) is typing.Literal
    assert typing.get_args(hint) == (None, *sn.backends())
    assert _pyironflow_dropdown(hint) == [None, *sn.backends()]
    assert (None, *sn.backends()) == BACKEND_CHOICES


def test_ports_are_as_documented():
    save, load, insp = pwf.node(SaveNode, "s"), pwf.node(LoadNode, "l"), pwf.node(InspectNode, "i")
    assert list(save.inputs) == ["obj", "path", "backend", "key", "metadata", "overwrite", "catalog", "data_filter"]
    assert list(save.outputs) == ["path"]
    assert list(load.inputs) == ["path", "key", "backend", "version_policy", "safe"]
    assert list(load.outputs) == ["obj"]
    assert list(insp.inputs) == ["path", "key", "depth", "full"]
    assert list(insp.outputs) == ["listing"]
    assert load.outputs.obj.type_hint is None  # unhinted: feeds a port of any type
    assert save.inputs.obj.type_hint is None


# --- each node alone ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_node_alone(tmp_path, backend):
    path = tmp_path / f"alone{SUFFIX[backend]}"
    data = {"a": [1, 2], "x": np.arange(3.0)}  # run-time data need not be JSON-able
    run = pwf.node(SaveNode, "save").run(obj=data, path=str(path), backend=backend)
    assert run.outputs["path"] == str(path)
    assert sn.load(path)["a"] == [1, 2]
    back = pwf.node(LoadNode, "load").run(path=str(path), backend=backend).outputs["obj"]
    np.testing.assert_array_equal(back["x"], data["x"])
    listing = pwf.node(InspectNode, "info").run(path=str(path)).outputs["listing"]
    assert listing["backend"] == backend
    assert listing["environment"]["storage_nodes"] == sn.__version__  # the environment record travels along
    json.dumps(listing)  # plain JSON-able data
    assert "a" in sn.Listing.from_dict(listing)
    top = pwf.node(InspectNode, "top").run(path=str(path), depth=0).outputs["listing"]
    assert "children" not in top["root"] and top["root"]["truncated"] == len(data)


def test_save_node_overwrite_false_refuses_existing_file(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("keep me")
    with pytest.raises(sn.FileExistsStorageError):
        pwf.node(SaveNode, "save").run(obj=[1], path=str(path), overwrite=False)
    assert path.read_text() == "keep me"


# --- in workflows ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_load_inspect_in_a_workflow(tmp_path, backend):
    path = tmp_path / f"grid{SUFFIX[backend]}"
    run = _save_load_workflow(path, backend).run()
    grid = _value(run, "grid", "grid")
    np.testing.assert_array_equal(_value(run, "load", "obj"), grid)
    assert _value(run, "size", "n") == 7
    listing = _value(run, "info", "listing")
    assert listing["metadata"] == {"step": "grid"}
    assert listing["root"]["shape"] == [7]
    np.testing.assert_array_equal(sn.load(path), np.linspace(0.0, 2.0, 7))


def test_load_node_key_and_safe(tmp_path):
    path = sn.save({"a": {"b": np.arange(3)}, "c": 1}, tmp_path / "d.json")
    out = pwf.node(LoadNode, "l").run(path=str(path), key="a/b", safe=True).outputs["obj"]
    np.testing.assert_array_equal(out, np.arange(3))
    listing = pwf.node(InspectNode, "i").run(path=str(path), key="a").outputs["listing"]
    assert listing["key"] == "a" and [c["name"] for c in listing["root"]["children"]] == ["b"]
    pickled = sn.save([1], tmp_path / "p.pkl")
    with pytest.raises(sn.UnsafeLoadError):
        pwf.node(LoadNode, "l").run(path=str(pickled), safe=True)


def test_version_policy_takes_a_plain_string(tmp_path):
    path = sn.save([1, 2], tmp_path / "v.json")
    wf = pwf.Workflow("policy")
    wf.load = pwf.node(LoadNode, path=str(path), version_policy="strict")
    wf.load.inputs.version_policy = "ignore"
    assert _value(wf.run(), "load", "obj") == [1, 2]
    with pytest.raises(TypeError, match="'warn'"):
        wf.load.inputs.version_policy = "sloppy"


# --- plain strings and Literal values for the backend ----------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_plain_string_at_construction_and_by_assignment(tmp_path, backend):
    path = tmp_path / "data.bin"  # no telling suffix: the backend must come from the port
    wf = pwf.Workflow("strings")
    wf.grid = pwf.node(make_grid, n=3)
    wf.save = pwf.node(SaveNode, obj=wf.grid, path=str(path), backend="json")  # construction
    wf.save.inputs.backend = backend  # re-assignment replaces the first constant
    wf.run()
    assert sn.registry.detect(path) == backend
    constants = [label for label in wf.nodes if label.startswith("save_backend_constant")]
    assert len(constants) == 1


def test_backend_assigned_on_an_unset_port(tmp_path):
    wf = pwf.Workflow("assign")
    wf.save = pwf.node(SaveNode, obj=[1, 2], path=str(tmp_path / "x.data"))
    wf.save.inputs.backend = "cloudpickle"
    wf.run()
    assert sn.registry.detect(tmp_path / "x.data") == "cloudpickle"


def test_backend_none_picks_by_suffix(tmp_path):
    wf = pwf.Workflow("auto")
    wf.save = pwf.node(SaveNode, obj=[1, 2], path=str(tmp_path / "x.json"), backend=None)
    wf.run()
    assert sn.registry.detect(tmp_path / "x.json") == "json"


def test_backend_literal_value_from_typed_source(tmp_path):
    """A node whose output is hinted with the same Literal connects without any constant."""
    wf = pwf.Workflow("typed")
    wf.pick = pwf.node(_pick_backend)
    wf.save = pwf.node(SaveNode, obj=[3], path=str(tmp_path / "x.data"), backend=wf.pick)
    wf.run()
    assert sn.registry.detect(tmp_path / "x.data") == "pickle"


@flowrep.atomic("backend")
def _pick_backend() -> typing.Literal["pickle"]:
    return "pickle"


def test_unknown_backend_constant_is_refused_when_set_and_old_value_kept(tmp_path):
    wf = pwf.Workflow("bad")
    wf.save = pwf.node(SaveNode, obj=[1], path=str(tmp_path / "x.data"), backend="json")
    with pytest.raises(TypeError, match=r"'bogus' is not one of .*'json'"):
        wf.save.inputs.backend = "bogus"
    wf.run()  # the refused assignment was rolled back: still one source, "json"
    assert sn.registry.detect(tmp_path / "x.data") == "json"
    with pytest.raises(TypeError, match="'bogus'"):
        wf.other = pwf.node(SaveNode, obj=[1], path="y", backend="bogus")


def test_unknown_backend_arriving_at_run_time_lists_valid_names(tmp_path):
    wf = pwf.Workflow("runtime")
    wf.save = pwf.node(SaveNode, obj=[1], path=str(tmp_path / "x.data"))
    wf.create_input_for(wf.save.inputs.backend)
    with pytest.raises(sn.BackendNotFoundError, match=r"valid backends are \['cloudpickle', 'h5', 'json', 'pickle'\]"):
        wf.run(backend="bogus")
    with pytest.raises(sn.InvalidArgumentError, match="backend"):
        wf.run(backend=3)
    assert not (tmp_path / "x.data").exists()


# --- recipe round trip and macros --------------------------------------------------------


def test_recipe_json_round_trip_keeps_the_nodes(tmp_path):
    wf = _save_load_workflow(tmp_path / "grid.json", "json")
    wf.save.inputs.backend = "pickle"
    first = wf.run()
    text = wf.recipe.model_dump_json()
    recipe = pydantic.TypeAdapter(flowrep.schemas.RecipeDiscrimination).validate_json(text)
    again = pwf.Workflow.from_recipe(recipe, "again")
    for label, function in (("save", SaveNode), ("load", LoadNode), ("info", InspectNode)):
        info = again.nodes[label].recipe.reference.info
        assert (info.module, info.qualname) == ("storage_nodes.nodes", function.__name__)
    assert again.recipe.model_dump_json() == text
    second = again.run()
    np.testing.assert_array_equal(_value(second, "load", "obj"), _value(first, "load", "obj"))
    assert sn.registry.detect(tmp_path / "grid.json") == "pickle"


def test_nodes_inside_a_macro(tmp_path):
    wf = pwf.Workflow("outer")
    wf.mac = pwf.node(save_and_reload, n=4, path=str(tmp_path / "m.pkl"))
    wf.set_outputs_to_unconnected_child_output()
    run = wf.run()
    np.testing.assert_array_equal(run.outputs["mac__back"], np.linspace(0, 1, 4))
    inner = run.result.nodes["mac"].nodes
    assert inner["SaveNode_0"].input_ports["backend"].value == "pickle"
    assert sn.registry.detect(tmp_path / "m.pkl") == "pickle"


def test_summarize_feeds_save_nodes_on_threads(tmp_path):
    """Two outputs saved by two SaveNodes into two files in one (multithreaded) run."""
    wf = pwf.Workflow("two")
    wf.grid = pwf.node(make_grid, n=4)
    wf.sum = pwf.node(summarize, grid=wf.grid)
    wf.save_total = pwf.node(SaveNode, obj=wf.sum.outputs.total, path=str(tmp_path / "t.json"))
    wf.save_squares = pwf.node(SaveNode, obj=wf.sum.outputs.squares, path=str(tmp_path / "s.pkl"))
    wf.run()
    assert sn.load(tmp_path / "t.json") == pytest.approx(sum(np.linspace(0, 1, 4) ** 2))
    np.testing.assert_array_equal(sn.load(tmp_path / "s.pkl"), np.linspace(0, 1, 4) ** 2)


def test_pull_through_save_and_load_keeps_the_backend_constant(tmp_path):
    """pyiron_workflow 0.20.3's pull with expose_defaults=False swaps constants on defaulted
    ports for the defaults (PYIRON_NOTES): pull with expose_defaults=True and pass the rest."""
    wf = pwf.Workflow("pulled")
    wf.grid = pwf.node(make_grid, n=5)
    wf.save = pwf.node(SaveNode, obj=wf.grid, path=str(tmp_path / "x.data"), backend="json")
    wf.save.inputs.backend = "pickle"
    wf.load = pwf.node(LoadNode, path=wf.save)
    wf.size = pwf.node(count, data=wf.load)
    wf.unrelated = pwf.node(SaveNode, obj=[1], path=str(tmp_path / "unrelated.json"))
    needed = set(wf.size.pulled_inputs(False, True))
    assert "save__backend" not in needed  # fed by the constant, not asked for
    defaults = {
        "grid__n": 5,
        "grid__scale": 1.0,
        "save__key": None,
        "save__metadata": None,
        "save__overwrite": True,
        "save__catalog": None,
        "save__data_filter": None,
        "load__key": None,
        "load__backend": None,
        "load__version_policy": "warn",
        "load__safe": False,
    }
    run = wf.size.pull(None, False, True, **{k: v for k, v in defaults.items() if k in needed})
    assert run.outputs["n"] == 5
    assert sn.registry.detect(tmp_path / "x.data") == "pickle"
    assert not (tmp_path / "unrelated.json").exists()  # only the pulled node's upstream ran
