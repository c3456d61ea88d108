"""The index log of h5 archives updated in place (format version 3, issue 15 "Scale").

An update in place appends its change of the index to ``/index_log`` instead of rewriting
``/index``; readers apply the log. These tests check that every kind of update gives readers
exactly the index the writer holds (and the one an update by copying writes), that the bytes
an update writes do not grow with the archive, that the log is folded into ``/index`` when it
grows, that damaged logs are refused, and that docs/format.md's reader is enough.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
from pathlib import Path

import h5py
import msgpack
import numpy as np
import pytest
from _h5_objects import Atom, Bag, Slotted

import storage_nodes as sn
from storage_nodes.backends.h5 import indexcodec, journal, reader
from storage_nodes.backends.h5 import update as h5update


def _index(path) -> dict:
    with reader.open_reader(path) as r:
        return r.index


def _normal(index: dict) -> dict:
    """``index`` as a reader decodes it (tuples become lists)."""
    data, size = indexcodec.dump_index(index)
    return indexcodec.load_index(data.tobytes(), size)


def _log_size(path) -> int | None:
    with h5py.File(path, "r") as f:
        return f["index_log"].shape[0] if "index_log" in f else None


def _version(path) -> int:
    """The format version in ``/index`` itself (what an older reader checks)."""
    with h5py.File(path, "r") as f:
        return msgpack.unpackb(indexcodec.inflate(f["index"][()].tobytes(), None))["format_version"]


@contextlib.contextmanager
def _copying():
    saved = journal.fcntl
    journal.fcntl = None  # no flock: updates copy the file and rewrite the whole index
    try:
        yield
    finally:
        journal.fcntl = saved


SHARED = [1, 2, 3]
START = {
    "d": {f"k{i}": {"i": np.zeros(2)} for i in range(70)},  # a big dict node (names looked up by a map)
    "lst": [{"x": 0}, {"x": 1}, {"x": 2}],
    "atom": Atom("Cu", np.zeros(3)),
    "slotted": Slotted({"a": 1}, [2]),
    "bag": Bag([1, 2]),
    "plain": {f"p{i}": i for i in range(20)},
    "a": SHARED,
    "b": SHARED,
    "int_keys": {1: {"one": [1]}, "1": {"str": [1]}},
}
#: (key, value, metadata): a new dict entry, a replaced one, list items (negative, appended),
#: attributes (existing list, created), packed plain data, missing levels, a shared object reached
#: through its reference, a str key beside an int key, new classes and modules, big-int metadata
CHANGES = [
    ("d/new", {"y": 1}, {}),
    ("d/k5", {"i": -5}, {"step": 1}),
    ("d/k7/i", "seven", {}),
    ("lst/-1", {"x": 22}, {}),
    ("lst/3", {"x": 3}, {}),
    ("atom/symbol", "Fe", {}),
    ("atom/extra", [1, 2], {}),
    ("slotted/a", {"z": 1}, {}),
    ("bag/note", 5, {}),
    ("plain/p3", "three", {}),
    ("new/deep/x", 1.5, {"big": 2**70}),
    ("b/0", 100, {}),
    ("int_keys/1/str", 2, {}),
    ("d/atom", Atom("H", np.ones(3)), {}),
    ("d/k6", np.arange(40_000.0), {}),  # a big array, a dataset of its own
    ("d/k6", None, {"step": 2}),
]


def test_readers_see_exactly_the_index_the_writer_holds_for_every_kind_of_update(tmp_path, monkeypatch):
    monkeypatch.setattr(h5update, "LOG_MIN_BYTES", 1 << 20)  # every change goes to the log (no fold)
    path = sn.save(START, tmp_path / "log.h5")
    copy = sn.save(START, tmp_path / "copy.h5")
    for n, (key, value, metadata) in enumerate(CHANGES):
        sn.save(value, path, key=key, metadata=metadata)
        with _copying():
            sn.save(value, copy, key=key, metadata=metadata)
        held = h5update._WRITTEN[os.fspath(path)][1]
        assert _index(path) == _normal(held), key
        assert _version(path) == 5
        if n:  # the first update rewrites /index (as format 5), later ones append to the log
            assert _log_size(path), key
    assert _version(path) == 5 and _version(copy) == 4 and _log_size(copy) is None
    with h5py.File(path, "r") as f, h5py.File(copy, "r") as g:
        assert set(f) - {"index_log"} == set(g) and not any(n.startswith("array_") for n in f)
    a, b = _index(path), _index(copy)
    for index in (a, b):
        index.pop("format_version")
        index["environment"].pop("timestamp")
        for note in index["updates"]:
            note.pop("timestamp")
    assert a == b
    assert a["metadata"] == {"step": 2, "big": 2**70} and [u["key"] for u in a["updates"]] == [c[0] for c in CHANGES]
    back = sn.load(path)
    assert back["d"]["new"] == {"y": 1} and back["d"]["k5"] == {"i": -5} and back["d"]["atom"] == Atom("H", np.ones(3))
    assert back["d"]["k7"] == {"i": "seven"} and np.array_equal(back["d"]["k8"]["i"], np.zeros(2))
    assert back["lst"] == [{"x": 0}, {"x": 1}, {"x": 22}, {"x": 3}] and back["d"]["k6"] is None
    assert back["atom"].symbol == "Fe" and back["atom"].extra == [1, 2] and back["plain"]["p3"] == "three"
    assert back["slotted"] == Slotted({"z": 1}, [2]) and back["bag"] == [1, 2] and back["bag"].note == 5
    # an update through a shared reference replaces that entry only (as for a packed list)
    assert back["new"] == {"deep": {"x": 1.5}} and back["a"] == [1, 2, 3] and back["b"] == [100, 2, 3]
    assert back["int_keys"] == {1: {"one": [1]}, "1": {"str": 2}}
    listings = [json.loads(sn.inspect(p).to_json()) for p in (path, copy)]
    assert listings[0]["root"] == listings[1]["root"] and listings[0]["format_version"] == 5


def test_the_bytes_an_append_writes_do_not_grow_with_the_entries(tmp_path, monkeypatch):
    """Counted, not timed: everything HDF5 writes through the journaled file (appended bytes
    and overwrites of committed ones). Before the index log, each update rewrote the whole
    index: about 2 KB at 100 entries, 8 KB at 1,000, 23 KB at 3,000."""
    written: list[int] = []
    original = journal.JournaledFile.write

    def counting(self, data):
        written[-1] += memoryview(data).nbytes
        return original(self, data)

    monkeypatch.setattr(journal.JournaledFile, "write", counting)
    medians = {}
    for n in (100, 1000, 3000):
        path = sn.save({f"e{i}": {"i": i, "a": np.arange(10.0) + i} for i in range(n)}, tmp_path / f"{n}.h5")
        per_update = []
        for i in range(25):
            written.append(0)
            sn.save({"i": i, "a": np.arange(10.0)}, path, key=f"new{i}")
            per_update.append(written[-1])
        medians[n] = statistics.median(per_update[1:])  # (the first rewrites the index as format 5)
        assert per_update[0] > medians[n] or n == 100
        assert len(_index(path)["root"]["items"]) == n + 25
    assert medians[3000] <= 1.2 * medians[100], medians
    assert medians[1000] < 5000, medians


def test_the_log_is_folded_into_the_index_when_it_grows(tmp_path, monkeypatch):
    monkeypatch.setattr(h5update, "LOG_MIN_BYTES", 2000)
    path = sn.save({"x": 0}, tmp_path / "fold.h5")
    sizes = []
    for i in range(60):
        sn.save({"i": i, "text": "t" * 50}, path, key=f"e{i}")
        sizes.append(_log_size(path))
    folds = [i for i in range(1, 60) if sizes[i] is None]
    assert len(folds) >= 3, sizes  # the first update rewrites /index; folds follow as the log grows
    assert max(s or 0 for s in sizes) <= 2000
    with h5py.File(path, "r") as f:
        size = int(f["index"].attrs["index_size"])
    assert (sizes[-1] or 0) <= max(2000, size * h5update.LOG_SHARE)
    assert _version(path) == 5
    back = sn.load(path)
    assert back["x"] == 0 and back["e59"] == {"i": 59, "text": "t" * 50} and len(back) == 61
    assert _index(path) == _normal(h5update._WRITTEN[os.fspath(path)][1])
    # a folded index keeps every update note (the log of updates lives in the index)
    assert [u["key"] for u in sn.inspect(path).info["updates"]] == [f"e{i}" for i in range(60)]


def test_whole_saves_and_compaction_write_format_4_without_a_log(tmp_path):
    path = sn.save({"a": 1, "b": [1, 2]}, tmp_path / "w.h5")
    assert _version(path) == 4 and _log_size(path) is None
    sn.save(2, path, key="a")
    sn.save(3, path, key="c")
    assert _version(path) == 5 and _log_size(path)
    assert sn.inspect(path).format_version == 5
    sn.compact(path)
    assert _version(path) == 4 and _log_size(path) is None
    assert sn.load(path) == {"a": 2, "b": [1, 2], "c": 3}
    assert [u["key"] for u in sn.inspect(path).info["updates"]] == ["a", "c"]
    with _copying():  # an update by copying rewrites the whole index, as format 4
        sn.save(2, path, key="a")
        sn.save(4, path, key="d")
    assert _version(path) == 4 and _log_size(path) is None and sn.load(path, key="d") == 4


def test_an_older_reader_refuses_a_file_with_a_log_by_its_version(tmp_path, monkeypatch):
    path = sn.save({"a": 1}, tmp_path / "v3.h5")
    sn.save(2, path, key="a")
    sn.save(3, path, key="b")
    monkeypatch.setattr(indexcodec, "LOG_FORMAT_VERSION", 4)  # what a reader of format 4 checks
    with pytest.raises(sn.StorageError, match="format 5; this storage_nodes reads up to 4: upgrade it"):
        sn.load(path)


def _with_log(path: Path, log: bytes) -> None:
    with h5py.File(path, "r+") as f:
        del f["index_log"]
        f.create_dataset("index_log", data=np.frombuffer(log, dtype=np.uint8))


def test_a_damaged_log_is_refused_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(h5update, "LOG_MIN_BYTES", 1 << 20)  # a log longer than the index
    path = sn.save({"a": np.zeros(2), "l": [np.zeros(2)]}, tmp_path / "bad.h5")
    for i in range(30):
        sn.save(i, path, key=f"b{i}")
    with h5py.File(path, "r") as f:
        log = f["index_log"][()].tobytes()
        size = int(f["index"].attrs["index_size"])
    assert len(log) > size + 1
    good = path.read_bytes()
    for bad, why in [
        (log[:-3], "cut short"),
        (log + indexcodec.pack_change([[["root", "items", 99, 1], 1]]), "does not lead into"),
        (log + indexcodec.pack_change([[["root", "items", 1, 1, "items", -1], 1]]), "sets -1"),
        (log + indexcodec.pack_change([[[], 1]]), "not \\[path, value\\]"),
        (log + indexcodec.pack_change([[["format_version"], 4]]), "changes the format"),
        (log + msgpack.packb({"not": "a list"}), "not an array"),
    ]:
        path.write_bytes(good)
        h5update._forget(path)
        _with_log(path, bad)
        with pytest.raises(sn.CorruptFileError, match=why) as err:
            sn.load(path)
        assert str(path) in str(err.value)
        with pytest.raises(sn.CorruptFileError):
            sn.save(4, path, key="a")  # an update does not build on it either
    for replace in (lambda f: f.create_group("index_log"), lambda f: f.create_dataset("index_log", data=[1.5])):
        path.write_bytes(good)
        with h5py.File(path, "r+") as f:
            del f["index_log"]
            replace(f)
        with pytest.raises(sn.CorruptFileError, match="index log"):
            sn.load(path)
    path.write_bytes(good)
    monkeypatch.setattr(indexcodec, "MAX_INDEX_BYTES", len(log) - 1)  # a log declaring more is refused unread
    with pytest.raises(sn.CorruptFileError, match="index_log' declares"):
        sn.load(path)


def test_the_index_reader_of_docs_format_md_applies_the_log(tmp_path):
    from _docs import DOCS, section_namespace

    namespace = section_namespace(DOCS / "format.md", "### The index log")
    path = sn.save(START, tmp_path / "spec.h5")
    for key, value, metadata in CHANGES[:-2]:
        sn.save(value, path, key=key, metadata=metadata)
    assert _log_size(path)
    with h5py.File(path, "r") as f:  # h5py, msgpack and zlib alone
        index = namespace["read_index"](f)
    # ints beyond 64 bits (here in user metadata) are extension type 4: the page's ext_hook makes them ints
    assert index["metadata"]["big"] == 2**70
    assert index == _index(path)
    plain = sn.save({"x": [1, 2]}, tmp_path / "plain.h5")
    with h5py.File(plain, "r") as f:
        assert namespace["read_index"](f) == _index(plain)
