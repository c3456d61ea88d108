"""Small archives read without HDF5 (``image.parse_image`` in ``reader.open_reader``): only a
file that is exactly what ``image.build_image`` writes is read so, and it reads the same as
through HDF5; anything else goes through HDF5 as before."""

from __future__ import annotations

import numpy as np
import pytest

import storage_nodes as sn
from storage_nodes.backends.h5 import image, reader

OBJECTS = [
    {"energy": -3.2, "forces": np.arange(12.0).reshape(4, 3), "tags": ["a", "b"], "n": None},
    [{"id": i, "name": f"s{i}"} for i in range(300)],
    "x" * 5000,
    3.5,
    {},
]


def _hdf5_read_forbidden(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    opened: list[bytes] = []

    def refuse(name, *args, **kwargs):
        opened.append(name)
        raise AssertionError(f"HDF5 opened {name!r}")

    monkeypatch.setattr(reader.h5f, "open", refuse)
    return opened


@pytest.mark.parametrize("obj", OBJECTS, ids=["dict", "records", "str", "float", "empty"])
def test_a_small_file_reads_without_hdf5_and_as_through_hdf5(tmp_path, monkeypatch, obj):
    path = sn.save(obj, tmp_path / "small.h5")
    monkeypatch.setattr(reader, "READ_IMAGES", False)
    through_hdf5 = sn.load(path)
    listing = sn.inspect(path).to_dict()
    monkeypatch.setattr(reader, "READ_IMAGES", True)
    _hdf5_read_forbidden(monkeypatch)
    loaded = sn.load(path)
    assert repr(loaded) == repr(through_hdf5)
    assert sn.inspect(path).to_dict() == listing
    if isinstance(obj, dict) and "forces" in obj:
        assert np.array_equal(sn.load(path, key="forces"), obj["forces"])
        loaded["forces"][0, 0] = 99.0  # arrays are the caller's own, writable


def test_a_file_changed_in_place_by_hdf5_is_read_through_hdf5(tmp_path, monkeypatch):
    path = sn.save({"a": 1, "b": {"c": 2}}, tmp_path / "u.h5")
    assert image.parse_image(path.read_bytes()) is not None
    sn.save(5, path, key="b/c")  # an in-place update: HDF5 adds to the file
    assert image.parse_image(path.read_bytes()) is None
    opened: list[bytes] = []
    real = reader.h5f.open
    monkeypatch.setattr(reader.h5f, "open", lambda name, *a, **k: opened.append(name) or real(name, *a, **k))
    assert sn.load(path) == {"a": 1, "b": {"c": 5}} and opened


def test_every_changed_byte_outside_the_payloads_makes_the_file_unfit_for_the_fast_path(tmp_path):
    path = sn.save({"a": [1, 2.5], "s": "x" * 300}, tmp_path / "f.h5")
    data = path.read_bytes()
    _, heap, index, _ = image.parse_image(data)
    payloads = set()
    for part in (heap, index):
        start = data.find(part.tobytes())
        payloads |= set(range(start, start + part.nbytes))
    checked = 0
    for i in range(len(data)):
        if i in payloads:
            continue
        damaged = bytearray(data)
        damaged[i] ^= 0x41
        assert image.parse_image(bytes(damaged)) is None, i
        checked += 1
    assert checked > 400
    assert image.parse_image(data + b"\0") is None and image.parse_image(data[:-1]) is None


def test_a_damaged_payload_is_a_corrupt_file_either_way(tmp_path, monkeypatch):
    path = sn.save({"a": list(range(50))}, tmp_path / "d.h5")
    data = bytearray(path.read_bytes())
    _, _, index, _ = image.parse_image(bytes(data))
    start = bytes(data).find(index.tobytes())
    data[start + 5] ^= 0xFF  # inside the compressed index
    path.write_bytes(bytes(data))
    for fast in (True, False):
        monkeypatch.setattr(reader, "READ_IMAGES", fast)
        with pytest.raises(sn.CorruptFileError, match=r"d\.h5"):
            sn.load(path)


def test_a_reader_made_from_the_bytes_opens_hdf5_only_for_what_they_lack(tmp_path):
    path = sn.save({"a": [1, 2.5]}, tmp_path / "r.h5")
    with reader.open_reader(path) as r:
        assert r._fid is None and "heap_0" in r._heaps  # read without HDF5
        assert sorted(r.f) == ["heap_0", "index"] and r._fid is not None  # HDF5 opened when asked
    replaced = tmp_path / "other.h5"
    sn.save({"b": 2}, replaced)
    with reader.open_reader(path) as r:
        replaced.replace(path)  # a whole save over it while it is read
        with pytest.raises(sn.StorageError, match="replaced while being read"):
            _ = r.fid


def test_an_archive_with_datasets_is_not_read_whole_before_hdf5_opens_it(tmp_path, monkeypatch):
    path = sn.save({"big": np.arange(100_000.0), "small": [1, 2]}, tmp_path / "d.h5")  # an array dataset
    assert 256 * 1024 < path.stat().st_size <= image.MAX_BYTES
    assert not image.may_be_image(path.read_bytes()[: image.HEAD_BYTES])
    asked: list[int] = []
    real = reader.os.read
    monkeypatch.setattr(reader.os, "read", lambda fd, n: asked.append(n) or real(fd, n))
    np.testing.assert_array_equal(sn.load(path, key="big"), np.arange(100_000.0))
    assert asked and max(asked) <= image.HEAD_BYTES  # only the head, then HDF5
    small = sn.save(OBJECTS[0], tmp_path / "s.h5")
    assert image.may_be_image(small.read_bytes()[: image.HEAD_BYTES])
    three = sn.save({"big": np.arange(100_000.0), "text": "x" * 5000}, tmp_path / "t.h5")  # heap, array, index
    assert not image.may_be_image(three.read_bytes()[: image.HEAD_BYTES])
    for obj in OBJECTS:  # every image is still taken for one
        assert image.may_be_image(sn.save(obj, tmp_path / "o.h5").read_bytes()[: image.HEAD_BYTES])
