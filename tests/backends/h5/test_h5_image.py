"""storage_nodes' own writer of small archive files (backends/h5/image.py): the bytes it
builds are the bytes HDF5 writes through the core-driver path of ``writer.write_file``."""

from __future__ import annotations

import struct
import time

import h5py
import numpy as np
import pytest
from h5py import h5f
from hypothesis import given, settings
from hypothesis import strategies as st

import storage_nodes as sn
from storage_nodes.backends.h5 import datasets, image, indexcodec, writer
from storage_nodes.backends.h5.lookup3 import lookup3

#: heap and index sizes around HDF5's boundaries: empty, one byte, the 2048-byte small-data
#: block (and the room it leaves for the index), the 256-byte metadata block, large
SIZES = [0, 1, 2, 11, 12, 13, 255, 256, 257, 1000, 2000, 2047, 2048, 2049, 3800, 5000, 65536, 1 << 20]
ROOT_TIME = 48 + 6  # offset of the root group's first timestamp (after superblock, "OHDR", version, flags)


def hdf5_image(heap_name: str, heap: np.ndarray | None, index: np.ndarray, size: int) -> bytes:
    """What HDF5 writes for these datasets (the in-memory path of ``write_file``)."""
    fid = h5f.create(b"test-image-%d" % next(writer._memory_files), h5f.ACC_TRUNC, fapl=datasets.plist("memory"))
    try:
        if heap is not None:
            datasets.create_bytes(fid, heap_name, heap)
        datasets.create_bytes(fid, datasets.INDEX, index, size=size)
        h5f.flush(fid)
        return bytes(fid.get_file_image())
    finally:
        fid.close()


def data(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8)


def assert_same(heap_name: str, heap: np.ndarray | None, index: np.ndarray, size: int) -> None:
    for _ in range(3):
        before = int(time.time())
        expected = hdf5_image(heap_name, heap, index, size)
        after = int(time.time())
        # HDF5 stamps the root group with the current time, when it creates the group and
        # again when it adds the links: again if that fell across a second
        stamps = set(struct.unpack_from("<4I", expected, ROOT_TIME))
        if len(stamps) == 1:
            break
    assert len(stamps) == 1
    stamp = stamps.pop()
    assert before <= stamp <= after
    built = image.build_image(heap_name, heap, index, size, now=stamp)
    assert built is not None
    if built != expected:
        diff = [i for i in range(min(len(built), len(expected))) if built[i] != expected[i]][:10]
        raise AssertionError(f"{len(built)} bytes built, {len(expected)} by HDF5; first differences at {diff}")


@pytest.mark.parametrize("heap_size", [None, *SIZES])
def test_the_image_is_hdf5s_for_sizes_around_its_boundaries(heap_size):
    heap = None if heap_size is None else data(heap_size, 1)
    for n in SIZES:
        assert_same("heap_0", heap, data(n, 2), n * 3 + 7)


def test_the_image_is_hdf5s_up_to_the_in_memory_bound():
    top = image.MAX_BYTES
    assert top == writer.IN_MEMORY_BYTES
    for h, n in [(None, top), (top - 100, 100), (100, top - 100), (top // 2, top // 2), (0, top)]:
        assert_same("heap_0", None if h is None else data(h, 5), data(n, 6), n)


@pytest.mark.parametrize("name", ["heap_0", "heap_17", "a", "zz", "Heap_Z9", "h" * 40])
def test_the_image_is_hdf5s_for_other_heap_names(name):
    for h, n in [(0, 0), (10, 5), (3000, 50), (100, 3000)]:
        assert_same(name, data(h, 3), data(n, 4), 123)


@settings(max_examples=60, deadline=None)
@given(
    heap=st.one_of(st.none(), st.binary(max_size=6000)),
    index=st.binary(max_size=6000),
    size=st.integers(min_value=0, max_value=(1 << 64) - 1),
)
def test_the_image_is_hdf5s_for_random_contents(heap, index, size):
    as_array = None if heap is None else np.frombuffer(heap, dtype=np.uint8)
    assert_same("heap_0", as_array, np.frombuffer(index, dtype=np.uint8), size)


def test_the_image_of_strided_arrays_holds_their_elements():
    heap, index = data(3000, 7)[::3], data(101, 8)[::-1]
    assert not heap.flags.c_contiguous
    assert_same("heap_0", heap, index, 9)


def test_the_image_stamps_the_root_group_with_the_current_time():
    before = int(time.time())
    built = image.build_image("heap_0", data(10, 1), data(10, 2), 5)
    assert built is not None
    stamps = struct.unpack_from("<4I", built, ROOT_TIME)
    assert len(set(stamps)) == 1 and before <= stamps[0] <= int(time.time())


def test_lookup3_matches_the_reference_vectors():
    # from Bob Jenkins' lookup3.c driver5()
    assert lookup3(b"") == 0xDEADBEEF
    assert lookup3(b"Four score and seven years ago") == 0x17770551
    assert lookup3(b"Four score and seven years ago", 1) == 0xCD628161


@pytest.mark.parametrize(
    "heap_name, heap, index",
    [
        ("index", data(5, 1), data(5, 2)),  # the index's own name
        ("heap/0", data(5, 1), data(5, 2)),  # a path
        ("héap", data(5, 1), data(5, 2)),  # not ASCII
        ("h" * 41, data(5, 1), data(5, 2)),  # longer than measured
        ("", data(5, 1), data(5, 2)),
        ("heap_0", data(5, 1).astype(np.int16), data(5, 2)),  # not bytes
        ("heap_0", data(6, 1).reshape(2, 3), data(5, 2)),
        ("heap_0", None, data(5, 2).astype(np.float32)),
        ("heap_0", data(image.MAX_BYTES, 1), data(1, 2)),  # beyond the in-memory bound
    ],
)
def test_cases_outside_the_model_are_left_to_hdf5(heap_name, heap, index):
    assert image.build_image(heap_name, heap, index, 5) is None


def test_write_file_falls_back_to_hdf5_for_what_the_image_does_not_model(tmp_path, monkeypatch):
    calls = []
    real = image.build_image

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(out is None)
        return out

    monkeypatch.setattr(writer, "build_image", spy)
    index = {"format_version": indexcodec.FORMAT_VERSION}
    writer.write_file(tmp_path / "a.h5", index, "heap_0", data(100, 1), [], None)
    writer.write_file(tmp_path / "b.h5", index, "h" * 60, data(100, 1), [], None)  # a long name
    assert calls == [False, True]
    with h5py.File(tmp_path / "b.h5", "r") as f:  # written by HDF5 instead
        assert f["h" * 60][()].tobytes() == data(100, 1).tobytes()
    monkeypatch.setattr(writer, "BUILD_IMAGES", False)
    writer.write_file(tmp_path / "c.h5", index, "heap_0", data(100, 1), [], None)
    assert calls == [False, True]  # forced onto HDF5: not asked
    a, c = (tmp_path / "a.h5").read_bytes(), (tmp_path / "c.h5").read_bytes()
    assert len(a) == len(c) and a[:ROOT_TIME] == c[:ROOT_TIME]  # the same superblock


OBJECTS = [
    {"a": {"b": 1, "c": "text"}, "x": [1.5, None, b"bytes"]},
    {"a": {"b": np.arange(10)}, "s": "é" * 100},
    {"a": {"b": np.zeros(3000, dtype=np.uint8)}},  # a heap beyond the small-data block
    {"a": {"b": 2}},  # no heap (scalars only live in the index)
    list(range(1000)),
]


def _equal(x, y):
    if isinstance(x, np.ndarray):
        return isinstance(y, np.ndarray) and x.dtype == y.dtype and np.array_equal(x, y)
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(_equal(x[k], y[k]) for k in x)
    if isinstance(x, list):
        return isinstance(y, list) and len(x) == len(y) and all(_equal(a, b) for a, b in zip(x, y))
    return x == y


@pytest.mark.parametrize("obj", OBJECTS)
def test_saved_files_load_open_in_h5py_and_take_updates(tmp_path, obj, monkeypatch):
    built = []
    real = image.build_image
    monkeypatch.setattr(writer, "build_image", lambda *a, **k: built.append(1) or real(*a, **k))
    path = tmp_path / "x.h5"
    sn.save(obj, path)
    assert built  # went through the image writer
    assert _equal(sn.load(path), obj)
    with h5py.File(path, "r") as f:
        assert "index" in f and f["index"].attrs["index_size"] > 0
        for name in f:
            f[name][()]
    if isinstance(obj, dict):
        sn.save({"new": np.arange(5), "t": "u"}, path, key="a/b")
        back = sn.load(path)
        assert _equal(back["a"]["b"], {"new": np.arange(5), "t": "u"})
        assert _equal({k: v for k, v in back.items() if k != "a"}, {k: v for k, v in obj.items() if k != "a"})


def test_write_file_writes_the_file_hdf5_would_have_written(tmp_path, monkeypatch):
    index = {"format_version": indexcodec.FORMAT_VERSION, "root": {"a": [1, 2, 3]}}
    for heap in [None, data(0, 1), data(100, 1), data(5000, 1)]:
        for _ in range(3):  # the root group's timestamps: again if a second passed between the two
            monkeypatch.setattr(writer, "BUILD_IMAGES", True)
            writer.write_file(tmp_path / "ours.h5", index, "heap_0", heap, [], None)
            monkeypatch.setattr(writer, "BUILD_IMAGES", False)
            writer.write_file(tmp_path / "hdf5.h5", index, "heap_0", heap, [], None)
            ours, theirs = (tmp_path / "ours.h5").read_bytes(), (tmp_path / "hdf5.h5").read_bytes()
            if len({*struct.unpack_from("<4I", ours, ROOT_TIME), *struct.unpack_from("<4I", theirs, ROOT_TIME)}) == 1:
                break
        assert ours == theirs
