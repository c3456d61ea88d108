"""Read an h5 archive with h5py, json, zlib and numpy alone, following docs/format.md."""

from __future__ import annotations

import json
import zlib

import h5py
import numpy as np

import storage_nodes as sn


def _read_array(f: h5py.File, node: dict) -> np.ndarray:
    """An ``a`` node, exactly as the spec says."""
    dtype = np.dtype(node["dt"])
    shape = tuple(node["sh"])
    stored = shape[::-1] if node["o"] == "F" else shape
    if "ds" in node:
        arr = f[node["ds"]][()]
        if node.get("raw"):
            arr = arr.view(dtype).reshape(stored)
    else:
        name, offset, nbytes = node["h"]
        arr = f[name][offset : offset + nbytes].view(dtype).reshape(stored)
    return arr.T if node["o"] == "F" else arr


def _read(f: h5py.File, node):
    if not isinstance(node, dict):  # a bare JSON scalar is its own value
        return node
    if node["k"] == "v":
        return node["v"]
    if node["k"] == "a":
        return _read_array(f, node)
    assert node["k"] == "d", node["k"]
    return {item[0]: _read(f, item[1]) for item in node["items"]}


def test_nested_dict_of_arrays_reads_with_bare_h5py(tmp_path):
    data = {
        "big": np.arange(100_000, dtype=np.float64),
        "run": {
            "forces": np.asfortranarray(np.arange(12.0).reshape(4, 3)),
            "ids": np.arange(5, dtype=np.int32),
            "deeper": {"cell": np.eye(3), "label": "Cu"},
        },
    }
    path = sn.save(data, tmp_path / "spec.h5")
    with h5py.File(path, "r") as f:
        index = json.loads(zlib.decompress(f["index"][()].tobytes()))
        assert index["format"] == "storage_nodes-h5" and index["format_version"] == 1
        back = _read(f, index["root"])
        big_node = index["root"]["items"][0][1]
        assert f[big_node["ds"]].attrs["key"] == "big"
    assert np.array_equal(back["big"], data["big"])
    assert np.array_equal(back["run"]["forces"], data["run"]["forces"]) and back["run"]["forces"].flags.f_contiguous
    assert np.array_equal(back["run"]["ids"], data["run"]["ids"]) and back["run"]["ids"].dtype == np.int32
    assert np.array_equal(back["run"]["deeper"]["cell"], np.eye(3)) and back["run"]["deeper"]["label"] == "Cu"


def test_big_arrays_are_plain_hdf5_datasets(tmp_path):
    data = {"x": np.linspace(0, 1, 50_000)}
    path = sn.save(data, tmp_path / "plain.h5")
    with h5py.File(path, "r") as f:
        datasets = [f[name] for name in f if name.startswith("array_")]
        assert len(datasets) == 1 and np.array_equal(datasets[0][()], data["x"])
        assert datasets[0].attrs["key"] == "x"
