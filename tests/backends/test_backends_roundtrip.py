"""Round trips, metadata and inspect for the pickle, cloudpickle and json backends."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from _compare import assert_same
from _objects import Crystal, Point

import storage_nodes as sn

SIMPLE = ["pickle", "cloudpickle", "json"]
SUFFIX = {"pickle": ".pkl", "cloudpickle": ".cpkl", "json": ".json"}


def test_backends_lists_builtin_names():
    assert set(sn.backends()) >= {"pickle", "cloudpickle", "json", "h5"}
    assert sn.backends() == sorted(sn.backends())


@pytest.mark.parametrize("backend", SIMPLE)
def test_nested_round_trip(tmp_path, data, backend):
    path = sn.save(data, tmp_path / f"d{SUFFIX[backend]}")
    assert sn.inspect(path).backend == backend
    assert_same(data, sn.load(path))


@pytest.mark.parametrize("backend", SIMPLE)
def test_backend_named_explicitly_ignores_suffix(tmp_path, backend):
    path = sn.save([1, 2], tmp_path / "data.bin", backend=backend)
    assert sn.load(path) == [1, 2]
    assert sn.inspect(path).backend == backend


@pytest.mark.parametrize("backend", ["pickle", "cloudpickle"])
def test_custom_classes_round_trip(tmp_path, backend):
    obj = {"p": Point(1.0, 2.0, "a"), "c": Crystal("Cu", np.eye(3))}
    path = sn.save(obj, tmp_path / f"o{SUFFIX[backend]}")
    back = sn.load(path)
    assert back["p"] == obj["p"] and back["c"] == obj["c"]


def test_cloudpickle_stores_lambdas(tmp_path):
    path = sn.save({"f": lambda x: x * 3}, tmp_path / "f.cpkl")
    assert sn.load(path)["f"](2) == 6


def test_pickle_refuses_lambdas_and_names_cloudpickle(tmp_path):
    with pytest.raises(sn.SerializationError, match="cloudpickle"):
        sn.save({"f": lambda x: x}, tmp_path / "f.pkl")
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.parametrize("backend", SIMPLE)
def test_metadata_and_environment_visible_without_unpickling(tmp_path, backend, monkeypatch):
    path = sn.save(
        {"a": np.arange(3), "p": 1.5}, tmp_path / f"m{SUFFIX[backend]}", metadata={"sample": "Cu-3", "T": 300}
    )

    def boom(*args, **kwargs):
        raise AssertionError("inspect must not unpickle")

    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "Unpickler", boom)
    listing = sn.inspect(path)
    assert listing.metadata == {"sample": "Cu-3", "T": 300}
    assert listing.environment["storage_nodes"] == sn.__version__
    assert listing.environment["python"]["version"]
    assert listing["a"].shape == (3,) and listing["a"].dtype == "int64"
    assert listing["p"].type == "float"
    text = str(listing)
    assert "Cu-3" in text and "ndarray" in text
    json.dumps(listing.to_dict())  # plain data
    assert sn.Listing.from_dict(listing.to_dict()).to_dict() == listing.to_dict()


def test_pickle_environment_names_stored_modules(tmp_path):
    path = sn.save({"p": Point(1, 2), "a": np.zeros(2)}, tmp_path / "e.pkl")
    modules = sn.environment(path)["modules"]
    assert "_objects" in modules and "Point" in modules["_objects"]["sources"]
    assert modules["numpy"]["version"] == np.__version__


@pytest.mark.parametrize("backend", SIMPLE)
def test_load_key_selects_entry(tmp_path, data, backend):
    path = sn.save(data, tmp_path / f"k{SUFFIX[backend]}")
    assert sn.load(path, key="items/1/1/1/deep") == "yes"
    assert sn.load(path, key="with~1slash") == 1
    assert sn.load(path, key="3") == "int key"
    np.testing.assert_array_equal(sn.load(path, key="arrays/i4"), data["arrays"]["i4"])
    with pytest.raises(sn.KeyNotFoundError) as err:
        sn.load(path, key="arrays/missing")
    assert str(path) in str(err.value) and "missing" in str(err.value)
    assert isinstance(err.value, KeyError)


def test_json_file_is_plain_readable_json(tmp_path):
    path = sn.save({"x": [1, 2], "a": np.arange(3.0)}, tmp_path / "p.json", metadata={"who": "me"})
    doc = json.loads(path.read_text())
    assert doc["storage_nodes"]["backend"] == "json"
    assert doc["metadata"] == {"who": "me"}
    assert doc["data"]["x"] == [1, 2]
    assert doc["data"]["a"]["__sn__"] == "ndarray" and doc["data"]["a"]["data"] == [0.0, 1.0, 2.0]


def test_json_strict_standard_no_nan_tokens(tmp_path):
    path = sn.save({"n": float("nan"), "a": np.array([np.inf])}, tmp_path / "n.json")
    json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard token {c}"))


def test_json_unsupported_object_names_the_path(tmp_path):
    target = tmp_path / "bad.json"
    with pytest.raises(sn.SerializationError) as err:
        sn.save({"results": {"forces": [0, 1, 2, Point(0, 0)]}}, target)
    assert "obj['results']['forces'][3]" in str(err.value)
    assert "Point" in str(err.value)
    assert not target.exists() and not list(tmp_path.iterdir())


def test_json_more_dtypes_round_trip(tmp_path):
    data = {
        "dt": np.array(["2020-01-01", "NaT"], dtype="datetime64[s]"),
        "td": np.array([1, 2], dtype="timedelta64[ms]"),
        "bytes": np.array([b"ab", b"c"]),
        "obj": np.array([1, "x", None], dtype=object),
        "rec": np.array([(1, 2.5)], dtype=[("a", "<i4"), ("b", "<f8")]),
        "u2": np.array([1, 2], dtype=">u2"),
        "set": {1, 2},
        "fs": frozenset({"a"}),
        "cplx": 1 - 2j,
        "dict_with_tag": {"__sn__": "not a tag"},
    }
    back = sn.load(sn.save(data, tmp_path / "t.json"))
    for k in ("dt", "td", "bytes", "rec", "u2"):
        assert back[k].dtype == data[k].dtype
        np.testing.assert_array_equal(back[k], data[k])
    assert list(back["obj"]) == [1, "x", None]
    assert back["set"] == {1, 2} and back["fs"] == frozenset({"a"}) and back["cplx"] == 1 - 2j
    assert back["dict_with_tag"] == {"__sn__": "not a tag"}


def test_json_load_never_imports(tmp_path):
    import builtins

    path = sn.save({"a": np.arange(2)}, tmp_path / "s.json")
    sn.load(path)  # warm up lazily imported modules of our own
    real_import = builtins.__import__
    imported: list[str] = []

    def recording(name, *args, **kwargs):
        imported.append(name)
        return real_import(name, *args, **kwargs)

    builtins.__import__ = recording
    try:
        back = sn.load(path, safe=True, version_policy="ignore")
    finally:
        builtins.__import__ = real_import
    assert imported == []
    assert back["a"].tolist() == [0, 1]


def test_json_hostile_tag_is_refused_not_executed(tmp_path):
    path = tmp_path / "evil.json"
    path.write_text(
        json.dumps(
            {
                "storage_nodes": {"format_version": 1, "backend": "json"},
                "data": {"__sn__": "os.system", "args": ["echo hacked"]},
            }
        )
    )
    with pytest.raises(sn.CorruptFileError, match="unknown tag"):
        sn.load(path)


@pytest.mark.parametrize("backend", SIMPLE)
def test_listing_of_wide_container_is_truncated_with_a_count(tmp_path, backend):
    path = sn.save({f"k{i}": i for i in range(500)}, tmp_path / f"w{SUFFIX[backend]}")
    root = sn.inspect(path).root
    assert root.length == 500 and len(root.children) == 200 and root.truncated == 300
    assert "... 300 more" in str(sn.inspect(path))


def test_listing_text_shows_git_state_of_stored_modules():
    env = {
        "timestamp": "t",
        "modules": {
            "mypkg.core": {"version": "1.2", "git": {"commit": "0123456789abcdef", "dirty": True}},
            "other": {"version": "3.0", "git": None},
        },
    }
    listing = sn.Listing(
        path="x.h5", backend="h5", format_version=1, root=sn.Entry(path="", type="dict"), environment=env
    )
    text = str(listing)
    assert "mypkg.core==1.2 (git 0123456789, dirty)" in text and "other==3.0" in text
