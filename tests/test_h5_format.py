"""Read an h5 archive with h5py, msgpack, zlib and numpy alone, following docs/format.md."""

from __future__ import annotations

import json
import zlib

import h5py
import msgpack
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
    if not isinstance(node, dict):  # a bare scalar is its own value
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
        index = msgpack.unpackb(zlib.decompress(f["index"][()].tobytes()))
        assert index["format"] == "storage_nodes-h5" and index["format_version"] == 2
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


def test_format_version_1_files_with_a_json_index_still_load(tmp_path):
    """Version 1 wrote the same index as zlib-compressed JSON; readers still accept it."""
    data = {"x": np.arange(4.0), "label": "Cu", "steps": (1, 2), "n": 2**70}
    path = sn.save(data, tmp_path / "v1.h5")
    with h5py.File(path, "r+") as f:
        index = msgpack.unpackb(zlib.decompress(f["index"][()].tobytes()), ext_hook=lambda code, raw: None)
        index["format_version"] = 1
        del f["index"]
        text = json.dumps(index).encode()
        f.create_dataset("index", data=np.frombuffer(zlib.compress(text), dtype=np.uint8))
    assert sn.inspect(path).format_version == 1
    back = sn.load(path)
    assert np.array_equal(back["x"], data["x"]) and back["label"] == "Cu" and back["steps"] == (1, 2)
    assert back["n"] == 2**70
    sn.save("Fe", path, key="label")  # an update rewrites the index in the current encoding
    with h5py.File(path, "r") as f:
        assert msgpack.unpackb(zlib.decompress(f["index"][()].tobytes()))["format_version"] == 2
    assert sn.load(path, key="label") == "Fe" and sn.inspect(path).format_version == 2


def test_packed_plain_data_reads_with_bare_msgpack(tmp_path):
    """A big plain dict is one packed blob; extension type 7 is its flat key/value list."""
    data = {"results": {f"run{i}": [i, i * 0.5, f"s{i}"] for i in range(100)}, "small": {"a": (1, 2)}}
    path = sn.save(data, tmp_path / "packed.h5")

    def ext(code, payload):
        if code == 1:
            return tuple(msgpack.unpackb(payload, ext_hook=ext, strict_map_key=False))
        assert code == 7, code
        flat = msgpack.unpackb(payload, ext_hook=ext, strict_map_key=False)
        return dict(zip(flat[::2], flat[1::2]))

    with h5py.File(path, "r") as f:
        index = msgpack.unpackb(zlib.decompress(f["index"][()].tobytes()))
        root = index["root"]
        assert root["k"] == "p"
        name, offset, nbytes = root["h"]
        back = msgpack.unpackb(f[name][offset : offset + nbytes].tobytes(), ext_hook=ext, strict_map_key=False)
    assert back == data
