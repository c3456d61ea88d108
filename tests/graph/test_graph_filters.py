"""``save_workflow(..., data_filter=...)``: port values left out of the file (issue 30)."""

from __future__ import annotations

import re

import numpy as np
import pyiron_workflow as pwf
import pytest
from _nodes_helpers import make_grid, save_and_reload, summarize

import storage_nodes as sn
from storage_nodes.graph.filters import NOT_STORED_KEY, NotStored

pytestmark = pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")
SUFFIX = {"pickle": ".pkl", "cloudpickle": ".cpkl", "json": ".json", "h5": ".h5"}


def _ran() -> pwf.Workflow:
    wf = pwf.Workflow("grid_stats")
    wf.grid = pwf.node(make_grid, scale=2.0)
    wf.create_input_for(wf.grid.inputs.n)
    wf.stats = pwf.node(summarize, grid=wf.grid, power=3)
    wf.set_outputs_to_unconnected_child_output()
    wf.run(n=1000)
    return wf


@pytest.mark.parametrize("backend", list(SUFFIX))
@pytest.mark.parametrize("data_filter", [r"^grid\.grid$", re.compile(r"grid\.grid$"), lambda p: p == "grid.grid"])
def test_a_filtered_port_is_not_stored_listed_as_such_and_recomputed_by_a_rerun(tmp_path, backend, data_filter):
    wf = _ran()
    path = sn.save_workflow(wf, tmp_path / f"wf{SUFFIX[backend]}", backend, data_filter=data_filter)
    # the output and the input fed by the same array are both left out
    stored_value = sn.load(path, key="grid/outputs/grid")
    assert set(stored_value) == {NOT_STORED_KEY} and "filtered by data_filter" in stored_value[NOT_STORED_KEY]
    assert NOT_STORED_KEY in sn.load(path, key="stats/inputs/grid")
    header = sn.load(path, key="@workflow")
    assert header["filtered"] == ["grid.grid", "stats.grid"]
    assert header["data_filter"].startswith(("regex", "callable"))
    if backend in ("h5", "json"):  # (pickle files are listed to their top level only)
        assert NOT_STORED_KEY in str(sn.inspect(path, key="grid/outputs/grid", depth=1))
    stored = sn.load_workflow(path)
    marker = stored.nodes["grid"]["outputs"]["grid"]
    assert isinstance(marker, NotStored) and marker.path == "grid.grid" and "filtered" in repr(marker)
    assert stored.nodes["stats"]["inputs"]["power"] == 3  # the rest is stored
    np.testing.assert_array_equal(stored.nodes["stats"]["outputs"]["squares"], np.linspace(0, 2, 1000) ** 3)
    rerun = stored.rerun()
    np.testing.assert_array_equal(rerun.result.nodes["grid"].output_ports["grid"].value, np.linspace(0, 2, 1000))


def test_the_file_is_smaller_by_the_filtered_array(tmp_path):
    wf = _ran()
    whole = sn.save_workflow(wf, tmp_path / "whole.h5")
    filtered = sn.save_workflow(wf, tmp_path / "filtered.h5", data_filter="grid")
    assert filtered.stat().st_size < whole.stat().st_size - 7000


def test_nested_paths_and_root_ports(tmp_path):
    wf = pwf.Workflow("outer")
    wf.mac = pwf.node(save_and_reload, n=3, path=str(tmp_path / "inner.pkl"))
    wf.set_outputs_to_unconnected_child_output()
    wf.run()
    seen: list[str] = []

    def which(p: str) -> bool:
        seen.append(p)
        return p == "mac.make_grid_0.grid"

    path = sn.save_workflow(wf, tmp_path / "outer.h5", data_filter=which)
    assert "mac.make_grid_0.grid" in seen and "mac.n" in seen and "mac__back" in seen  # root port: its name
    assert NOT_STORED_KEY in sn.load(path, key="mac/nodes/make_grid_0/outputs/grid")
    assert sn.load(path, key="mac/nodes/SaveNode_0/inputs/backend") == "pickle"


def test_a_bad_filter_is_refused_before_anything_is_written(tmp_path):
    wf = _ran()
    with pytest.raises(sn.InvalidArgumentError, match="regular expression"):
        sn.save_workflow(wf, tmp_path / "x.h5", data_filter="(")
    with pytest.raises(sn.InvalidArgumentError):
        sn.save_workflow(wf, tmp_path / "x.h5", data_filter=3)  # type: ignore[arg-type]
    assert not (tmp_path / "x.h5").exists()


def test_the_catalog_records_the_filtered_input(tmp_path):
    wf = _ran()
    cat = sn.Catalog(tmp_path / "cat.sqlite")
    sn.save_workflow(wf, tmp_path / "wf.h5", data_filter=r"grid\.grid", catalog=cat)
    (hit,) = [h for h in cat.find(node="_nodes_helpers.summarize") if h.key == "stats"]
    reason = hit.inputs["grid"][NOT_STORED_KEY]  # (fed by the filtered output: the same array)
    assert reason == "filtered by data_filter (regex 'grid\\\\.grid'): the same object as a filtered port"
    assert hit.inputs["power"] == 3


def test_save_node_leaves_out_what_its_filter_matches_and_records_it_in_the_file_and_catalog(tmp_path):
    from storage_nodes import SaveNode

    obj = {"energy": -3.2, "frames": [[1.0] * 100, [2.0] * 100], "meta": {"big": "x" * 1000, "keep": 1}}
    wf = pwf.Workflow("w")
    path, cat = tmp_path / "s.h5", tmp_path / "cat.sqlite"
    wf.s = pwf.node(SaveNode, obj=obj, path=str(path), data_filter=r"^frames\.\d+$|big", catalog=str(cat))
    wf.run()
    back = sn.load(path)
    assert back["energy"] == -3.2 and back["meta"]["keep"] == 1
    assert [set(f) for f in back["frames"]] == [{NOT_STORED_KEY}, {NOT_STORED_KEY}]
    assert NOT_STORED_KEY in back["meta"]["big"]
    assert obj["frames"][0] == [1.0] * 100  # the object given is not changed
    record = sn.inspect(path).metadata["@filtered"]
    assert record["paths"] == ["frames.0", "frames.1", "meta.big"] and record["data_filter"].startswith("regex")
    (hit,) = sn.Catalog(cat).find(kind="save")
    assert hit.metadata["@filtered"] == record
