"""The bytes of a small archive file, built in pure Python: what HDF5 would write, without HDF5.

A new archive without big arrays is two 1-d uint8 datasets in the root group: the heap
segment (``heap_0``, when the encoding made one) and ``/index`` with its scalar uint64
attribute ``index_size`` (see :mod:`.datasets`). Through HDF5 (core driver, libver bounds
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
``H5_checksum_lookup3``, :func:`.lookup3.lookup3`). The cases outside this model (other dataset names
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

from .lookup3 import lookup3

__all__ = ["HEAD_BYTES", "MAX_BYTES", "build_image", "may_be_image", "parse_image"]

#: heap and index together: the bound of :data:`.writer.IN_MEMORY_BYTES` (larger files are
#: not built in memory at all)
MAX_BYTES = 1 << 22

_UNDEF = b"\xff" * 8  # HDF5's undefined address
_SMALL_DATA_BLOCK = 2048  # HDF5's default H5Pset_small_data_block_size
_SUPERBLOCK = 48  # superblock version 3 with 8-byte addresses and lengths, checksum included
_ROOT = _SUPERBLOCK  # the root group's object header follows the superblock
_ROOT_CHUNK = 120  # HDF5's initial size of a new-style group's header messages
_DATASET_CHUNK = 256  # ... and of a dataset's
_SIGNATURE = 4 + 1 + 1  # an object header's "OHDR", version, flags
_TIMES = 4 * 4  # the four timestamps of the root group's header (access, modification, change, birth)
_CHECKSUM = 4  # the lookup3 that ends the superblock and each object header
_MESSAGE = 4  # a header message's type (1 byte), body size (2) and flags (1)
_DATASET_HEADER = _SIGNATURE + 2 + _DATASET_CHUNK + _CHECKSUM  # (2: the chunk size's bytes)
_ROOT_END = _ROOT + _SIGNATURE + _TIMES + 1 + _ROOT_CHUNK + _CHECKSUM  # (1: the chunk size's byte)
_NAME = re.compile(r"[A-Za-z0-9_]{1,40}")  # link names measured against HDF5 (the root chunk's room)


def _checked(data: bytes) -> bytes:
    return data + struct.pack("<I", lookup3(data))


def _u64(x: int) -> bytes:
    return struct.pack("<Q", x)


def _message(kind: int, size: int, flags: int = 0) -> bytes:
    """The 4-byte prefix of a header message of type ``kind`` with a body of ``size`` bytes."""
    return struct.pack("<BHB", kind, size, flags)


# header message types (HDF5 file format specification, section IV.A.2)
_NIL, _DATASPACE, _LINK_INFO, _DATATYPE, _FILL_VALUE, _LINK, _LAYOUT, _GROUP_INFO, _ATTR, _ATTR_INFO = (
    0x00, 0x01, 0x02, 0x03, 0x05, 0x06, 0x08, 0x0A, 0x0C, 0x15,
)  # fmt: skip
_CONSTANT = 0x01  # message flag: the message never changes
_DATASPACE_BODY = 4 + 8 + 8  # version, rank, flags, type; current size; maximum size (rank 1)

_DATASET_START = (
    b"OHDR\x02\x01"  # object header version 2; flags: the chunk size takes 2 bytes
    + struct.pack("<H", _DATASET_CHUNK)
    + _message(_DATASPACE, _DATASPACE_BODY)
    + b"\x02\x01\x01\x01"  # dataspace v2, rank 1, maximum size present, simple; the sizes follow
)
#: where a dataset's header holds its size (the dataspace's current size; the maximum follows)
_SIZE_AT = len(_DATASET_START)
_DATATYPE_FILL_LAYOUT = (
    _message(_DATATYPE, 12, _CONSTANT)
    + b"\x10\x00\x00\x00\x01\x00\x00\x00\x00\x00\x08\x00"  # datatype: uint8
    + _message(_FILL_VALUE, 2, _CONSTANT)
    + b"\x03\x0a"  # fill value v3: late allocation, no fill value defined
    + _message(_LAYOUT, 18)
    + b"\x03\x01"  # layout v3, contiguous: address, size
)
#: where a dataset's header holds the address of its data (the layout's; its size follows)
_ADDRESS_AT = _SIZE_AT + 8 + 8 + len(_DATATYPE_FILL_LAYOUT)
#: where a dataset's header messages end (then the index's attribute, then a NIL message)
_LAYOUT_END = _ADDRESS_AT + 8 + 8
_ATTRIBUTE = (
    _message(_ATTR_INFO, 18, 0x04)
    + b"\x00\x00"
    + _UNDEF * 2  # attribute info: compact storage
    + _message(_ATTR, 44)
    + b"\x03\x00\x0b\x00\x0c\x00\x04\x00\x00index_size\x00"  # attribute v3
    + b"\x10\x00\x00\x00\x08\x00\x00\x00\x00\x00\x40\x00"  # its type: uint64 little-endian
    + b"\x02\x00\x00\x00"  # its dataspace: scalar; its value (8 bytes) follows
)
#: where the index's header holds the value of its attribute ``index_size``
_INDEX_SIZE_AT = _LAYOUT_END + len(_ATTRIBUTE)
#: the body of the NIL message that pads a heap's header to its chunk (an index's: less the attribute)
_HEAP_NIL = _DATASET_CHUNK - (_LAYOUT_END - _SIGNATURE - 2) - _MESSAGE
_INDEX_NIL = _HEAP_NIL - len(_ATTRIBUTE) - 8
_HEAP_END = _message(_NIL, _HEAP_NIL) + bytes(_HEAP_NIL)
_INDEX_END = _message(_NIL, _INDEX_NIL) + bytes(_INDEX_NIL)
_ROOT_START = b"OHDR\x02\x20"  # version 2, times stored, 1-byte chunk size
_ROOT_MESSAGES = (
    bytes([_ROOT_CHUNK])
    + _message(_LINK_INFO, 18)
    + b"\x00\x00"
    + _UNDEF * 2  # link info: compact links, no creation order
    + _message(_GROUP_INFO, 2, _CONSTANT)
    + b"\x00\x00"  # group info: defaults
)
#: where the root group's header holds its first timestamp
_ROOT_TIMES = _ROOT + _SIGNATURE
#: where the root group's link messages start (after its link info and group info)
_LINKS = _ROOT + _SIGNATURE + _TIMES + len(_ROOT_MESSAGES)
#: a link message: prefix, link version 1, flags (a 1-byte name length), that length; name, address
_LINK_NAME_AT = _MESSAGE + 3
_LINK_BYTES = _LINK_NAME_AT + 8  # without the name
_SUPERBLOCK_START = (
    b"\x89HDF\r\n\x1a\n"  # the signature
    + b"\x03\x08\x08\x00"  # version 3, 8-byte addresses and lengths, no flags
    + bytes(8)  # base address
    + _UNDEF  # no superblock extension; the end of file and the root's address follow
)


def _dataset(n: int, address: int, end: bytes) -> bytes:
    size = _u64(n)
    return _checked(
        b"".join((_DATASET_START, size, size, _DATATYPE_FILL_LAYOUT, _u64(address) if n else _UNDEF, size, end))
    )


def _link(name: bytes, address: int) -> bytes:
    """A hard link to the object header at ``address``: message prefix, version 1, flags 0."""
    return _message(_LINK, _LINK_BYTES - _MESSAGE + len(name)) + b"\x01\x00" + bytes([len(name)]) + name + _u64(address)


def build_image(
    heap_name: str, heap: np.ndarray | None, index: np.ndarray, index_size: int, *, now: int | None = None
) -> bytes | None:
    """The file HDF5 writes for the datasets ``heap_name`` (``heap``, if not ``None``) and
    ``index`` (with ``index_size`` as its attribute), created in that order, or ``None`` for
    a file outside the modelled cases (the caller then writes it through HDF5).

    ``now``: the time in seconds stored in the root group (default: the current time)."""
    built = _assemble(heap_name, heap, index, index_size, now=now)
    return None if built is None else bytes(built[0])


def _assemble(
    heap_name: str,
    heap: np.ndarray | None,
    index: np.ndarray,
    index_size: int,
    *,
    now: int | None = None,
    heap_bytes: bool = True,
) -> tuple[bytearray, int, int] | None:
    """:func:`build_image` as a bytearray, with where the heap's bytes lie (start, length);
    ``heap_bytes=False`` leaves them out (the bytearray is that much shorter: a caller
    comparing a file with it has them from that file)."""
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
    nil = _ROOT_CHUNK - (len(_ROOT_MESSAGES) - 1) - len(body) - _MESSAGE  # (1: the chunk size's byte)
    root = _checked(b"".join((_ROOT_START, stamp, _ROOT_MESSAGES, body, _message(_NIL, nil), bytes(nil))))
    # without the heap's bytes, everything after them moves up by their length (never allocated)
    heap_at = heap_header + _DATASET_HEADER if heap is not None else 0
    cut = h if not heap_bytes else 0
    out = bytearray(eof - cut)
    out[0:_SUPERBLOCK] = _checked(_SUPERBLOCK_START + _u64(eof) + _u64(_ROOT))
    out[_ROOT:_ROOT_END] = root
    if heap is not None:
        out[heap_header:heap_at] = _dataset(h, heap_at, _HEAP_END)
        if h and heap_bytes:
            out[heap_at : heap_at + h] = np.ascontiguousarray(heap).data
    header_at = index_header - cut  # (the index comes after the heap's bytes)
    out[header_at : header_at + _DATASET_HEADER] = _dataset(n, index_data, _ATTRIBUTE + _u64(index_size) + _INDEX_END)
    if n:
        out[index_data - cut : index_data - cut + n] = np.ascontiguousarray(index).data
    return out, heap_at, h


def parse_image(data: bytes) -> tuple[str | None, np.ndarray | None, np.ndarray, int] | None:
    """``(heap_name, heap, index, index_size)`` of a file that is exactly what
    :func:`build_image` writes for them (the payloads are taken from where it puts them, and
    the file is rebuilt from them and compared byte for byte: checksums included); ``None``
    for any other file (one HDF5 changed in place, another layout, damage), which the caller
    then reads through HDF5. The arrays are writable copies."""
    if len(data) > MAX_BYTES + 8192:
        return None
    links = _root_links(data)
    if links is None:
        return None
    try:
        stamp = struct.unpack_from("<I", data, _ROOT_TIMES)[0]
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
    built = _assemble(heap_name or "", heap, index, index_size, now=stamp, heap_bytes=False)
    if built is None or len(built[0]) + built[2] != len(data):
        return None
    out, at, h = built
    # every byte but the heap's (taken from ``data`` itself: equal by construction; not rebuilt)
    if (out != data) if not h else (out[:at] != data[:at] or out[at:] != data[at + h :]):
        return None
    return heap_name, heap, index, index_size


#: bytes at the start of a file that :func:`may_be_image` needs (the root group's two links)
HEAD_BYTES = 1024


def may_be_image(head: bytes) -> bool:
    """Whether a file starting with ``head`` (its first :data:`HEAD_BYTES`, or all of a shorter
    file) can be one :func:`parse_image` takes: the superblock and a root group linking at most
    a heap segment and ``index``. False rules the file out without reading the rest of it
    (an archive with big-array datasets links more)."""
    return _root_links(head) is not None


def _root_links(data: bytes) -> list[tuple[bytes, int]] | None:
    """The (name, header address) links of the root group as :func:`build_image` lays it out,
    ending with ``index``; None when the start of ``data`` is laid out otherwise."""
    if len(data) < _ROOT_END or data[:12] != _SUPERBLOCK_START[:12]:
        return None
    links: list[tuple[bytes, int]] = []
    pos = _LINKS
    try:
        while len(links) < 2 and data[pos] == _LINK:
            length = data[pos + _LINK_NAME_AT - 1]
            name = data[pos + _LINK_NAME_AT : pos + _LINK_NAME_AT + length]
            links.append((name, struct.unpack_from("<Q", data, pos + _LINK_NAME_AT + length)[0]))
            pos += _LINK_BYTES + length
        if data[pos] != _NIL:  # build_image pads the root's header after its links: a third link is not ours
            return None
    except (IndexError, struct.error):
        return None
    if not links or links[-1][0] != b"index" or (len(links) == 2 and not links[0][0].startswith(b"heap_")):
        return None  # (an array dataset beside the index: not an image)
    return links


def _payload(data: bytes, header: int) -> np.ndarray | None:
    """The bytes of the dataset whose object header starts at ``header`` (where the header
    says they are; the rebuilt comparison checks the rest)."""
    n = struct.unpack_from("<Q", data, header + _SIZE_AT)[0]
    if n == 0:
        return np.empty(0, dtype=np.uint8)
    start = struct.unpack_from("<Q", data, header + _ADDRESS_AT)[0]
    if start + n > len(data):
        return None
    return np.frombuffer(data, dtype=np.uint8, count=n, offset=start).copy()
