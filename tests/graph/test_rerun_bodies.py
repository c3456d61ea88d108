"""Reruns never destroy results, also when the SaveNode sits in a flow control's body
(for-each, if, while, try): relative paths land in the rerun's directory, every file of the
first run stays byte for byte (and untouched), an absolute existing path is refused unless
``overwrite=True``; dotted rerun inputs reach into bodies."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _node_kinds as k
import _rerun_bodies_nodes as rb
import pyiron_workflow as pwf
import pytest

import storage_nodes as sn
from storage_nodes.errors import FileExistsStorageError, InvalidArgumentError, KeyNotFoundError
from storage_nodes.graph import recipe_edit
from storage_nodes.graph.document import recipe_from_json

pytestmark = pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")


def _snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``directory``: its bytes and its modification time (a rewrite shows)."""
    return {
        str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _json(path: Path) -> Any:
    """What the SaveNode stored in the JSON file ``path``."""
    return sn.load(path)


# kind: (workflow function or node maker, first-run inputs, files of the first run,
#        rerun inputs changed, {file the rerun writes: its value})
KINDS: dict[str, tuple[Callable[[], Any], dict[str, Any], list[str], dict[str, Any], dict[str, Any]]] = {
    "for-each, constant path": (
        lambda: pwf.node(rb.save_each, "each"),
        {"values": [1, 2]},
        ["each.json"],
        {"values": [6, 6]},
        {"each.json": 6},
    ),
    "for-each over input paths": (
        lambda: pwf.node(rb.save_paths, "paths"),
        {"values": [1, 2], "paths": ["a.json", "sub/b.json"]},
        ["a.json", "sub/b.json"],
        {"values": [7, 8]},
        {"a.json": 7, "sub/b.json": 8},
    ),
    "bare for-each node": (
        lambda: pwf.node(k.inner(rb.save_paths, "for_each"), "loop"),
        {"values": [1, 2], "paths": ["a.json", "sub/b.json"]},
        ["a.json", "sub/b.json"],
        {"values": [3, 4]},
        {"a.json": 3, "sub/b.json": 4},
    ),
    "if, path from the workflow": (
        lambda: pwf.node(rb.save_if, "sign"),
        {"v": 3, "path": "pos.json"},
        ["pos.json"],
        {"v": 4},
        {"pos.json": 4},
    ),
    "if, else body": (
        lambda: pwf.node(rb.save_if, "sign"),
        {"v": -3, "path": "pos.json"},
        ["negative.json"],
        {"v": -5},
        {"negative.json": -5},
    ),
    "while": (lambda: pwf.node(rb.save_while, "halving"), {"v": 9}, ["halved.json"], {"v": 20}, {"halved.json": 0}),
    "while, the saved path carried": (
        lambda: pwf.node(rb.save_carried, "carried"),
        {"v": 9, "path": "w.json"},
        ["w.json"],
        {"v": 40},
        {"w.json": 0},
    ),
    "try, except body": (
        lambda: pwf.node(rb.save_try, "guarded"),
        {"a": 1.0, "b": 0.0},
        ["failed.json"],
        {"b": 0.0, "a": 3.0},
        {"failed.json": 3.0},
    ),
    "try body": (
        lambda: pwf.node(rb.save_try, "guarded"),
        {"a": 1.0, "b": 2.0},
        ["ratio.json"],
        {"b": 4.0},
        {"ratio.json": 0.25},
    ),
}


def _first_run(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, tuple[bytes, int]]]:
    make, inputs, files, _, _ = KINDS[kind]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    node = make()
    node.run(**inputs)
    assert all((tmp_path / f).is_file() for f in files)
    archive = sn.save_workflow(node, "first.h5")
    return archive, _snapshot(tmp_path)


@pytest.mark.parametrize("kind", list(KINDS))
def test_rerun_into_a_directory_with_a_changed_input_leaves_the_first_files(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, before = _first_run(kind, tmp_path, monkeypatch)
    _, _, _, changed, written = KINDS[kind]
    sn.load_workflow(archive).rerun(directory="hot", **changed)
    after = _snapshot(tmp_path)
    assert {f: after[f] for f in before} == before  # byte for byte, not even rewritten
    assert sorted(set(after) - set(before)) == sorted(f"hot/{f}" for f in written)
    for file, value in written.items():
        assert _json(tmp_path / "hot" / file) == value


@pytest.mark.parametrize("kind", list(KINDS))
def test_rerun_without_a_directory_writes_beside_the_archive(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, before = _first_run(kind, tmp_path, monkeypatch)
    _, _, files, _, _ = KINDS[kind]
    sn.load_workflow(archive).rerun()
    (made,) = [p for p in tmp_path.iterdir() if p.is_dir() and p.name.startswith("first_rerun_")]
    after = _snapshot(tmp_path)
    assert {f: after[f] for f in before} == before
    assert sorted(set(after) - set(before)) == sorted(f"{made.name}/{f}" for f in files)


def test_a_dotted_input_inside_a_body_is_set_and_redirected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive, before = _first_run("for-each, constant path", tmp_path, monkeypatch)
    stored = sn.load_workflow(archive)
    assert "for_each_0.body.SaveNode_0.path" in recipe_edit.input_paths(json.loads(stored.recipe_json))
    stored.rerun({"for_each_0.body.SaveNode_0.path": "renamed.json"}, directory="hot")
    after = _snapshot(tmp_path)
    assert {f: after[f] for f in before} == before
    assert set(after) - set(before) == {"hot/renamed.json"}
    assert _json(tmp_path / "hot" / "renamed.json") in (1, 2)  # every pass writes it, in no fixed order


def test_a_body_input_fed_by_its_flow_control_says_what_to_set_instead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, before = _first_run("for-each over input paths", tmp_path, monkeypatch)
    stored = sn.load_workflow(archive)
    with pytest.raises(InvalidArgumentError, match=r"for_each_0\.paths") as err:
        stored.rerun({"for_each_0.body.p": "x.json"}, directory="hot")
    assert "flow control" in str(err.value)
    with pytest.raises(KeyNotFoundError, match=r"for_each_0\.body\.SaveNode_0\.path"):
        stored.rerun({"for_each_0.body.SaveNode_0.pth": "x.json"}, directory="hot")
    assert _snapshot(tmp_path) == before and not (tmp_path / "hot").exists()


def test_an_absolute_existing_path_in_a_body_is_refused_unless_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    target = str(tmp_path / "abs.json")
    node = pwf.node(rb.save_if, "sign")
    node.run(v=3, path=target)
    archive = sn.save_workflow(node, "first.h5")
    before = _snapshot(tmp_path)
    stored = sn.load_workflow(archive)
    with pytest.raises(FileExistsStorageError, match=r"abs\.json"):
        stored.rerun(directory="hot", v=5)
    assert _snapshot(tmp_path) == before and not (tmp_path / "hot").exists()
    stored.rerun(directory="hot", overwrite=True, v=5)
    assert _json(tmp_path / "abs.json") == 5


def test_absolute_paths_a_for_each_iterates_over_are_refused_unless_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    wf = pwf.Workflow("outer")
    paths = [str(tmp_path / "one.json"), "two.json"]  # one absolute, one relative: a constant list in the workflow
    wf.loop = pwf.node(k.inner(rb.save_paths, "for_each"), "loop", values=[1, 2], paths=paths)
    wf.run()
    archive = sn.save_workflow(wf, "first.h5")
    before = _snapshot(tmp_path)
    stored = sn.load_workflow(archive)
    with pytest.raises(FileExistsStorageError, match=r"one\.json"):
        stored.rerun(directory="hot")
    assert _snapshot(tmp_path) == before
    stored.rerun({"loop.values": [8, 9]}, directory="hot", overwrite=True)
    assert _json(tmp_path / "one.json") == 8 and _json(tmp_path / "hot" / "two.json") == 9
    assert _snapshot(tmp_path)["two.json"] == before["two.json"]


def test_a_path_computed_inside_a_body_is_saved_without_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    node = pwf.node(rb.save_named, "named")
    node.run(values=[1, 2], stem="x")
    archive = sn.save_workflow(node, "first.h5")
    before = _snapshot(tmp_path)
    stored = sn.load_workflow(archive)
    with pytest.raises(ExceptionGroup) as err:  # each pass's SaveNode refuses its existing file
        stored.rerun(directory="hot")
    assert err.group_contains(FileExistsStorageError, depth=None)
    assert _snapshot(tmp_path) == before
    stored.rerun(directory="hot", stem="y")  # new names: written
    assert _json(tmp_path / "y_2.json") == 2 and _snapshot(tmp_path)["x_2.json"] == before["x_2.json"]


def _save_directly_in_a_for_each() -> dict[str, Any]:
    """A workflow whose for-each body is the SaveNode itself (no body workflow to hold a constant),
    its paths computed by a node of the workflow."""
    named = json.loads(k.inner(rb.save_named, "for_each").model_dump_json())
    save = named["body_node"]["recipe"]["nodes"]["SaveNode_0"]
    names = json.loads(rb.name_of.flowrep_recipe.model_dump_json())
    loop = {
        "type": "for_each",
        "inputs": ["values", "paths"],
        "outputs": ["out"],
        "description": None,
        "body_node": {"label": "save", "recipe": save},
        "input_edges": {"save.obj": "values", "save.path": "paths"},
        "output_edges": {"out": "save.path"},
        "nested_ports": [],
        "zipped_ports": ["obj", "path"],
    }
    return {
        "type": "workflow",
        "inputs": ["values", "stem"],
        "outputs": ["out"],
        "description": None,
        "nodes": {"names": names, "loop": loop},
        "input_edges": {"names.stem": "stem", "names.v": "values", "loop.values": "values"},
        "edges": {"loop.paths": "names.name"},
        "output_edges": {"out": "loop.out"},
        "reference": None,
    }


def test_a_save_node_directly_in_a_flow_control_gets_overwrite_false_through_a_new_input(tmp_path: Path) -> None:
    recipe = _save_directly_in_a_for_each()
    done = recipe_edit.redirect_saves(recipe, tmp_path, run_inputs={}, overwrite=False)
    assert done.guarded == ["loop.save"] and not done.moved
    loop = recipe["nodes"]["loop"]
    assert loop["input_edges"]["save.overwrite"] == "save__overwrite" and "save__overwrite" in loop["inputs"]
    constant = recipe["edges"]["loop.save__overwrite"].split(".")[0]  # the workflow feeds it a constant False
    assert recipe["nodes"][constant]["constant"] is False
    recipe_from_json(json.dumps(recipe))  # flowrep still accepts it
    with pytest.raises(InvalidArgumentError, match="overwrite=True"):  # no workflow above to hold the constant
        recipe_edit.redirect_saves(
            _save_directly_in_a_for_each()["nodes"]["loop"], tmp_path, run_inputs={}, overwrite=False
        )


def test_a_while_loop_computing_the_next_path_re_roots_the_first_and_guards_the_rest(tmp_path: Path) -> None:
    carried = json.loads(rb.save_carried.flowrep_recipe.model_dump_json())
    done = recipe_edit.redirect_saves(carried, tmp_path, run_inputs={"path": "w.json"}, overwrite=False)
    assert done.inputs == {"path": str(tmp_path / "w.json")} and not done.guarded  # its own output: no guard
    renamed = json.loads(rb.save_renamed.flowrep_recipe.model_dump_json())
    done = recipe_edit.redirect_saves(renamed, tmp_path, run_inputs={"path": "w.json"}, overwrite=False)
    assert done.inputs == {"path": str(tmp_path / "w.json")} and done.guarded == ["while_0.body.SaveNode_0"]
    body = renamed["nodes"]["while_0"]["case"]["body"]["recipe"]
    assert body["nodes"][body["edges"]["SaveNode_0.overwrite"].split(".")[0]]["constant"] is False
