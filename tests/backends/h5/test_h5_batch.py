"""Batched updates of h5 archives (``H5Backend.update_many``): many edits, one transaction, one heap."""

from __future__ import annotations

import h5py
import numpy as np

import storage_nodes as sn
from storage_nodes.backends.base import DELETE
from storage_nodes.registry import get


def _datasets(path) -> set[str]:
    with h5py.File(path, "r") as f:
        return set(f)


def test_edits_see_the_earlier_edits_of_their_batch(tmp_path):
    path = sn.save({"start": 0, "text": "x" * 500}, tmp_path / "run.h5")
    before = {name for name in _datasets(path) if name.startswith("heap_")}
    get("h5").update_many(
        [
            ("plain", {f"k{i}": i for i in range(30)}),  # packed into the batch's heap
            ("plain/k3", "three"),  # inside that blob, before it is written
            ("gone", np.ones(5000)),
            ("gone", DELETE),
            ("plain/k4", DELETE),
            ("arr", np.arange(100.0)),
        ],
        path,
        metadata={"m": 1},
        options={},
    )
    back = sn.load(path)
    assert back["plain"]["k3"] == "three" and "k4" not in back["plain"] and back["plain"]["k5"] == 5
    assert "gone" not in back and np.array_equal(back["arr"], np.arange(100.0))
    heaps = {name for name in _datasets(path) if name.startswith("heap_")}
    assert len(heaps - before) == 1, heaps  # the batch wrote one segment
    note = sn.inspect(path).info["updates"][-1]
    assert note["keys"] == ["plain", "plain/k3", "gone", "gone", "plain/k4", "arr"] and note["metadata"] == {"m": 1}


def test_a_batch_whose_values_are_all_gone_leaves_no_heap_behind(tmp_path):
    path = sn.save({"start": 0}, tmp_path / "run.h5")
    before = _datasets(path)
    get("h5").update_many([("x", [1, 2, "three"] * 20), ("x", DELETE)], path, metadata={}, options={})
    assert sn.load(path) == {"start": 0} and _datasets(path) == before


def test_removing_an_entry_frees_its_datasets_and_list_items_shift(tmp_path):
    path = sn.save({"big": np.ones(100_000), "items": [np.zeros(1), "a", "b"]}, tmp_path / "run.h5")
    get("h5").update_many([("big", DELETE), ("items/0", DELETE)], path, metadata={}, options={})
    assert sn.load(path) == {"items": ["a", "b"]}
    assert not any(name.startswith("array_") for name in _datasets(path))
