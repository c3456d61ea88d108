"""``StoredWorkflow.rerun`` / ``rebuild``: any child input set by dotted path, and the files
the first run wrote never touched (SaveNodes and CollectNodes re-rooted or refused)."""

from __future__ import annotations

import logging
from pathlib import Path

import flowrep
import numpy as np
import pyiron_workflow as pwf
import pytest
from _nodes_helpers import make_grid, save_and_reload, summarize

import storage_nodes as sn
from storage_nodes import SaveNode
from storage_nodes.graph import recipe_edit

pytestmark = pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")


@flowrep.atomic("path")
def file_name(stem: str) -> str:
    """A path computed while the workflow runs."""
    return stem + ".pkl"


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _sweep() -> pwf.Workflow:
    wf = pwf.Workflow("sweep")
    wf.grid = pwf.node(make_grid, n=4, scale=2.0)
    wf.stats = pwf.node(summarize, grid=wf.grid, power=2)
    wf.save_total = pwf.node(SaveNode, obj=wf.stats.outputs.total, path="out/total.h5")
    wf.save_grid = pwf.node(SaveNode, obj=wf.grid, path="grid.pkl")
    wf.mac = pwf.node(save_and_reload, n=3, path="inner.pkl")  # its SaveNode's path comes through its input
    return wf


@pytest.fixture
def first_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, bytes]]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    wf = _sweep()
    wf.run()
    archive = sn.save_workflow(wf, "sweep_wf.h5")
    return archive, _snapshot(tmp_path)


def test_rerun_with_changed_child_inputs_writes_elsewhere_and_leaves_every_first_file_identical(
    first_run: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    archive, before = first_run
    stored = sn.load_workflow(archive)
    run = stored.rerun({"grid.n": 6, "stats.power": 3, "mac.make_grid_0.n": 5}, directory="hot")
    nodes = run.result.nodes
    grid = make_grid(6, 2.0)  # the node function called directly
    np.testing.assert_array_equal(nodes["grid"].output_ports["grid"].value, grid)
    assert nodes["stats"].output_ports["total"].value == pytest.approx(float(np.sum(grid**3)))
    assert sn.load(tmp_path / "hot" / "out" / "total.h5") == pytest.approx(float(np.sum(grid**3)))
    np.testing.assert_array_equal(sn.load(tmp_path / "hot" / "grid.pkl"), grid)
    np.testing.assert_array_equal(sn.load(tmp_path / "hot" / "inner.pkl"), np.linspace(0, 1, 5))
    assert nodes["save_total"].output_ports["path"].value == str(tmp_path / "hot" / "out" / "total.h5")
    after = _snapshot(tmp_path)
    assert {k: after[k] for k in before} == before  # every file of the first run, byte for byte
    assert sorted(set(after) - set(before)) == ["hot/grid.pkl", "hot/inner.pkl", "hot/out/total.h5"]


def test_rerun_without_directory_makes_a_new_one_beside_the_archive_and_says_so(
    first_run: tuple[Path, dict[str, bytes]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive, before = first_run
    with caplog.at_level(logging.WARNING, logger="storage_nodes.graph"):
        sn.load_workflow(archive).rerun()
    made = [p for p in tmp_path.iterdir() if p.is_dir() and p.name.startswith("sweep_wf_rerun_")]
    assert len(made) == 1 and (made[0] / "out" / "total.h5").is_file()
    assert any(str(made[0]) in r.getMessage() for r in caplog.records)
    assert {k: v for k, v in _snapshot(tmp_path).items() if k in before} == before
    sn.load_workflow(archive).rerun()  # a second rerun in the same second gets its own directory
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("sweep_wf_rerun_")]) == 2


def test_rebuild_takes_the_same_options_and_workflow_rebuilds_off_the_first_files(
    first_run: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    archive, before = first_run
    wf = sn.load_workflow(archive).rebuild({"grid.n": 2}, directory=tmp_path / "b")
    wf.run()
    np.testing.assert_array_equal(sn.load(tmp_path / "b" / "grid.pkl"), np.linspace(0, 2.0, 2))
    sn.load_workflow(archive).workflow.run()
    assert {k: v for k, v in _snapshot(tmp_path).items() if k in before} == before


def test_an_unknown_input_path_lists_the_valid_ones_with_a_suggestion(first_run: tuple[Path, dict[str, bytes]]) -> None:
    stored = sn.load_workflow(first_run[0])
    with pytest.raises(sn.KeyNotFoundError, match=r"no input 'grid\.m' \(did you mean 'grid\.n'") as err:
        stored.rerun({"grid.m": 3})
    assert "mac.make_grid_0.n" in str(err.value) and "stats.power" in str(err.value)
    with pytest.raises(sn.KeyNotFoundError, match=r"no input 'power'.*inputs=\{'stats\.power': \.\.\.\}"):
        stored.rerun(power=3)  # a 0.20 workflow has no inputs of its own: point at the child's
    with pytest.raises(sn.InvalidArgumentError, match="JSON-able"):
        stored.rerun({"grid.n": np.arange(3)})
    assert not [p for p in first_run[0].parent.iterdir() if "rerun" in p.name]  # refused before anything was made


def test_workflow_level_inputs_keep_working_as_keywords(tmp_path: Path) -> None:
    wf = pwf.Workflow("own")
    wf.grid = pwf.node(make_grid, scale=1.0)
    wf.create_input_for(wf.grid.inputs.n)
    wf.run(n=3)
    stored = sn.load_workflow(sn.save_workflow(wf, tmp_path / "own.json", "json"))
    run = stored.rerun(n=5)
    assert len(run.result.nodes["grid"].output_ports["grid"].value) == 5
    run = stored.rerun({"grid.scale": 3.0}, n=2)
    np.testing.assert_array_equal(run.result.nodes["grid"].output_ports["grid"].value, [0.0, 3.0])


def test_an_absolute_save_path_that_exists_is_refused_unless_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "kept.pkl"
    wf = pwf.Workflow("abs")
    wf.grid = pwf.node(make_grid, n=3)
    wf.save = pwf.node(SaveNode, obj=wf.grid, path=str(target))
    wf.run()
    stored = sn.load_workflow(sn.save_workflow(wf, tmp_path / "abs.h5"))
    before = target.read_bytes()
    with pytest.raises(sn.FileExistsStorageError, match=r"save -> .*kept\.pkl.*overwrite=True"):
        stored.rerun({"grid.n": 4})
    assert target.read_bytes() == before
    rebuilt = stored.workflow  # looking at it is fine; running it may not replace the file
    with pytest.raises(sn.FileExistsStorageError, match=r"kept\.pkl exists and overwrite=False"):
        rebuilt.run()
    assert target.read_bytes() == before
    stored.rerun({"grid.n": 4}, overwrite=True)
    assert len(sn.load(target)) == 4


def test_a_save_path_computed_while_running_may_not_replace_a_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    wf = pwf.Workflow("computed")
    wf.name = pwf.node(file_name, stem="made")
    wf.grid = pwf.node(make_grid, n=3)
    wf.save = pwf.node(SaveNode, obj=wf.grid, path=wf.name)
    wf.run()
    stored = sn.load_workflow(sn.save_workflow(wf, tmp_path / "computed.h5"))
    before = (tmp_path / "made.pkl").read_bytes()
    with pytest.raises(sn.FileExistsStorageError, match=r"made\.pkl exists and overwrite=False"):
        stored.rerun({"grid.n": 4})
    assert (tmp_path / "made.pkl").read_bytes() == before
    run = stored.rerun({"grid.n": 4, "name.stem": "other"})
    assert sn.load(tmp_path / "other.pkl").shape == (4,) and run.result.nodes["save"].output_ports["path"].value


def test_a_single_save_node_saved_alone_reruns_into_the_new_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    node = pwf.node(SaveNode, "alone")
    node.run(obj=[1, 2], path="alone.json")
    stored = sn.load_workflow(sn.save_workflow(node, tmp_path / "alone_wf.pkl", "pickle"))
    before = (tmp_path / "alone.json").read_bytes()
    stored.rerun(directory="again", obj=[3])
    assert (tmp_path / "alone.json").read_bytes() == before
    assert sn.load(tmp_path / "again" / "alone.json") == [3]


def test_set_input_replaces_the_source_and_drops_a_constant_left_unused() -> None:
    recipe = {
        "type": "workflow",
        "inputs": [],
        "nodes": {
            "md": {"type": "atomic", "inputs": ["T"]},
            "md_T_constant_0": {"type": "constant", "inputs": [], "outputs": ["constant"], "constant": 300.0},
        },
        "edges": {"md.T": "md_T_constant_0.constant"},
        "input_edges": {},
    }
    recipe_edit.set_input(recipe, "md.T", 1200.0)
    assert "md_T_constant_0" not in recipe["nodes"]
    assert recipe["nodes"][recipe["edges"]["md.T"].split(".")[0]]["constant"] == 1200.0
    assert recipe_edit.input_paths(recipe) == ["md.T"]


def test_a_rebuilt_workflow_run_by_hand_never_replaces_a_file_its_path_input_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    wf = pwf.Workflow("by_hand")
    wf.grid = pwf.node(make_grid, n=3)
    wf.save = pwf.node(SaveNode, obj=wf.grid)
    wf.create_input_for(wf.save.inputs.path)
    wf.run(path="result.pkl")
    stored = sn.load_workflow(sn.save_workflow(wf, tmp_path / "by_hand.h5"))
    before = (tmp_path / "result.pkl").read_bytes()
    with caplog.at_level(logging.WARNING, logger="storage_nodes"):
        rebuilt = stored.rebuild({"grid.n": 4}, directory="again")
    moved = str(tmp_path / "again" / "result.pkl")
    assert f"path={moved!r}" in caplog.text  # the value to pass, named
    with pytest.raises(sn.FileExistsStorageError, match=r"result\.pkl exists and overwrite=False"):
        rebuilt.run(path="result.pkl")  # the first run's value, typed again by hand
    assert (tmp_path / "result.pkl").read_bytes() == before
    rebuilt.run(path=moved)
    assert sn.load(moved).shape == (4,)
    with pytest.raises(sn.FileExistsStorageError):
        stored.workflow.run(path="result.pkl")  # the rebuilt node behind .workflow as well
    run = stored.rerun({"grid.n": 5}, directory="third")  # rerun passes the re-rooted path itself
    assert sn.load(tmp_path / "third" / "result.pkl").shape == (5,) and run.result.nodes["save"]
    assert (tmp_path / "result.pkl").read_bytes() == before
