"""The h5 backend's edges: scalar roots, checked options, foreign HDF5 files, items of list
and dict subclasses, durable updates, and key errors with suggestions.
"""

from __future__ import annotations

from collections import OrderedDict

import h5py
import numpy as np
import pytest

import storage_nodes as sn
from storage_nodes import atomic


@pytest.mark.parametrize("value", [1, 2.5, "Cu", b"raw", True, None])
def test_a_scalar_saved_as_a_whole_h5_file_loads_back(tmp_path, value):
    """Scalars stand for themselves in the index, also at the root, but read_index refuses a
    root that is not a map: sn.save(-3.2, 'e.h5') writes a file that sn.load, inspect,
    compact and save(key=...) all call 'damaged ... restore it from a copy'. A SaveNode
    whose obj is a float output hits this."""
    path = sn.save(value, tmp_path / "scalar.h5")
    assert sn.load(path) == value
    assert sn.inspect(path).root.type == type(value).__name__


def test_h5_refuses_a_misspelt_option(tmp_path):
    """save(..., compresion='gzip') is silently ignored: the user thinks the array is compressed."""
    with pytest.raises(sn.InvalidArgumentError, match="'compresion'"):
        sn.save(np.zeros(100_000), tmp_path / "a.h5", compresion="gzip")
    assert not (tmp_path / "a.h5").exists()


def test_h5_still_takes_compression(tmp_path):
    path = sn.save({"big": np.zeros(100_000)}, tmp_path / "a.h5", compression="gzip")
    assert np.array_equal(sn.load(path, key="big"), np.zeros(100_000))


def test_an_hdf5_file_of_another_tool_is_not_called_damaged(tmp_path):
    """A valid HDF5 file without our index (h5py, bagofholding, pyiron) is reported as
    'damaged or cut short ... restore it from a copy', which sends the user after a backup
    they do not need. It should say the file was not written by storage_nodes."""
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.ones(3)
    for call in (sn.load, sn.inspect):
        with pytest.raises(sn.CorruptFileError) as exc:
            call(path)
        text = str(exc.value)
        assert "not written by storage_nodes" in text, text
        assert "restore it from a copy" not in text and "damaged" not in text, text


def test_items_of_dict_and_list_subclasses_are_browsable(tmp_path):
    """OrderedDict, defaultdict, Counter, deque and list/dict subclasses list no children in
    inspect and refuse key= into them, although their items are ordinary nodes (li / di)."""
    data = {"od": OrderedDict(a=np.arange(3.0), b=2)}
    path = sn.save(data, tmp_path / "od.h5")
    assert np.array_equal(sn.load(path, key="od/a"), np.arange(3.0))
    assert sn.inspect(path)["od"].length == 2


def test_durable_partial_update_fsyncs(tmp_path, monkeypatch):
    """save(..., key=..., durable=True) does not fsync (docs/api.md: durable=True also fsyncs;
    docs/format.md says an update fsyncs)."""
    path = sn.save({"a": 1, "b": 2}, tmp_path / "d.h5")
    synced = []
    real = atomic.fsync_path
    monkeypatch.setattr(atomic, "fsync_path", lambda p: (synced.append(p), real(p)))
    sn.save(3, path, key="a", durable=True)
    assert sn.load(path) == {"a": 3, "b": 2}
    assert synced, "no fsync during a durable partial update"


def test_h5_names_where_a_misspelt_key_stops_and_suggests(tmp_path):
    """json and pickle say '<parent> (dict) has no entry <segment> (did you mean ...?)';
    h5, the default backend, only repeats the whole key."""
    path = sn.save({"energy": -3.2, "outputs": {"forces": np.ones(3)}}, tmp_path / "r.h5")
    with pytest.raises(sn.KeyNotFoundError) as exc:
        sn.load(path, key="outputs/force")
    assert "outputs (dict) has no entry 'force' (did you mean 'forces'?)" in str(exc.value), str(exc.value)
