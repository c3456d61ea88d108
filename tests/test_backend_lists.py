"""A list of backends, tried in order, wherever one is chosen (issue 30)."""

from __future__ import annotations

import threading

import numpy as np
import pyiron_workflow as pwf
import pytest

import storage_nodes as sn
from storage_nodes import SaveNode


class Unjsonable:
    def __init__(self) -> None:
        self.x = np.arange(3)


def test_the_first_backend_that_can_store_the_object_wins_and_the_record_says_which(tmp_path):
    plain = sn.save({"a": 1}, tmp_path / "plain.data", ["json", "h5", "cloudpickle"])
    assert sn.inspect(plain).backend == "json" and sn.environment(plain)["backend"] == "json"
    obj = sn.save({"o": Unjsonable()}, tmp_path / "obj.data", ["json", "h5", "cloudpickle"])
    assert sn.inspect(obj).backend == "h5" and sn.environment(obj)["backend"] == "h5"
    assert np.array_equal(sn.load(obj)["o"].x, np.arange(3))


def test_when_none_can_the_error_says_why_each_refused_and_nothing_is_written(tmp_path):
    target = tmp_path / "lock.data"
    with pytest.raises(sn.SerializationError) as info:
        sn.save(threading.Lock(), target, ["json", "pickle"])
    text = str(info.value)
    assert "none of the backends ['json', 'pickle']" in text and str(target) in text
    assert "\n  json: " in text and "\n  pickle: " in text
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_misspelt_names_and_empty_lists_are_errors_not_refusals(tmp_path):
    with pytest.raises(sn.BackendNotFoundError, match="jsn"):
        sn.save(1, tmp_path / "x.data", ["jsn", "h5"])
    with pytest.raises(sn.InvalidArgumentError, match="empty"):
        sn.save(1, tmp_path / "x.data", [])


def test_a_keyed_save_into_an_existing_file_keeps_its_backend(tmp_path):
    path = sn.save({"a": 1}, tmp_path / "run.h5")
    sn.save(2, path, ["json", "h5"], key="b")
    assert sn.load(path) == {"a": 1, "b": 2} and sn.inspect(path).backend == "h5"
    with pytest.raises(sn.InvalidArgumentError, match="not among the backends"):
        sn.save(2, path, ["json", "pickle"], key="c")


def test_open_w_and_save_workflow_take_a_list(tmp_path):
    path = tmp_path / "new.data"
    with sn.open(path, "w", backend=["json", "h5"]) as s:
        s["a"] = 1
        s["o"] = Unjsonable()
    assert sn.inspect(path).backend == "h5"
    from _nodes_helpers import make_grid

    wf = pwf.Workflow("w")
    wf.grid = pwf.node(make_grid, n=3)
    wf.run()
    stored = sn.save_workflow(wf, tmp_path / "wf.data", ["json", "pickle"])
    assert sn.inspect(stored).backend == "json"


def test_save_node_takes_a_list_from_a_script(tmp_path):
    wf = pwf.Workflow("w")
    wf.s = pwf.node(SaveNode, obj={"a": [1, 2]}, path=str(tmp_path / "s.data"), backend=["pickle", "json"])
    wf.run()
    assert sn.inspect(tmp_path / "s.data").backend == "pickle"  # the first that can
    wf.s.inputs.backend = ["json", "pickle"]
    wf.run()
    assert sn.inspect(tmp_path / "s.data").backend == "json"
    with pytest.raises(TypeError, match="not one of the values"):
        wf.s.inputs.backend = ["json", "zip"]
        wf.run()
