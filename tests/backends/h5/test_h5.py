"""Round trips through the h5 archive backend: every kind of object the issue lists."""

from __future__ import annotations

import datetime
import pathlib
import warnings

import numpy as np
import pytest
from _compare import assert_same
from _h5_objects import Atom, Color, Evil, Model, Node, Reduced, Slotted, WithState

import storage_nodes as sn


def roundtrip(obj, tmp_path, **kwargs):
    path = sn.save(obj, tmp_path / "a.h5", **kwargs)
    return sn.load(path)


def test_nested_plain_data_round_trips(tmp_path, data):
    assert_same(data, roundtrip(data, tmp_path))


@pytest.mark.parametrize(
    "array",
    [
        np.arange(10, dtype=np.int8),
        np.arange(12, dtype=">i4").reshape(3, 4),
        np.linspace(0, 1, 5, dtype=np.float16),
        np.array([1 + 2j, np.nan], dtype=np.complex64),
        np.array(["a", "héllo"]),
        np.array([b"x", b"yz"]),
        np.array(["2020-01-01", "NaT"], dtype="datetime64[ns]"),
        np.array([1, 2], dtype="timedelta64[s]"),
        np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8", (2,))]),
        np.asfortranarray(np.arange(24.0).reshape(2, 3, 4)),
        np.arange(6.0)[::2],
        np.zeros((0, 4)),
        np.array(3.5),
        np.array([True, False]),
    ],
    ids=lambda a: f"{a.dtype}-{a.shape}",
)
@pytest.mark.parametrize("big", [False, True], ids=["heap", "dataset"])
def test_arrays_of_every_dtype_round_trip(tmp_path, array, big):
    if big:  # repeat to exceed the dataset threshold, keeping dtype and order
        reps = (1 << 18) // max(array.itemsize, 1) + 1
        array = np.asfortranarray(np.resize(array, (reps, *array.shape[1:]))) if array.ndim else array
    back = roundtrip({"x": array}, tmp_path)["x"]
    assert back.dtype == array.dtype and back.shape == array.shape
    assert np.array_equal(back, array, equal_nan=array.dtype.kind in "fcmM") or (
        array.dtype.kind in "mM" and np.array_equal(back.view("i8"), array.view("i8"))
    )
    if array.ndim > 1 and array.flags.f_contiguous and not array.flags.c_contiguous:
        assert back.flags.f_contiguous


def test_object_arrays_and_scalars(tmp_path):
    obj = {
        "objs": np.array([1, "a", None, [1, 2]], dtype=object),
        "scalars": [np.float64(1.5), np.int8(-3), np.complex128(1j), np.datetime64("2020-01-01"), np.str_("s")],
    }
    back = roundtrip(obj, tmp_path)
    assert back["objs"].dtype == object and list(back["objs"]) == [1, "a", None, [1, 2]]
    for a, b in zip(obj["scalars"], back["scalars"]):
        assert type(a) is type(b) and a == b


def test_python_scalars_and_containers(tmp_path):
    obj = {
        "big": 2**200,
        "neg": -(2**100),
        "floats": [float("nan"), float("inf"), -float("inf"), -0.0, 1e-300],
        "complex": complex(1, -2),
        "bytes": b"\x00" * 300,
        "long": "x" * 1000,
        "empty": ["", b"", (), [], {}, set(), frozenset()],
        "set": {1, "a", (2, 3)},
        "frozen": frozenset({1.5}),
        (1, 2): "tuple key",
        None: "none key",
        2.5: "float key",
        "a/b~c": "escaped",
    }
    back = roundtrip(obj, tmp_path)
    assert back["big"] == 2**200 and back["neg"] == -(2**100)
    assert np.isnan(back["floats"][0]) and back["floats"][1:4] == [float("inf"), -float("inf"), 0.0]
    assert np.copysign(1, back["floats"][3]) == -1
    assert back["complex"] == complex(1, -2) and back["bytes"] == obj["bytes"] and back["long"] == obj["long"]
    assert back["empty"] == obj["empty"] and [type(x) for x in back["empty"]] == [type(x) for x in obj["empty"]]
    assert back["set"] == obj["set"] and type(back["frozen"]) is frozenset
    assert back[(1, 2)] == "tuple key" and back[None] == "none key" and back[2.5] == "float key"
    assert back["a/b~c"] == "escaped"
    assert sn.load(tmp_path / "a.h5", key="a~1b~0c") == "escaped"


def test_custom_classes_round_trip(tmp_path):
    obj = {
        "atoms": [Atom("Cu", np.arange(3.0), ["bulk"]), Atom("O", np.zeros(3))],
        "model": Model(name="m", values=[1.0, 2.5], nested={"a": 1}),
        "color": Color.GREEN,
        "red": Color.RED,
        "slotted": Slotted(1, [2, 3]),
        "state": WithState(7),
        "reduced": Reduced(3, "b"),
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "day": datetime.date(2026, 1, 2),
        "path": pathlib.PurePosixPath("/a/b.txt"),
        "cls": Atom,
        "builtin": int,
    }
    back = roundtrip(obj, tmp_path)
    assert back["atoms"] == obj["atoms"]
    assert back["model"] == obj["model"] and back["model"].model_fields_set == obj["model"].model_fields_set
    assert back["color"] is Color.GREEN and back["red"] is Color.RED
    assert back["slotted"] == obj["slotted"]
    assert back["state"].x == 7 and back["state"].cache == "rebuilt"
    assert back["reduced"] == obj["reduced"]
    assert back["when"] == obj["when"] and back["day"] == obj["day"] and back["path"] == obj["path"]
    assert back["cls"] is Atom and back["builtin"] is int


def test_shared_references_and_cycles(tmp_path):
    shared = [1, 2]
    inner = {"x": shared}
    root = Node("root")
    child = Node("child")
    child.parent = root
    root.children.append(child)
    cyclic: list = [1]
    cyclic.append(cyclic)
    arr = np.arange(5.0)
    obj = {"a": shared, "b": inner, "c": shared, "tree": root, "cyclic": cyclic, "arr1": arr, "arr2": arr}
    back = roundtrip(obj, tmp_path)
    assert back["a"] is back["c"] is back["b"]["x"]
    assert back["tree"].children[0].parent is back["tree"]
    assert back["cyclic"][1] is back["cyclic"]
    assert back["arr1"] is back["arr2"]


def test_plain_container_shared_after_being_packed(tmp_path):
    shared = {"deep": [1, 2, 3]}
    obj = [{"holder": shared}, Slotted(shared, None)]
    back = roundtrip(obj, tmp_path)
    assert back[1].a is back[0]["holder"]


def test_opaque_leaves(tmp_path):
    local = lambda x: x + 1  # noqa: E731 - a lambda cannot be decomposed
    obj = {"f": local, "evil": Evil(), "plain": 1}
    back = roundtrip(obj, tmp_path)
    assert back["f"](1) == 2 and back["evil"] == "boom" and back["plain"] == 1
    listing = sn.inspect(tmp_path / "a.h5")
    assert listing["f"].opaque and listing["evil"].opaque and not listing["plain"].opaque
    with pytest.raises(sn.UnsafeLoadError) as err:
        sn.load(tmp_path / "a.h5", safe=True)
    assert err.value.key in ("f", "evil")
    assert sn.load(tmp_path / "a.h5", key="plain", safe=True) == 1


def test_index_never_names_a_callable(tmp_path):
    path = sn.save({"evil": Evil()}, tmp_path / "a.h5")
    listing = sn.inspect(path).to_dict()
    environment = listing.pop("environment")
    assert "_make_evil" not in repr(listing)  # no tree node names it: it sits inside the opaque blob
    # ... but the provenance record names the function the blob will call, with its source hash
    assert "_make_evil" in environment["modules"]["_h5_objects"]["sources"]


def _workflow():
    import pyiron_workflow as pwf

    from storage_nodes.demo import harmonic_energy, random_positions

    wf = pwf.Workflow("harmonic")
    wf.positions = pwf.node(random_positions, n=8, seed=1)
    wf.energy = pwf.node(harmonic_energy, positions=wf.positions)
    return wf


def test_pyiron_workflow_and_run_round_trip(tmp_path):
    wf = _workflow()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = wf.run()
    energy = run.result.nodes["energy"].output_ports["energy"].value
    path = sn.save({"wf": wf, "run": run}, tmp_path / "wf.h5")
    back = sn.load(path)
    assert back["run"].result.nodes["energy"].output_ports["energy"].value == energy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = back["wf"].run()
    assert again.result.nodes["energy"].output_ports["energy"].value == energy
    forces = sn.load(path, key="run/result/nodes/energy/output_ports/forces/value")
    assert np.array_equal(forces, run.result.nodes["energy"].output_ports["forces"].value)


def test_compression_option(tmp_path):
    import h5py

    big = np.zeros(100_000)
    path = sn.save({"big": big}, tmp_path / "z.h5", compression="gzip")
    assert path.stat().st_size < big.nbytes / 10
    assert np.array_equal(sn.load(path, key="big"), big)
    with h5py.File(path) as f:
        assert any(f[name].compression == "gzip" for name in f if name.startswith("array_"))


def test_unstorable_object_names_where(tmp_path):
    import threading

    with pytest.raises(sn.SerializationError, match="lock"):
        sn.save({"x": [threading.Lock()]}, tmp_path / "bad.h5")
    assert not (tmp_path / "bad.h5").exists()


def test_metadata_and_environment(tmp_path):
    path = sn.save([Atom("H", np.zeros(3))], tmp_path / "m.h5", metadata={"sample": "Cu-3"})
    listing = sn.inspect(path)
    assert listing.metadata == {"sample": "Cu-3"}
    assert listing.environment["backend"] == "h5" and "_h5_objects" in listing.environment["modules"]
    assert listing.format_version == 4  # 4: 2 with the n nodes of safe types


def test_inspect_of_a_wide_container_lists_a_bounded_number_of_children(tmp_path):
    from _objects import Point

    from storage_nodes.backends.h5.tree import MAX_LISTED_CHILDREN

    n = MAX_LISTED_CHILDREN + 5
    path = sn.save({"wide": {f"k{i}": i for i in range(n)}, "objs": [Point(i, i) for i in range(n)]}, tmp_path / "w.h5")
    listing = sn.inspect(path)
    for key in ("wide", "objs"):
        entry = listing[key]
        assert entry.length == n and len(entry.children) == MAX_LISTED_CHILDREN and entry.truncated == 5
    assert sn.load(path, key=f"wide/k{n - 1}") == n - 1


def test_truncated_archive_error_says_what_to_do(tmp_path):
    path = sn.save({"a": np.arange(100)}, tmp_path / "t.h5")
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(sn.CorruptFileError) as err:
        sn.load(path)
    assert str(path) in str(err.value) and "restore it from a copy" in str(err.value)


def test_functions_and_named_singletons_are_stored_by_reference(tmp_path):
    import os.path

    from _h5_objects import SENTINEL, record_call

    obj = {"f": record_call, "again": record_call, "join": os.path.join, "len": len, "s": SENTINEL}
    path = sn.save(obj, tmp_path / "refs.h5")
    back = sn.load(path)
    assert back["f"] is record_call and back["again"] is record_call and back["s"] is SENTINEL
    assert back["join"] is os.path.join and back["len"] is len
    listing = sn.inspect(path)
    assert listing["f"].type == "function" and not listing["f"].opaque and listing["f"].module == "_h5_objects"
    assert listing["f"].info["reference"] == "_h5_objects.record_call"
    assert listing["s"].type == "_Sentinel" and listing["s"].info["reference"] == "_h5_objects.SENTINEL"
    assert "_h5_objects" in listing.environment["modules"]
    with pytest.raises(sn.UnsafeLoadError, match="reference to a class or function"):
        sn.load(path, key="f", safe=True)


def test_a_reference_resolving_to_something_else_than_declared_is_refused(tmp_path):
    import h5py
    from _h5_objects import CALLS, Color, record_call

    from storage_nodes.backends.h5 import datasets, reader

    path = sn.save({"f": record_call, "c": Color.RED}, tmp_path / "refs.h5")
    with h5py.File(path, "r+") as f:
        index = reader.read_index(f.id, path)
        items = dict((item[0], item[1]) for item in index["root"]["items"])
        function_entry = items["f"]["c"]
        items["c"]["c"] = function_entry  # the Enum is rebuilt by calling its class: now the function
        datasets.write_index(f, index)
    with pytest.raises(sn.UnsafeLoadError, match="not a class"):
        sn.load(path)
    assert CALLS == []  # never called, even though a g node had resolved the same entry first
    with h5py.File(path, "r+") as f:
        index = reader.read_index(f.id, path)
        index["classes"][function_entry] = ["builtins", "int"]
        datasets.write_index(f, index)
    with pytest.raises(sn.UnsafeLoadError, match="is a function, but it is a type"):
        sn.load(path, key="f")


def test_big_plain_dicts_round_trip_with_any_keys(tmp_path):
    data = {i if i % 3 else f"k{i}": (i, [i * 0.5, None], {"x": b"\x00" * (i % 5)}) for i in range(500)}
    data[(1, 2)] = frozenset({1, 2})
    data[2.5] = {"nested": {f"n{j}": j for j in range(100)}}
    path = sn.save(data, tmp_path / "big.h5")
    back = sn.load(path)
    assert back == data and list(back) == list(data)  # order kept too
    assert sn.load(path, key="k3/2/x") == b"\x00\x00\x00"
    assert sn.load(path, key="4/1") == [2.0, None]
    assert sn.inspect(path).root.length == len(data)
