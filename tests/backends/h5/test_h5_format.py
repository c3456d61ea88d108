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
        assert index["format"] == "storage_nodes-h5" and index["format_version"] == 4
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
        assert msgpack.unpackb(zlib.decompress(f["index"][()].tobytes()))["format_version"] == 4
    assert sn.load(path, key="label") == "Fe" and sn.inspect(path).format_version == 4


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


class _SpecReader:
    """A reader of every node kind written from docs/format.md alone (h5py, msgpack, numpy)."""

    def __init__(self, f: h5py.File) -> None:
        self.f = f
        self.index = msgpack.unpackb(zlib.decompress(f["index"][()].tobytes()), ext_hook=self.ext)
        self.ids: dict[int, object] = {}

    def ext(self, code, data):
        unpack = lambda b: msgpack.unpackb(b, ext_hook=self.ext, strict_map_key=False)  # noqa: E731
        if code in (1, 2, 3):
            return {1: tuple, 2: set, 3: frozenset}[code](unpack(data))
        if code == 4:
            return int.from_bytes(data, "little", signed=True)
        if code == 5:
            return complex(*np.frombuffer(data, "<f8"))
        if code == 6:
            dtype, raw = unpack(data)
            return np.frombuffer(raw, dtype=dtype)[0]
        assert code == 7, code
        flat = unpack(data)
        return dict(zip(flat[::2], flat[1::2]))

    def heap(self, h):
        name, offset, nbytes = h
        return self.f[name][offset : offset + nbytes]

    def resolve(self, c):
        import importlib

        module, qualname = self.index["classes"][c]
        found = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
        return found

    def node(self, n):
        if type(n) is not dict:
            return n
        value = self.kind(n, n["k"])
        self.ids.setdefault(n.get("id"), value)
        return value

    def kind(self, n, k):
        if k == "v":
            return n["v"]
        if k == "p":
            return msgpack.unpackb(self.heap(n["h"]).tobytes(), ext_hook=self.ext, strict_map_key=False)
        if k == "a":
            dt = n["dt"]
            dtype = np.lib.format.descr_to_dtype([tuple(d) for d in dt]) if type(dt) is list else np.dtype(dt)
            stored = tuple(n["sh"])[::-1] if n["o"] == "F" else tuple(n["sh"])
            if "ds" in n:
                arr = self.f[n["ds"]][()]
                arr = arr.view(dtype).reshape(stored) if n.get("raw") else arr
            else:
                arr = self.heap(n["h"]).view(dtype).reshape(stored)
            return arr.T if n["o"] == "F" else arr
        if k == "d":
            out: dict = {}
            self.ids[n.get("id")] = out
            for item in n["items"]:
                out[self.node(item[2]) if len(item) == 3 else item[0]] = self.node(item[1])
            return out
        if k == "l":
            out_list: list = []
            self.ids[n.get("id")] = out_list
            out_list.extend(self.node(c) for c in n["items"])
            return out_list
        if k in ("t", "s", "f"):
            return {"t": tuple, "s": set, "f": frozenset}[k](self.node(c) for c in n["items"])
        if k == "oa":
            arr = np.empty(len(n["items"]), dtype=object)
            arr[:] = [self.node(c) for c in n["items"]]
            return arr.reshape(n["sh"], order=n["o"])
        if k == "r":
            return self.ids[n["to"]]
        if k == "g":
            return self.resolve(n["c"])
        if k == "x":
            return ("opaque", n["m"], n["t"])  # a cloudpickle: not unpickled here
        if k == "n":  # a safe type: its name, meta and parts (an enum member: by name from its class)
            if n["t"] == "enum":
                return self.resolve(n["c"])[n["m"]["name"]]
            return {"type": n["t"], "meta": n["m"], "parts": {name: self.node(c) for name, c in n.get("items", ())}}
        assert k == "o", k
        cls = self.resolve(n["c"])
        assert isinstance(cls, type)
        args = self.node(n["args"]) if "args" in n else ()
        kwargs = self.node(n["kw"]) if "kw" in n else {}
        obj = cls(*args) if n["r"] == "call" else cls.__new__(cls, *args, **kwargs)
        self.ids[n.get("id")] = obj
        state = self.node(n["state"]) if "state" in n else None
        if "attrs" in n or "slots" in n:
            attrs = {name: self.node(c) for name, c in n.get("attrs", ())} or None
            state = (attrs, {name: self.node(c) for name, c in n["slots"]}) if "slots" in n else attrs
        if state is not None:
            if hasattr(obj, "__setstate__"):
                obj.__setstate__(state)
            else:
                attrs, slots = state if type(state) is tuple else (state, None)
                if attrs:
                    obj.__dict__.update(attrs)
                for name, value in (slots or {}).items():
                    setattr(obj, name, value)
        if "li" in n:
            obj.extend(self.node(n["li"]))
        for key, value in self.node(n["di"]) if "di" in n else ():
            obj[key] = value
        return obj


def test_every_node_kind_reads_following_the_spec(tmp_path):
    """docs/format.md is enough to read objects, references, subclasses and packed data."""
    from collections import OrderedDict

    from tests import _h5_objects as o

    shared = [1, 2, "shared"]
    data = {
        "atom": o.Atom("Cu", np.zeros(3), ["bulk"]),
        "slotted": o.Slotted(1, [2, 3]),
        "state": o.WithState(4),
        "color": o.Color.GREEN,
        "bag": o.Bag([1, "two", np.ones(2)]),
        "table": o.Table(a=1, b=[2]),
        "ordered": OrderedDict(x=1.5, y="why"),
        "keyworded": o.Keyworded(1, 2, scale=3.0, unit="eV"),
        "function": o.record_call,
        "class": o.Atom,
        "singleton": o.SENTINEL,
        "opaque": o.Evil(),
        "a": shared,
        "b": shared,
        "int_keys": {1: "one", 2: "two"},
        "mixed_keys": {(1, 2): "tuple", None: "none", "s": "str"},
        "objects": np.array([1, "a", None], dtype=object),
        "structured": np.zeros(2, dtype=[("n", "<i4"), ("v", "<f8", (2,))]),
        "big_strings": np.array(["abc"] * 30_000),
        "packed": [2**70, 1 + 2j, np.float32(0.5), (1, 2), {3, 4}, frozenset({5})],
    }
    path = sn.save(data, tmp_path / "kinds.h5")
    with h5py.File(path, "r") as f:
        reader = _SpecReader(f)
        back = reader.node(reader.index["root"])
        nodes = dict((item[0], item[1]) for item in reader.index["root"]["items"])
    assert "li" in nodes["bag"] and "di" in nodes["table"] and "di" in nodes["ordered"]
    assert nodes["keyworded"]["r"] == "newex" and nodes["keyworded"]["kw"]["k"] == "v"  # kw: any node kind
    assert nodes["int_keys"]["k"] == "p"  # packed with int map keys: strict_map_key=False is needed
    assert back["atom"] == data["atom"] and back["slotted"] == data["slotted"]
    assert back["state"].x == 4 and back["state"].cache == "rebuilt" and back["color"] is o.Color.GREEN
    assert type(back["bag"]) is o.Bag and back["bag"][:2] == [1, "two"] and np.array_equal(back["bag"][2], np.ones(2))
    assert type(back["table"]) is o.Table and back["table"] == {"a": 1, "b": [2]}
    assert type(back["ordered"]) is OrderedDict and list(back["ordered"].items()) == [("x", 1.5), ("y", "why")]
    assert back["keyworded"].args == (1, 2) and back["keyworded"].kwargs == {"scale": 3.0, "unit": "eV"}
    assert back["function"] is o.record_call and back["class"] is o.Atom and back["singleton"] is o.SENTINEL
    assert back["opaque"] == ("opaque", "tests._h5_objects", "Evil")
    assert back["a"] == shared and back["a"] is back["b"]
    assert back["int_keys"] == data["int_keys"] and back["mixed_keys"] == data["mixed_keys"]
    assert list(back["objects"]) == [1, "a", None]
    assert back["structured"].dtype == data["structured"].dtype
    assert np.array_equal(back["big_strings"], data["big_strings"])
    assert back["packed"] == data["packed"] and type(back["packed"][2]) is np.float32
    assert not o.CALLS  # nothing named by the file was called


def test_the_spec_reader_reads_a_dataframes_columns_and_an_atoms_arrays(tmp_path):
    """Safe types (n nodes) read with h5py, msgpack and numpy alone, as docs/format.md says:
    a DataFrame's columns are parts named by the meta's ``columns``, a string column is UTF-8
    bytes with int64 offsets, an Atoms' arrays are parts and its cell is in the meta."""
    import ase.build
    import pandas as pd

    df = pd.DataFrame(
        {"e": np.linspace(-1, 0, 5), "n": np.arange(5, dtype=np.int32), "s": ["a", "bé", None, "", "x"]},
        index=pd.RangeIndex(5, name="step"),
    )
    atoms = ase.build.bulk("Cu", cubic=True)
    path = sn.save({"df": df, "atoms": atoms}, tmp_path / "sci.h5")
    with h5py.File(path, "r") as f:
        reader = _SpecReader(f)
        back = reader.node(reader.index["root"])
    frame = back["df"]
    assert frame["type"] == "pandas.DataFrame" and frame["meta"]["columns"] == ["e", "n", "s"]
    assert frame["meta"]["shape"] == [5, 3] and frame["meta"]["dtypes"] == ["float64", "int32", "str"]
    assert np.array_equal(frame["parts"]["e"], df["e"].to_numpy()) and frame["parts"]["n"].dtype == np.int32
    strings = frame["parts"]["s"]
    offsets, data, valid = (strings["parts"][k] for k in ("offsets", "data", "valid"))
    texts = [bytes(data[offsets[i] : offsets[i + 1]]).decode() if valid[i] else None for i in range(5)]
    assert texts == ["a", "bé", None, "", "x"]
    index = frame["parts"]["__index__"]
    assert index["type"] == "pandas.RangeIndex" and index["meta"] == {"start": 0, "stop": 5, "step": 1}
    assert index["parts"]["name"] == "step"
    from _docs import DOCS, section_namespace

    column = section_namespace(DOCS / "format.md", "### Safe types")["column"]  # the page's own snippet
    with h5py.File(path, "r") as f:
        reader = _SpecReader(f)
        frame_node = next(item[1] for item in reader.index["root"]["items"] if item[0] == "df")
        assert column(reader, frame_node, "s") == ["a", "bé", None, "", "x"]
        assert np.array_equal(column(reader, frame_node, "e"), df["e"].to_numpy())
    cu = back["atoms"]
    assert cu["type"] == "ase.Atoms" and cu["meta"]["formula"] == "Cu4" and cu["meta"]["pbc"] == [True] * 3
    assert np.array_equal(cu["meta"]["cell"], atoms.cell.array)
    assert np.array_equal(cu["parts"]["positions"], atoms.positions)
    assert np.array_equal(cu["parts"]["numbers"], atoms.numbers)
