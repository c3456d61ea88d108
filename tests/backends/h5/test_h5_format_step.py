"""The format step of the safe types: files of versions 2 and 3 (written before ``n`` nodes)
still load and are updated (by copying, as version 4); readers of 2 and 3 refuse 4 and 5 by
the version ("upgrade it"), not as damaged files."""

from __future__ import annotations

import h5py
import msgpack
import numpy as np
import pandas as pd
import pytest

import storage_nodes as sn
from storage_nodes.backends.h5 import indexcodec
from tests._docs import DOCS, section_namespace

READ_INDEX = section_namespace(DOCS / "format.md", "### The index log")["read_index"]


def _version(path) -> int:
    with h5py.File(path, "r") as f:
        return READ_INDEX(f)["format_version"]


def _set_version(path, version: int) -> None:
    """Relabel ``/index`` as an older storage_nodes wrote it (same nodes: no ``n`` node)."""
    import zlib

    with h5py.File(path, "r+") as f:
        index = msgpack.unpackb(zlib.decompress(f["index"][()].tobytes()))
        index["format_version"] = version
        text = msgpack.packb(index, use_bin_type=True)
        del f["index"]
        f.create_dataset("index", data=np.frombuffer(zlib.compress(text), dtype=np.uint8))
        f["index"].attrs["index_size"] = np.uint64(len(text))


@pytest.mark.parametrize("old", [2, 3])
def test_files_of_versions_2_and_3_still_load_and_update(tmp_path, old):
    path = sn.save({"a": np.arange(3.0), "b": {"c": "x"}}, tmp_path / "old.h5")
    if old == 3:  # a version-3 file carries its index log
        sn.save("y", path, key="b/c")
        sn.save(1, path, key="d")
        assert _version(path) == 5
    _set_version(path, old)
    assert sn.inspect(path).format_version == old
    back = sn.load(path)
    assert np.array_equal(back["a"], np.arange(3.0)) and back["b"]["c"] == ("y" if old == 3 else "x")
    sn.save(pd.DataFrame({"z": [1, 2]}), path, key="frame")  # an update of an old file: by copying, as 4
    assert _version(path) == 4
    assert sn.load(path, key="frame", safe=True)["z"].tolist() == [1, 2]
    assert sn.load(path, key="b/c") == ("y" if old == 3 else "x")


@pytest.mark.parametrize("reader", [2, 3])
def test_older_readers_refuse_versions_4_and_5_by_the_version(tmp_path, monkeypatch, reader):
    path = sn.save({"when": pd.Timestamp("2020").to_pydatetime()}, tmp_path / "new.h5")
    monkeypatch.setattr(indexcodec, "LOG_FORMAT_VERSION", reader)  # what a reader of 2 or 3 checks
    with pytest.raises(sn.StorageError, match=f"format 4; this storage_nodes reads up to {reader}: upgrade it") as err:
        sn.load(path)
    assert not isinstance(err.value, sn.CorruptFileError)
