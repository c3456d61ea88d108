"""The one lookup3 (``backends/h5/lookup3.py``): Jenkins' reference values and the checksums
HDF5 itself writes (``H5_checksum_lookup3``), read back from files h5py made."""

from __future__ import annotations

import ast
import struct
from pathlib import Path

import h5py
import numpy as np

import storage_nodes
from storage_nodes.backends.h5 import journal
from storage_nodes.backends.h5.lookup3 import lookup3


def test_lookup3_matches_jenkins_reference_values():
    # lookup3.c, driver5(): hashlittle of the empty string and of a 30-byte sentence
    assert lookup3(b"") == 0xDEADBEEF
    assert lookup3(b"", 0xDEADBEEF) == 0xBD5B7DDE
    assert lookup3(b"Four score and seven years ago") == 0x17770551
    assert lookup3(b"Four score and seven years ago", 1) == 0xCD628161


def _object_headers(data: bytes) -> list[tuple[bytes, int]]:
    """(checked bytes, stored checksum) of every version-2 object header ("OHDR") in ``data``."""
    out = []
    at = data.find(b"OHDR")
    while at >= 0:
        flags = data[at + 5]
        pos = at + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        width = 1 << (flags & 3)
        size = int.from_bytes(data[pos : pos + width], "little")
        end = pos + width + size
        out.append((data[at:end], struct.unpack_from("<I", data, end)[0]))
        at = data.find(b"OHDR", end)
    return out


def test_lookup3_gives_the_checksums_hdf5_writes(tmp_path: Path):
    path = tmp_path / "made_by_h5py.h5"
    with h5py.File(path, "w", libver="latest") as f:
        for i in range(12):  # object headers of many lengths: every tail length of the last block
            ds = f.create_dataset(f"d{'x' * i}", data=np.zeros(i + 1, dtype=np.uint8))
            for j in range(i % 4):
                ds.attrs[f"a{j}"] = "v" * (i + j)
        f.create_group("g").attrs["note"] = np.arange(i)
    data = path.read_bytes()
    assert data[8] == 3  # superblock version 3: its first 44 bytes are checksummed
    assert lookup3(data[:44]) == struct.unpack_from("<I", data, 44)[0]
    headers = _object_headers(data)
    assert len(headers) >= 13
    assert len({len(checked) % 12 for checked, _ in headers}) >= 4
    for checked, stored in headers:
        assert lookup3(checked) == stored
    assert lookup3(data[:43]) != struct.unpack_from("<I", data, 44)[0]  # the check can fail


def test_the_journal_checks_superblocks_with_it(tmp_path: Path):
    path = tmp_path / "a.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f["x"] = np.arange(3)
    with open(path, "rb") as f:
        assert journal.stored_eoa(f.fileno()) == path.stat().st_size
    damaged = bytearray(path.read_bytes())
    damaged[30] ^= 1
    path.write_bytes(bytes(damaged))
    with open(path, "rb") as f:
        assert journal.stored_eoa(f.fileno()) is None


def test_lookup3_is_written_once_in_the_package():
    root = Path(storage_nodes.__file__).parent
    found = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.FunctionDef) and "lookup3" in node.name
    ]
    assert found == ["backends/h5/lookup3.py"]
