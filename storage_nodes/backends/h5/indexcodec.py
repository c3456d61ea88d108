"""The archive's index as bytes: MessagePack packed and zlib compressed, within the bomb limits.

The index (``/index``) holds the node tree, the classes, the metadata and the environment;
an archive updated in place adds ``/index_log``, MessagePack changes to it (``[path, value]``
operations, see ``docs/format.md``, section *The index log*). This module turns the index
and its changes into bytes and back, without HDF5: :mod:`.datasets` stores the bytes.
Decompression never produces more than the size the file records for it, nor more than
:data:`MAX_INDEX_BYTES` (a zlib bomb is refused without being inflated).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import msgpack
import numpy as np

from ...errors import SerializationError
from . import codec

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "LOG_FORMAT_VERSION",
    "LOG_VERSIONS",
    "MAX_INDEX_BYTES",
    "apply_log",
    "dump_index",
    "inflate",
    "load_index",
    "pack_change",
]

FORMAT = "storage_nodes-h5"
#: the format version of files written whole (a save, a compaction, an update by copying);
#: 4 is 2 with ``n`` nodes (safe types), which readers of 2 and 3 refuse by the version
FORMAT_VERSION = 4
#: the format version of a file updated in place: its index is ``/index`` with the changes
#: of ``/index_log`` applied (older readers refuse it by its version instead of missing them);
#: 5 is 3 with ``n`` nodes. Files of 2 and 3 are still read (and updated by copying, as 4)
LOG_FORMAT_VERSION = 5
#: every format version whose ``/index_log`` is applied
LOG_VERSIONS = (3, LOG_FORMAT_VERSION)
#: the largest decompressed index written or read (some two million index nodes): a
#: bigger one is refused on save, and a file whose index inflates beyond it (or beyond its
#: recorded ``index_size``) is refused without inflating the rest (a zlib bomb)
MAX_INDEX_BYTES = 1 << 27


def _index_default(obj: Any) -> Any:
    if type(obj) is int:  # beyond 64 bits (user metadata may hold such ints)
        return msgpack.ExtType(codec.BIGINT, codec.bigint_bytes(obj))
    raise TypeError(f"cannot store {type(obj).__name__} in the index")


def dump_index(index: dict[str, Any]) -> tuple[np.ndarray, int]:
    """The compressed index and its decompressed byte size (recorded as ``index_size``)."""
    text = msgpack.packb(index, default=_index_default, use_bin_type=True)
    if len(text) > MAX_INDEX_BYTES:
        raise SerializationError(
            f"the index would take {len(text)} bytes, more than the {MAX_INDEX_BYTES} an h5 archive may hold "
            "(too many separate objects): store the bulk as numpy arrays or in several files"
        )
    return np.frombuffer(zlib.compress(text, 1), dtype=np.uint8), len(text)


_INFLATE_CHUNK = 1 << 22
#: an index without a recorded size is kept while inflating up to this size; beyond it, it is
#: inflated once without keeping anything, to learn its size, then again
_KEEP_UNRECORDED = 1 << 25


def _inflate(raw: bytes, limit: int, keep_up_to: int) -> tuple[int, list[bytes] | None]:
    """Stream-decompress ``raw`` in chunks, refusing (``ValueError``) to go past ``limit``
    bytes; the output is returned if it was at most ``keep_up_to`` bytes (else ``None``)."""
    inflater = zlib.decompressobj()
    pieces: list[bytes] | None = []
    total = 0
    data = raw
    while not inflater.eof:
        out = inflater.decompress(data, _INFLATE_CHUNK)
        total += len(out)
        if total > limit:
            raise ValueError(f"the index inflates beyond {limit} bytes (a damaged or hostile file)")
        if pieces is not None:
            pieces.append(out)
            if total > keep_up_to:
                pieces = None
        data = inflater.unconsumed_tail
        if not data and not out:
            raise ValueError("the compressed index is cut short")
    return total, pieces


def inflate(raw: bytes, size: int | None) -> bytes:
    """Decompress the index, refusing (``ValueError``) to produce more than its recorded
    ``size``, or for files without one more than :data:`MAX_INDEX_BYTES` (keeping at most
    32 MiB of output until the size is known): memory stays bounded by what the file
    declares, whatever the compressed bytes hold."""
    if size is not None and not 0 <= size <= MAX_INDEX_BYTES:
        raise ValueError(f"the recorded index size {size} is not between 0 and {MAX_INDEX_BYTES}")
    if size is None:
        total, pieces = _inflate(raw, MAX_INDEX_BYTES, _KEEP_UNRECORDED)
        if pieces is None:
            total, pieces = _inflate(raw, total, total)
    else:
        total, pieces = _inflate(raw, size, size)
        if total != size:
            raise ValueError(f"the index inflates to {total} bytes, its recorded size is {size}")
    assert pieces is not None
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def load_index(raw: bytes, size: int | None = None) -> Any:
    """The index decoded from its compressed bytes (``size``: as for :func:`inflate`); errors
    of a damaged index are raised as zlib, MessagePack, JSON or ``ValueError`` exceptions."""
    text = inflate(raw, size)
    if text[:1] == b"{":  # format version 1: JSON (a MessagePack map never starts with "{")
        return json.loads(text.decode("utf-8"))
    return msgpack.unpackb(text, ext_hook=_index_ext, raw=False)


def _index_ext(code: int, data: bytes) -> Any:
    if code != codec.BIGINT:
        raise ValueError(f"unexpected extension type {code} in the index")
    return int.from_bytes(data, "little", signed=True)


def pack_change(ops: list[list[Any]]) -> bytes:
    """One record of ``/index_log``: the MessagePack array of ``[path, value]`` operations."""
    return msgpack.packb(ops, default=_index_default, use_bin_type=True)


def _step_into(target: Any, step: Any) -> Any:
    if type(target) is dict and type(step) is str and step in target:
        return target[step]
    if type(target) is list and type(step) is int and 0 <= step < len(target):
        return target[step]
    raise ValueError(f"the index log's path step {step!r} does not lead into a {type(target).__name__}")


def apply_log(index: dict[str, Any], log: bytes) -> None:
    """Apply the changes of an index log (``ValueError``, ``TypeError``, ``KeyError`` or a
    MessagePack error when it does not fit the index)."""
    unpacker = msgpack.Unpacker(raw=False, ext_hook=_index_ext, max_buffer_size=max(len(log), 1))
    unpacker.feed(log)
    for change in unpacker:
        if type(change) is not list:
            raise ValueError("an index log record is not an array")
        for op in change:
            if type(op) is not list or len(op) != 2 or type(op[0]) is not list or not op[0]:
                raise ValueError(f"an index log operation is not [path, value]: {op!r:.100}")
            steps, value = op
            target: Any = index
            for step in steps[:-1]:
                target = _step_into(target, step)
            last = steps[-1]
            if type(target) is dict and type(last) is str:
                target[last] = value
            elif type(target) is list and type(last) is int and 0 <= last <= len(target):
                if last == len(target):
                    target.append(value)
                else:
                    target[last] = value
            else:
                raise ValueError(f"the index log sets {last!r} in a {type(target).__name__}")
    if unpacker.tell() != len(log):
        raise ValueError(f"the index log is cut short ({len(log) - unpacker.tell()} bytes of a last record)")
