"""Browsing, partial loads, partial updates, safe loads and errors of h5 archives."""

from __future__ import annotations

import sys
import textwrap

import h5py
import numpy as np
import pytest
from _h5_objects import Atom, Slotted

import storage_nodes as sn
from storage_nodes.backends.h5 import datasets, reader


@pytest.fixture
def archive(tmp_path):
    obj = {
        "big": np.arange(100_000, dtype=np.float64),
        "small": {"energy": -3.2, "steps": [1, 2, 3]},
        "atoms": [Atom("Cu", np.ones(3))],
        "plain": {f"k{i}": i for i in range(50)},
    }
    return sn.save(obj, tmp_path / "run.h5", metadata={"who": "test"})


def test_partial_load_reads_only_what_the_entry_needs(archive, monkeypatch):
    read_datasets: list[str] = []
    original = reader.Reader.dataset

    def spy(self, name, shape, dtype):
        read_datasets.append(name)
        return original(self, name, shape, dtype)

    monkeypatch.setattr(reader.Reader, "dataset", spy)
    assert sn.load(archive, key="small/energy") == -3.2
    assert sn.load(archive, key="small/steps/1") == 2
    assert sn.load(archive, key="plain/k7") == 7
    assert read_datasets == []
    assert sn.load(archive, key="big").shape == (100_000,)
    assert len(read_datasets) == 1


def test_partial_load_checks_only_the_modules_of_the_entry(archive):
    seen = []
    backend = sn.api.resolve_backend(archive)
    backend.read(archive, key="small", safe=False, check=lambda env, mods: seen.append(mods))
    backend.read(archive, key="atoms", safe=False, check=lambda env, mods: seen.append(mods))
    backend.read(archive, key=None, safe=False, check=lambda env, mods: seen.append(mods))
    assert seen == [[], ["_h5_objects", "numpy"] if "numpy" in seen[1] else ["_h5_objects"], None]


def test_missing_key_names_file_and_key(archive):
    with pytest.raises(sn.KeyNotFoundError) as err:
        sn.load(archive, key="small/nope")
    assert err.value.key == "small/nope" and str(archive) in str(err.value)
    with pytest.raises(sn.KeyNotFoundError):
        sn.load(archive, key="plain/k999")
    with pytest.raises(sn.KeyNotFoundError):
        sn.inspect(archive, key="nothing/here")


def test_inspect_lists_types_shapes_and_sizes(archive):
    listing = sn.inspect(archive)
    big = listing["big"]
    assert big.type == "ndarray" and big.shape == (100_000,) and big.dtype == "float64" and big.size == 800_000
    assert listing["atoms/0"].type == "Atom" and listing["atoms/0"].module == "_h5_objects"
    assert listing["atoms/0/position"].shape == (3,)
    assert listing["plain/k49"].type == "int"
    assert len(listing["plain"].children) == 50
    assert listing.metadata == {"who": "test"}
    assert sn.inspect(archive, key="small").root.path == "small"


def test_open_is_a_lazy_mapping(archive):
    arc = sn.open(archive)
    assert set(arc.keys()) == {"big", "small", "atoms", "plain"}
    assert "small/energy" in arc and "small/nope" not in arc
    assert arc["small"]["energy"].load() == -3.2
    assert arc["small/steps"].load() == [1, 2, 3]
    assert len(arc["plain"]) == 50
    assert arc["big"].entry.shape == (100_000,)
    with pytest.raises(sn.KeyNotFoundError):
        arc["missing"]


def test_browse_and_plain_loads_without_the_stored_class(tmp_path, monkeypatch):
    module = tmp_path / "gone_module.py"
    module.write_text(
        textwrap.dedent(
            """
            class Gone:
                def __init__(self, v):
                    self.v = v
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import gone_module

    path = sn.save({"obj": gone_module.Gone(5), "x": [1.5, 2.5]}, tmp_path / "g.h5")
    module.unlink()
    monkeypatch.delitem(sys.modules, "gone_module")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    listing = sn.inspect(path)
    assert listing["obj"].type == "Gone" and listing["obj"].module == "gone_module"
    assert listing["obj/v"].type == "int"
    assert "gone_module" not in sys.modules
    assert sn.open(path)["obj"].entry.module == "gone_module"
    assert sn.load(path, key="x", safe=True) == [1.5, 2.5]
    assert sn.load(path, key="obj/v") == 5
    with pytest.raises(sn.StorageError, match="gone_module"):
        sn.load(path, key="obj", version_policy="ignore")
    assert "gone_module" not in sys.modules


def test_safe_load_refuses_classes_and_names_the_key(archive):
    with pytest.raises(sn.UnsafeLoadError) as err:
        sn.load(archive, safe=True)
    assert err.value.key == "atoms/0"
    assert sn.load(archive, key="small", safe=True) == {"energy": -3.2, "steps": [1, 2, 3]}
    assert sn.load(archive, key="big", safe=True).sum() == np.arange(100_000).sum()


def test_class_reference_must_resolve_to_a_class(tmp_path):
    path = sn.save({"cls": Atom}, tmp_path / "c.h5")
    with h5py.File(path, "r+") as f:
        index = reader.read_index(f.id, path)
        index["classes"] = [["os", "system"]]
        datasets.write_index(f, index)
    with pytest.raises(sn.UnsafeLoadError, match="not a class"):
        sn.load(path)


def test_update_replaces_one_entry_and_keeps_the_rest(archive):
    with h5py.File(archive) as f:
        before = {name: f[name].id.get_offset() for name in f if name.startswith("array_")}
    sn.save(np.arange(3), archive, key="small/energy", metadata={"step": 2})
    sn.save({"new": True}, archive, key="added")
    sn.save(Atom("Fe", np.zeros(3)), archive, key="atoms/1")
    sn.save("attr", archive, key="atoms/0/symbol")
    back = sn.load(archive)
    assert np.array_equal(back["small"]["energy"], np.arange(3)) and back["small"]["steps"] == [1, 2, 3]
    assert back["added"] == {"new": True}
    assert back["atoms"][1] == Atom("Fe", np.zeros(3)) and back["atoms"][0].symbol == "attr"
    assert np.array_equal(back["big"], np.arange(100_000, dtype=np.float64))
    with h5py.File(archive) as f:
        assert {name: f[name].id.get_offset() for name in f if name.startswith("array_")} == before
    listing = sn.inspect(archive)
    assert listing.metadata == {"who": "test", "step": 2}
    assert [u["key"] for u in listing.info["updates"]] == ["small/energy", "added", "atoms/1", "atoms/0/symbol"]


def test_update_inside_packed_plain_data(archive):
    sn.save(np.ones(2), archive, key="plain/k3")
    sn.save(Slotted(1, 2), archive, key="plain/new")
    back = sn.load(archive, key="plain")
    assert np.array_equal(back["k3"], np.ones(2)) and back["new"] == Slotted(1, 2) and back["k4"] == 4


def test_update_overwrite_false_refuses_existing_entry(archive):
    before = archive.read_bytes()
    with pytest.raises(sn.FileExistsStorageError):
        sn.save(1, archive, key="small/energy", overwrite=False)
    with pytest.raises(sn.FileExistsStorageError):
        sn.save(1, archive, key="plain/k1", overwrite=False)
    assert archive.read_bytes() == before
    sn.save(1, archive, key="small/other", overwrite=False)
    assert sn.load(archive, key="small/other") == 1


def test_update_creates_missing_file_and_levels(tmp_path):
    path = tmp_path / "new.h5"
    sn.save(5, path, key="a/b")
    sn.save(6, path, key="a/c/d")
    assert sn.load(path) == {"a": {"b": 5, "c": {"d": 6}}}


def test_update_bad_parent_leaves_file_untouched(archive):
    before = archive.read_bytes()
    with pytest.raises(sn.KeyNotFoundError):
        sn.save(1, archive, key="big/3/x")
    with pytest.raises(sn.KeyNotFoundError):
        sn.save(1, archive, key="atoms/7")
    assert archive.read_bytes() == before


def test_file_size_stays_bounded_over_many_updates(tmp_path):
    path = sn.save({"a": np.zeros(200_000), "keep": np.arange(10)}, tmp_path / "u.h5")
    for i in range(50):
        sn.save(np.full(200_000, float(i)), path, key="a")
        sn.save({"i": i, "blob": list(range(500))}, path, key="meta")
    assert path.stat().st_size < 3 * 1_600_000 + (2 << 20)
    assert sn.load(path, key="a")[0] == 49.0 and sn.load(path, key="meta")["i"] == 49
    sn.compact(path)
    assert path.stat().st_size < 1_700_000
    assert np.array_equal(sn.load(path, key="keep"), np.arange(10))


def test_damaged_files_raise_corrupt_file_error(tmp_path, archive):
    data = archive.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    for call in (lambda: sn.load(cut), lambda: sn.inspect(cut), lambda: sn.load(cut, key="small")):
        with pytest.raises(sn.CorruptFileError) as err:
            call()
        assert str(cut) in str(err.value)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    with pytest.raises(sn.CorruptFileError):
        sn.load(foreign)
    with pytest.raises(sn.CorruptFileError):
        sn.save(1, foreign, key="a")


def test_non_string_keys_of_decomposed_dicts(tmp_path):
    obj = {1: Atom("H", np.zeros(3)), (2, "b"): np.arange(3), "1": "str key wins", None: [Slotted(1, 2)]}
    path = sn.save(obj, tmp_path / "k.h5")
    back = sn.load(path)
    assert list(back) == [1, (2, "b"), "1", None]
    assert back[1] == obj[1] and np.array_equal(back[(2, "b")], np.arange(3)) and back[None] == [Slotted(1, 2)]
    assert sn.load(path, key="1") == "str key wins"
    assert np.array_equal(sn.load(path, key="(2, 'b')"), np.arange(3))
    assert sn.load(path, key="None/0") == Slotted(1, 2)
    assert sn.inspect(path)["None/0"].type == "Slotted"


def test_update_treats_a_stored_none_as_an_existing_entry(tmp_path):
    path = sn.save({"a": None, "obj": Atom("H", np.zeros(3)), "b": [None]}, tmp_path / "n.h5")
    with pytest.raises(sn.FileExistsStorageError):
        sn.save(1, path, key="a", overwrite=False)
    sn.save(2, path, key="a")
    sn.save(3, path, key="b/0")
    assert sn.load(path, key="a") == 2 and sn.load(path, key="b") == [3]


def test_partial_update_keeps_earlier_source_hashes(tmp_path):
    from _objects import Crystal, Point

    path = sn.save({"p": Point(1, 2)}, tmp_path / "a.h5")
    sn.save(Crystal("Cu", np.eye(3)), path, key="c")
    sources = sn.environment(path)["modules"]["_objects"]["sources"]
    assert {"Point", "Crystal"} <= set(sources)


def test_inspect_into_a_small_inline_dict(tmp_path):
    path = sn.save({"meta": {"n": 4, "name": "x"}, "a": np.zeros(3)}, tmp_path / "i.h5")
    listing = sn.inspect(path, key="meta/n")
    assert listing.root.type == "int"
    assert sn.load(path, key="meta/n") == 4


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            "big/3",
            "'big' is a numpy array, which has no entries to replace one by one; "
            "save the whole numpy array with key='big'",
        ),
        (
            "small/steps/7",
            "'small/steps' is a list of 3 items and '7' is not an index from -3 to 3 (3 appends an item)",
        ),
        ("small/energy/x", "'small/energy' is a float, which has no entries"),
        ("plain/k3/x", "'plain/k3' is an int, which has no entries"),
        ("atoms/5", "'atoms' is a list of 1 item and '5' is not an index from -1 to 1"),
    ],
)
def test_an_update_that_cannot_reach_its_key_says_why(archive, key, message):
    before = archive.read_bytes()
    with pytest.raises(sn.KeyNotFoundError) as err:
        sn.save(1, archive, key=key)
    assert message in str(err.value) and str(archive) in str(err.value)
    assert archive.read_bytes() == before


def test_an_item_of_a_packed_tuple_can_be_replaced(tmp_path):
    path = sn.save({"t": tuple(range(40)), "x": 1}, tmp_path / "t.h5")
    sn.save("new", path, key="t/3")
    back = sn.load(path)
    assert back["t"][3] == "new" and type(back["t"]) is tuple and back["t"][4] == 4 and back["x"] == 1


def test_a_listing_below_the_root_names_where_a_shared_object_lives(tmp_path):
    shared = [1, 2, {"deep": Atom}]
    path = sn.save({"b": {"inner": shared}, "a": {"ref": shared}}, tmp_path / "shared.h5")
    assert sn.inspect(path)["a/ref"].info["shared_with"] == "b/inner"
    assert sn.inspect(path, key="a")["a/ref"].info["shared_with"] == "b/inner"
    assert "the object at b/inner" in str(sn.inspect(path, key="a"))
    assert sn.inspect(path, key="a/ref").root.length == 3  # the key itself lists the shared object


@pytest.mark.parametrize("suffix", [".h5", ".json", ".pkl"])
def test_inspect_depth_lists_that_many_levels(tmp_path, suffix):
    data = {"a": {"b": {"c": 1, "d": [1, 2]}, "e": 2.5}, "f": "x"}
    path = sn.save(data, tmp_path / f"depth{suffix}")
    top = sn.inspect(path, depth=0).root
    assert top.children == [] and top.truncated == 2 and top.length == 2
    one = sn.inspect(path, depth=1)
    assert [c.name for c in one.root.children] == ["a", "f"]
    assert one["a"].children == [] and one["a"].truncated == 2
    if suffix != ".pkl":  # pickle headers describe the top level only
        two = sn.inspect(path, key="a", depth=1)
        assert [c.name for c in two.root.children] == ["b", "e"] and two["a/b"].truncated == 2
        assert sn.inspect(path, key="a/b/d", depth=0).root.truncated == 2
    with pytest.raises(sn.InvalidArgumentError, match="depth"):
        sn.inspect(path, depth=-1)


def test_open_lists_each_group_when_reached_and_parses_the_index_once(tmp_path, monkeypatch):
    data = {"run": {"nodes": {f"n{i}": {"inputs": {"x": i}, "outputs": {"y": [i] * 3}} for i in range(50)}}}
    path = sn.save(data, tmp_path / "lazy.h5")
    parsed: list[str] = []
    original = reader.read_index
    monkeypatch.setattr(
        reader, "read_index", lambda fid, p, *raw, **kw: parsed.append(str(p)) or original(fid, p, *raw, **kw)
    )
    arc = sn.open(path)
    (run,) = arc.entry.children
    assert run.children == [] and run.truncated == 1  # not listed yet
    nodes = arc["run"]["nodes"]
    assert len(nodes) == 50 and nodes["n7/outputs/y"].entry.length == 3
    assert [c.truncated for c in nodes["n3"].entry.children] == [1, 1]
    assert "n49/inputs/x" in nodes and "n50" not in nodes
    assert len(parsed) <= 1  # listings of one unchanged file share its parsed index
    assert nodes["n7/outputs/y"].load() == [7, 7, 7]  # (a load reads the index itself)
    sn.save({"run": "replaced"}, path)  # a new file (new inode): listings see it at once
    assert sn.open(path)["run"].entry.type == "str" and sn.inspect(path, key="run").root.type == "str"


def test_a_reference_into_constructor_arguments_names_them(tmp_path):
    import functools

    path = sn.save({"f": functools.partial(max, 1)}, tmp_path / "partial.h5")
    listing = sn.inspect(path)
    refs = [e for e in listing.root.walk() if e.type == "shared reference"]
    assert [e.info["shared_with"] for e in refs] == ["f/__args__/0"]
    assert sn.load(path, key="f/__args__/0") is max
    assert sn.load(path)["f"](5) == 5


def test_a_none_or_falsy_value_beside_objects_loads_by_key(tmp_path):
    import pathlib

    data = {"a": None, "z": 0, "e": "", "obj": pathlib.Path("x"), "b": [None, pathlib.Path("y")]}
    path = sn.save(data, tmp_path / "none.h5")
    assert sn.load(path, key="a") is None and sn.load(path, key="b/0") is None
    assert sn.load(path, key="z") == 0 and sn.load(path, key="e") == ""
    assert sn.inspect(path, key="a").root.type == "NoneType"
    assert sn.load(sn.save(None, tmp_path / "root.h5")) is None


def test_a_safe_load_names_the_first_entry_it_refuses(tmp_path):
    import types  # (pathlib paths, used here before, are safe types since format 4)

    first, second = types.SimpleNamespace(a=1), types.SimpleNamespace(b=2)
    path = sn.save({"plain": 1, "first": first, "second": second}, tmp_path / "s.h5")
    with pytest.raises(sn.UnsafeLoadError) as err:
        sn.load(path, safe=True)
    assert err.value.key == "first"
    assert sn.inspect(path)["first"].module == "types"
