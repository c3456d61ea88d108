"""The bytes of a small archive file, built in pure Python: what HDF5 would write, without HDF5.

A new archive without big arrays is two 1-d uint8 datasets in the root group: the heap
segment (``heap_0``, when the encoding made one) and ``/index`` with its scalar uint64
attribute ``index_size`` (see :mod:`.layout`). Through HDF5 (core driver, libver bounds
v110/v110, meta block 256, no time tracking on datasets) such a file costs ~0.7 ms of
per-file setup on a small save -- creating the file, two datasets and an attribute -- most
of the cost of the save. Its layout is fixed up to a few sizes, addresses and checksums, so
:func:`build_image` assembles the same bytes directly:

* superblock version 3 (48 bytes, at 0), pointing at the root group's object header;
* the root group: a version-2 object header ("OHDR", with the four timestamps HDF5 keeps
  for groups: the current time in seconds -- HDF5 sets two when it creates the group and
  two when it links the datasets, the same unless a second passed between) holding a
  link-info, a group-info and one link message per dataset, in order of creation, padded by
  a NIL message to its 120 bytes;
* per dataset a version-2 object header of 256 bytes of messages: dataspace (v2, simple,
  maximum = current size), datatype (unsigned 8-bit integer), fill value (v3), layout (v3,
  contiguous: the address and size of the data) and, for the index, an attribute-info and
  the attribute ``index_size``, then a NIL message;
* the raw data placed where HDF5's allocator puts it: the first dataset's bytes right after
  its object header, in a 2048-byte "small data" block when they fit one (the next object
  header follows the block); the index's bytes in the rest of that block when they fit, else
  at the end of the file. The unused tail of a block at the end of the file is given back
  (the file ends with its last object).

Each object header and the superblock end with Jenkins' lookup3 checksum (HDF5's
``H5_checksum_lookup3``, :func:`lookup3`). The cases outside this model (other dataset names
than short ASCII words, an index bigger than :data:`MAX_BYTES`) return ``None``: the caller
writes them through HDF5. That the output equals HDF5's byte for byte is what
``tests/backends/h5/test_h5_image.py`` pins, against the installed HDF5, over many sizes; a future HDF5
that lays these files out differently fails those tests rather than writing different files.
"""

from __future__ import annotations

import re
import struct
import time

import numpy as np

__all__ = ["MAX_BYTES", "build_image", "lookup3", "parse_image"]

#: heap and index together: the bound of :data:`.layout.IN_MEMORY_BYTES` (larger files are
#: not built in memory at all)
MAX_BYTES = 1 << 22

_M = 0xFFFFFFFF
_UNDEF = b"\xff" * 8
_SMALL_DATA_BLOCK = 2048  # HDF5's default H5Pset_small_data_block_size
_SUPERBLOCK = 48
_ROOT = _SUPERBLOCK  # the root group's object header follows the superblock
_ROOT_CHUNK = 120  # HDF5's initial size of a new-style group's header messages
_DATASET_CHUNK = 256  # ... and of a dataset's
_DATASET_HEADER = 4 + 1 + 1 + 2 + _DATASET_CHUNK + 4  # "OHDR", version, flags, chunk size, checksum
_ROOT_END = _ROOT + 4 + 1 + 1 + 16 + 1 + _ROOT_CHUNK + 4
_NAME = re.compile(r"[A-Za-z0-9_]{1,40}")  # link names measured against HDF5 (the root chunk's room)


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle`` of ``data``, as HDF5's ``H5_checksum_lookup3``."""
    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & _M
    if n == 0:
        return c
    tail = n % 12 or 12  # the last (zero-padded) block goes through the final mix only
    words = struct.unpack(f"<{(n - tail) // 4 + 3}I", data + bytes(12 - tail if tail < 12 else 0))
    last = len(words) - 3
    i = 0
    # the mix with masking deferred where it is exact: a value needs its low 32 bits only
    # where it is rotated or shifted; a and b leave each round unmasked, c masked
    while i < last:
        a += words[i]
        b += words[i + 1]
        c = (c + words[i + 2]) & _M
        a = ((a - c) ^ (c << 4) ^ (c >> 28)) & _M
        c += b
        b = ((b - a) ^ (a << 6) ^ (a >> 26)) & _M
        a += c
        c = ((c - b) ^ (b << 8) ^ (b >> 24)) & _M
        b += a
        a = ((a - c) ^ (c << 16) ^ (c >> 16)) & _M
        c += b
        b = ((b - a) ^ (a << 19) ^ (a >> 13)) & _M
        a += c
        c = ((c - b) ^ (b << 4) ^ (b >> 28)) & _M
        b += a
        i += 3
    a = (a + words[last]) & _M
    b = (b + words[last + 1]) & _M
    c = (c + words[last + 2]) & _M
    c ^= b
    c = (c - ((b << 14) | (b >> 18))) & _M
    a ^= c
    a = (a - ((c << 11) | (c >> 21))) & _M
    b ^= a
    b = (b - ((a << 25) | (a >> 7))) & _M
    c ^= b
    c = (c - ((b << 16) | (b >> 16))) & _M
    a ^= c
    a = (a - ((c << 4) | (c >> 28))) & _M
    b ^= a
    b = (b - ((a << 14) | (a >> 18))) & _M
    c ^= b
    c = (c - ((b << 24) | (b >> 8))) & _M
    return c


def _checked(data: bytes) -> bytes:
    return data + struct.pack("<I", lookup3(data))


def _u64(x: int) -> bytes:
    return struct.pack("<Q", x)


_DATASET_START = b"OHDR\x02\x01" + struct.pack("<H", _DATASET_CHUNK) + b"\x01\x14\x00\x00\x02\x01\x01\x01"
_DATATYPE_FILL_LAYOUT = (
    b"\x03\x0c\x00\x01\x10\x00\x00\x00\x01\x00\x00\x00\x00\x00\x08\x00"  # datatype: uint8
    b"\x05\x02\x00\x01\x03\x0a"  # fill value v3: late allocation, no fill value defined
    b"\x08\x12\x00\x00\x03\x01"  # layout v3, contiguous: address, size
)
_ATTRIBUTE = (
    b"\x15\x12\x00\x04\x00\x00"
    + _UNDEF * 2  # attribute info: compact storage
    + b"\x0c\x2c\x00\x00\x03\x00\x0b\x00\x0c\x00\x04\x00\x00index_size\x00"  # attribute v3
    + b"\x10\x00\x00\x00\x08\x00\x00\x00\x00\x00\x40\x00"  # its type: uint64 little-endian
    + b"\x02\x00\x00\x00"  # its dataspace: scalar
)
_HEAP_NIL = _DATASET_CHUNK - 24 - 16 - 6 - 22 - 4
_INDEX_NIL = _HEAP_NIL - len(_ATTRIBUTE) - 8
_HEAP_END = b"\x00" + struct.pack("<H", _HEAP_NIL) + b"\x00" + bytes(_HEAP_NIL)
_INDEX_END = b"\x00" + struct.pack("<H", _INDEX_NIL) + b"\x00" + bytes(_INDEX_NIL)
_ROOT_START = b"OHDR\x02\x20"  # version 2, times stored, 1-byte chunk size
_ROOT_MESSAGES = (
    bytes([_ROOT_CHUNK])
    + b"\x02\x12\x00\x00\x00\x00"
    + _UNDEF * 2  # link info: compact links, no creation order
    + b"\x0a\x02\x00\x01\x00\x00"  # group info (constant): defaults
)
_SUPERBLOCK_START = b"\x89HDF\r\n\x1a\n\x03\x08\x08\x00" + bytes(8) + _UNDEF


def _dataset(n: int, address: int, end: bytes) -> bytes:
    size = _u64(n)
    return _checked(
        b"".join((_DATASET_START, size, size, _DATATYPE_FILL_LAYOUT, _u64(address) if n else _UNDEF, size, end))
    )


def _link(name: bytes, address: int) -> bytes:
    return b"\x06" + struct.pack("<H", 11 + len(name)) + b"\x00\x01\x00" + bytes([len(name)]) + name + _u64(address)


def build_image(
    heap_name: str, heap: np.ndarray | None, index: np.ndarray, index_size: int, *, now: int | None = None
) -> bytes | None:
    """The file HDF5 writes for the datasets ``heap_name`` (``heap``, if not ``None``) and
    ``index`` (with ``index_size`` as its attribute), created in that order, or ``None`` for
    a file outside the modelled cases (the caller then writes it through HDF5).

    ``now``: the time in seconds stored in the root group (default: the current time)."""
    if index.dtype != np.uint8 or index.ndim != 1 or not 0 <= index_size < 1 << 64:
        return None
    n = index.shape[0]
    h = 0
    if heap is not None:
        if heap.dtype != np.uint8 or heap.ndim != 1 or heap_name == "index" or not _NAME.fullmatch(heap_name):
            return None
        h = heap.shape[0]
    if h + n > MAX_BYTES:
        return None
    # where HDF5's allocator places things (measured; see the module docstring)
    if heap is None:
        index_header = _ROOT_END
        index_data = index_header + _DATASET_HEADER
        eof = index_data + n
    else:
        heap_header = _ROOT_END
        heap_data = heap_header + _DATASET_HEADER
        if h == 0:
            index_header = heap_data
        elif h <= _SMALL_DATA_BLOCK:
            index_header = heap_data + _SMALL_DATA_BLOCK  # after the small-data block
        else:
            index_header = heap_data + h
        spare = _SMALL_DATA_BLOCK - h if 0 < h <= _SMALL_DATA_BLOCK else 0
        if n <= spare:
            index_data = heap_data + h
            eof = index_header + _DATASET_HEADER
        else:
            index_data = index_header + _DATASET_HEADER
            eof = index_data + n
    stamp = struct.pack("<I", int(time.time()) if now is None else now) * 4
    links = [_link(b"index", index_header)]
    if heap is not None:
        links.insert(0, _link(heap_name.encode(), heap_header))
    body = b"".join(links)
    nil = _ROOT_CHUNK - len(_ROOT_MESSAGES) + 1 - len(body) - 4
    root = _checked(
        b"".join((_ROOT_START, stamp, _ROOT_MESSAGES, body, b"\x00", struct.pack("<H", nil), b"\x00", bytes(nil)))
    )
    out = bytearray(eof)
    out[0:_SUPERBLOCK] = _checked(_SUPERBLOCK_START + _u64(eof) + _u64(_ROOT))
    out[_ROOT:_ROOT_END] = root
    if heap is not None:
        out[heap_header:heap_data] = _dataset(h, heap_data, _HEAP_END)
        if h:
            out[heap_data : heap_data + h] = np.ascontiguousarray(heap).data
    out[index_header : index_header + _DATASET_HEADER] = _dataset(
        n, index_data, _ATTRIBUTE + _u64(index_size) + _INDEX_END
    )
    if n:
        out[index_data : index_data + n] = np.ascontiguousarray(index).data
    return bytes(out)


_LINKS = _ROOT + 4 + 1 + 1 + 16 + 1 + 22 + 6  # after the header, times, chunk size, link and group info
_INDEX_SIZE_AT = 76 + len(_ATTRIBUTE)  # in the index's object header


def parse_image(data: bytes) -> tuple[str | None, np.ndarray | None, np.ndarray, int] | None:
    """``(heap_name, heap, index, index_size)`` of a file that is exactly what
    :func:`build_image` writes for them (the payloads are taken from where it puts them, and
    the file is rebuilt from them and compared byte for byte: checksums included); ``None``
    for any other file (one HDF5 changed in place, another layout, damage), which the caller
    then reads through HDF5. The arrays are writable copies."""
    if len(data) < _ROOT_END or data[:12] != _SUPERBLOCK_START[:12] or len(data) > MAX_BYTES + 8192:
        return None
    try:
        stamp = struct.unpack_from("<I", data, _ROOT + 6)[0]
        links: list[tuple[bytes, int]] = []
        pos = _LINKS
        while len(links) < 2 and data[pos] == 0x06:
            length = data[pos + 6]
            name = data[pos + 7 : pos + 7 + length]
            links.append((name, struct.unpack_from("<Q", data, pos + 7 + length)[0]))
            pos += 15 + length
        if not links or links[-1][0] != b"index":
            return None
        heap_name = heap = None
        if len(links) == 2:
            heap_name = links[0][0].decode("ascii")
            heap = _payload(data, links[0][1])
        index_header = links[-1][1]
        index = _payload(data, index_header)
        index_size = struct.unpack_from("<Q", data, index_header + _INDEX_SIZE_AT)[0]
    except (IndexError, struct.error, UnicodeDecodeError):
        return None
    if (heap_name is not None and heap is None) or index is None:
        return None
    if build_image(heap_name or "", heap, index, index_size, now=stamp) != data:
        return None
    return heap_name, heap, index, index_size


def _payload(data: bytes, header: int) -> np.ndarray | None:
    """The bytes of the dataset whose object header starts at ``header`` (where the header
    says they are; the rebuilt comparison checks the rest)."""
    n = struct.unpack_from("<Q", data, header + 16)[0]
    if n == 0:
        return np.empty(0, dtype=np.uint8)
    start = struct.unpack_from("<Q", data, header + 60)[0]
    if start + n > len(data):
        return None
    return np.frombuffer(data, dtype=np.uint8, count=n, offset=start).copy()
