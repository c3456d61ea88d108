"""backends/h5/direct.py: big contiguous datasets read with pread, everything else by HDF5."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from h5py import h5t

import storage_nodes as sn
from storage_nodes.backends.h5 import direct

N = direct.MIN_BYTES  # elements: at least MIN_BYTES for every item size


def _read(path: Path, name: str) -> np.ndarray | None:
    with h5py.File(path, "r") as f:
        return direct.read_contiguous(f[name].id, direct.vfd_of(f.id))


@pytest.mark.parametrize("dtype", ["u1", "i1", "<u2", "<i4", ">i4", "<i8", ">u8", "<f2", "<f4", "<f8", ">f8"])
def test_standard_integer_and_float_types_are_read_exactly(tmp_path: Path, dtype: str):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, N * np.dtype(dtype).itemsize, dtype=np.uint8)
    value = raw.view(np.dtype(dtype)).reshape(N // 4, 4)
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("d", data=value)
    got = _read(path, "d")
    assert got is not None, "the direct path was not taken"
    assert got.dtype == value.dtype and got.shape == value.shape
    assert got.tobytes() == value.tobytes()  # bit for bit, NaN payloads included
    assert got.flags.writeable and got.flags.owndata


def _custom_int(f: h5py.File) -> None:
    tid = h5t.STD_I16LE.copy()
    tid.set_precision(12)  # a 16-bit integer using 12 bits: not numpy's layout
    space = h5py.h5s.create_simple((N,))
    h5py.h5d.create(f.id, b"d", tid, space).write(h5py.h5s.ALL, h5py.h5s.ALL, np.ones(N, dtype="<i2"))


@pytest.mark.parametrize(
    "make",
    [
        lambda f: f.create_dataset("d", data=np.ones(N), chunks=(N // 4,)),
        lambda f: f.create_dataset("d", data=np.ones(N), compression="gzip"),
        lambda f: f.create_dataset("d", data=np.ones(N, dtype=bool)),
        lambda f: f.create_dataset("d", data=np.ones(N, dtype=complex)),
        lambda f: f.create_dataset("d", data=np.ones(N, dtype=[("a", "<i4"), ("b", "<f4")])),
        lambda f: f.create_dataset("d", data=np.ones(N, dtype="u1"), dtype=h5py.enum_dtype({"a": 0, "b": 1})),
        lambda f: f.create_dataset("d", shape=(N,), dtype="<f8"),  # never written: no storage yet
        lambda f: f.create_dataset("d", data=np.ones(direct.MIN_BYTES // 16)),  # small
        _custom_int,
        lambda f: f.create_dataset("d", shape=(N,), dtype="<f8", external=[(f.filename + ".raw", 0, 8 * N)]),
    ],
    ids=["chunked", "gzip", "bool", "complex", "compound", "enum", "unwritten", "small", "12-bit-int", "external"],
)
def test_anything_else_is_left_to_hdf5(tmp_path: Path, make):
    path = tmp_path / "d.h5"
    (tmp_path / "d.h5.raw").write_bytes(b"\x00" * 8 * N)
    with h5py.File(path, "w") as f:
        make(f)
    assert _read(path, "d") is None


def test_a_file_held_in_memory_is_left_to_hdf5(tmp_path: Path):
    with h5py.File(tmp_path / "m.h5", "w", driver="core", backing_store=False) as f:
        f["d"] = np.ones(N)
        assert direct.vfd_of(f.id) is None
        assert direct.read_contiguous(f["d"].id, direct.vfd_of(f.id)) is None


def test_a_file_cut_inside_the_data_is_an_error_not_zeros(tmp_path: Path, monkeypatch):
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f["d"] = np.ones(N)
    with h5py.File(path, "r") as f:
        ds = f["d"]
        os.truncate(path, ds.id.get_offset() + 1000)
        monkeypatch.setattr(direct.np, "empty", lambda *a, **k: pytest.fail("allocated before checking the size"))
        with pytest.raises(ValueError, match="ends inside a dataset"):
            direct.read_contiguous(ds.id, direct.vfd_of(f.id))


def test_loads_take_the_direct_path_and_a_cut_archive_is_corrupt(tmp_path: Path, monkeypatch):
    path = tmp_path / "a.h5"
    value = {"x": np.arange(N, dtype=np.int64), "y": np.linspace(0, 1, N)}
    sn.save(value, path)
    calls = []
    real = os.preadv
    monkeypatch.setattr(os, "preadv", lambda *a: calls.append(1) or real(*a))
    np.testing.assert_array_equal(sn.load(path, key="y"), value["y"])
    assert calls  # the column came through pread, not HDF5
    back = sn.load(path)
    np.testing.assert_array_equal(back["x"], value["x"])
    cut = tmp_path / "cut.h5"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size - N])
    with pytest.raises(sn.CorruptFileError, match=r"cut\.h5"):
        sn.load(cut)


def test_short_reads_are_continued(tmp_path: Path, monkeypatch):
    path = tmp_path / "d.h5"
    value = np.random.default_rng(1).random(N)
    with h5py.File(path, "w") as f:
        f["d"] = value
    real, calls = os.preadv, []

    def short(fd, buffers, offset):  # as Linux does above ~2 GiB per call
        calls.append(offset)
        return real(fd, [memoryview(buffers[0])[:100_000]], offset)

    monkeypatch.setattr(os, "preadv", short)
    got = _read(path, "d")
    assert got is not None and got.tobytes() == value.tobytes()
    assert len(calls) == -(-value.nbytes // 100_000)
