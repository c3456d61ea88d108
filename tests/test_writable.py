"""``sn.open(path, mode)``: the writable, dict-like handle (issue 30), on every built-in backend."""

from __future__ import annotations

import numpy as np
import pytest

import storage_nodes as sn

SUFFIXES = [".h5", ".json", ".pkl", ".cpkl"]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_block_writes_groups_values_and_metadata_read_back_inside_and_after(tmp_path, suffix):
    path = tmp_path / f"run{suffix}"
    with sn.open(path, "a") as s:
        s["a"] = 5
        s["grp/b"] = np.arange(3)
        s["grp"]["c"] = "x"
        s["structures"] = [{"n": 1}, {"n": 2}, {"n": 3}]
        s.metadata["sample"] = "Cu-3"
        # inside the block, before anything is written, reads see the changes
        assert not path.exists()
        assert s["a"] == 5 and s["grp"]["c"] == "x" and "grp/b" in s and "grp/z" not in s
        assert sorted(s) == ["a", "grp", "structures"] and len(s["grp"]) == 2
        assert s["structures"][2]["n"] == 3 and s.metadata["sample"] == "Cu-3"
    back = sn.load(path)
    assert back["a"] == 5 and back["grp"]["c"] == "x" and np.array_equal(back["grp"]["b"], np.arange(3))
    assert back["structures"][1] == {"n": 2}
    assert sn.inspect(path).metadata == {"sample": "Cu-3"}


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_outside_a_block_each_change_is_applied_at_once(tmp_path, suffix):
    path = sn.save({"a": 1, "grp": {"b": 2, "c": [1, 2, 3]}}, tmp_path / f"run{suffix}")
    s = sn.open(path, "a")
    s["d"] = 4.5
    assert sn.load(path, key="d") == 4.5
    del s["a"]
    assert "a" not in sn.load(path)
    del s["grp/c/1"]
    assert sn.load(path, key="grp/c") == [1, 3]
    g = s.require_group("new")
    g["x"] = 1
    assert sn.load(path, key="new") == {"x": 1}
    assert s.get("missing", "default") == "default" and s.get("d") == 4.5
    assert isinstance(s["grp"], sn.writable.WritableGroup) and s["grp"]["b"] == 2
    s.metadata["who"] = "me"
    assert sn.inspect(path).metadata["who"] == "me"


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_an_exception_in_the_block_leaves_the_file_byte_identical(tmp_path, suffix):
    path = sn.save({"a": 1}, tmp_path / f"run{suffix}")
    before = path.read_bytes()
    with pytest.raises(RuntimeError), sn.open(path, "a") as s:
        s["b"] = 2
        del s["a"]
        raise RuntimeError("stop")
    assert path.read_bytes() == before


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_mode_w_replaces_the_file_only_when_the_block_ends_without_error(tmp_path, suffix):
    path = sn.save({"old": 1}, tmp_path / f"run{suffix}")
    before = path.read_bytes()
    with pytest.raises(RuntimeError), sn.open(path, "w") as s:
        s["new"] = 2
        assert list(s) == ["new"]  # the old content is not seen
        raise RuntimeError("stop")
    assert path.read_bytes() == before
    with sn.open(path, "w") as s:
        s["new"] = 2
    assert sn.load(path) == {"new": 2}


def test_values_are_stored_as_they_were_when_assigned(tmp_path):
    path = tmp_path / "run.h5"
    arr = np.zeros(3)
    with sn.open(path, "a") as s:
        for i in range(3):
            arr[:] = i
            s[f"k{i}"] = arr
    assert [sn.load(path, key=f"k{i}")[0] for i in range(3)] == [0, 1, 2]


def test_groups_are_created_required_and_refused_like_h5py(tmp_path):
    path = tmp_path / "run.h5"
    s = sn.open(path, "a")
    s["v"] = 1
    g = s.create_group("g")
    assert len(g) == 0 and sn.load(path, key="g") == {}
    with pytest.raises(sn.FileExistsStorageError, match="require_group"):
        s.create_group("g")
    assert s.require_group("g").key == "g"
    with pytest.raises(sn.FileExistsStorageError, match="not a group"):
        s.require_group("v")
    with pytest.raises(sn.KeyNotFoundError, match="no entry 'zz'"):
        del s["zz"]
    with pytest.raises(sn.UnsupportedOperationError, match="root"):
        del s[""]


def test_a_block_of_a_new_file_and_read_only_int_indices(tmp_path):
    path = tmp_path / "new.h5"
    with sn.open(path, "a") as s:
        s["structures"] = [{"n": i} for i in range(5)]
    with sn.open(path) as r:
        assert r["structures"][2].load() == {"n": 2} and 2 in r["structures"] and 7 not in r["structures"]
    assert sn.open(path, "a")["structures"][4]["n"] == 4


def test_bad_modes_and_directories_are_refused(tmp_path):
    with pytest.raises(sn.InvalidArgumentError, match="mode"):
        sn.open(tmp_path / "x.h5", "x")  # type: ignore[arg-type]
    with pytest.raises(sn.FileNotFoundStorageError, match="does not exist"):
        sn.open(tmp_path / "no" / "x.h5", "a")
    with pytest.raises(sn.InvalidArgumentError, match="no backend"):
        sn.open(sn.save(1, tmp_path / "y.h5"), backend="h5")


def test_metadata_is_merged_and_not_removed(tmp_path):
    path = sn.save({"a": 1}, tmp_path / "run.h5", metadata={"T": 300})
    s = sn.open(path, "a")
    s.metadata = {"sample": "Cu"}
    assert dict(s.metadata) == {"T": 300, "sample": "Cu"} == sn.inspect(path).metadata
    with pytest.raises(sn.UnsupportedOperationError, match="None instead"):
        del s.metadata["T"]
    with pytest.raises(sn.MetadataError):
        s.metadata["bad"] = object()
    assert sn.inspect(path).metadata == {"T": 300, "sample": "Cu"}
