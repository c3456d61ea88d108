"""The datasets of an archive file, created and read through HDF5.

::

    /index            uint8[]  zlib-compressed MessagePack: node tree, classes, metadata, environment
                               (format version 1: zlib-compressed UTF-8 JSON, still read)
    /index_log        uint8[]  (format version 3) MessagePack changes to /index, one per update in place
    /heap_<n>         uint8[]  packed blobs, small arrays, opaque pickles (16-byte aligned)
    /array_<n>        big arrays, one dataset each (attr "key": the entry's key)

The small uint8 datasets (index, heaps) are created and read whole through h5py's
low-level API: a save or load of a small object is dominated by per-call overhead, and
the high-level ``File``/``create_dataset`` wrappers cost about as much as the HDF5 work.
Every h5py/HDF5 failure on open or read becomes :class:`CorruptFileError` naming the file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from h5py import h5a, h5d, h5f, h5g, h5p, h5s, h5t

from ...atomic import ensure_space
from ...errors import CorruptFileError, StorageError
from . import indexcodec, locking
from .direct import MIN_BYTES as DIRECT_MIN_BYTES
from .direct import read_contiguous, vfd_of
from .encoder import ArrayOut
from .indexcodec import FORMAT_VERSION, dump_index

__all__ = [
    "FILE_OPTIONS",
    "INDEX",
    "INDEX_LOG",
    "INDEX_SIZE",
    "append_log",
    "corrupt",
    "create_bytes",
    "create_file",
    "data_bytes",
    "foreign",
    "index_bytes",
    "index_bytes_and_size",
    "index_size",
    "log_bytes",
    "plist",
    "put_index",
    "read_bytes",
    "write_data",
    "write_index",
]

INDEX = "index"
INDEX_LOG = "index_log"
#: chunk size of ``/index_log`` (a chunked, resizable dataset: an update appends its change)
LOG_CHUNK = 1 << 10
#: attribute of ``/index``: the byte size of the decompressed index (absent in files written
#: before it, and when another tool replaced the dataset)
INDEX_SIZE = "index_size"
#: HDF5 file-format bounds (readable by HDF5 >= 1.10) and a small metadata block: small files
FILE_OPTIONS: dict[str, Any] = {"libver": ("v110", "v110"), "meta_block_size": 256}


def corrupt(path: Path, exc: BaseException | str) -> StorageError:
    """The error for a file that HDF5 (or the index in it) cannot read, naming ``path``; HDF5's
    lock failing on a file system without locks is said as that, never as a damaged file."""
    if isinstance(exc, BaseException) and locking.lock_failure(exc):
        return locking.no_locks_error(path, exc)
    detail = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return CorruptFileError(
        f"{path} is not a readable h5 archive of storage_nodes ({detail}); it is damaged or was cut "
        "short (storage_nodes itself never leaves a half-written file): restore it from a copy",
        path=path,
    )


_plists: dict[str, Any] = {}
_plists_lock = threading.Lock()


def plist(kind: str) -> Any:
    """The property list ``kind`` of the archive, made once per process (HDF5 copies a
    property list into each file or dataset made with it; ~0.05 ms per save): ``"fapl"``
    (file access), ``"fapl-unlocked"`` (the same without HDF5's file locks:
    :mod:`.locking`), ``"read-unlocked"`` (HDF5's defaults without its file locks: opening
    an existing file), ``"memory"`` (file access of a file built in memory by HDF5's core
    driver) or ``"dcpl"`` (dataset creation)."""
    found = _plists.get(kind)
    if found is None:
        with _plists_lock:
            found = _plists.get(kind)
            if found is None:
                if kind == "read-unlocked":
                    found = h5p.create(h5p.FILE_ACCESS)
                    found.set_file_locking(False, True)
                elif kind in ("fapl", "fapl-unlocked", "memory"):
                    found = h5p.create(h5p.FILE_ACCESS)
                    found.set_libver_bounds(h5f.LIBVER_V110, h5f.LIBVER_V110)
                    found.set_meta_block_size(FILE_OPTIONS["meta_block_size"])
                    if kind == "memory":
                        found.set_fapl_core(block_size=1 << 16, backing_store=False)
                    if kind == "fapl-unlocked":
                        found.set_file_locking(False, True)
                else:
                    found = h5p.create(h5p.DATASET_CREATE)
                    found.set_obj_track_times(False)
                _plists[kind] = found
    return found


def create_file(path: Path) -> h5f.FileID:
    """Create (truncate) the HDF5 file ``path`` with the archive's file options.

    An existing empty file (the temporary file of ``atomic_path``) is removed and made anew
    with ``O_EXCL`` rather than truncated: HDF5 opens with ``O_TRUNC``, which on ext4 forces
    the blocks of everything written to be allocated at the close (see
    :func:`~storage_nodes.atomic.open_new`): 37 ms more for a 100 MB array."""
    name = os.fsencode(path)
    try:
        empty = os.stat(name).st_size == 0
    except FileNotFoundError:
        empty = False
    if empty:
        os.unlink(name)

    def create(locks: bool) -> h5f.FileID:
        fapl = plist("fapl" if locks else "fapl-unlocked")
        if empty and not os.path.lexists(name):
            return h5f.create(name, h5f.ACC_EXCL, fapl=fapl)
        return h5f.create(name, h5f.ACC_TRUNC, fapl=fapl)

    return locking.locked_open(path, create)


def create_bytes(fid: h5f.FileID, name: str, data: np.ndarray, *, size: int | None = None) -> None:
    """Create the 1-d uint8 dataset ``name`` holding ``data`` (low-level: no wrapper overhead),
    with the attribute ``index_size`` set to ``size`` if given (see :func:`put_index`)."""
    n = int(data.shape[0])
    ds = h5d.create(fid, name.encode(), h5t.NATIVE_UINT8, h5s.create_simple((n,)), dcpl=plist("dcpl"))
    try:
        if n:
            ds.write(h5s.ALL, h5s.ALL, np.ascontiguousarray(data, dtype=np.uint8))
        if size is not None:
            attr = h5a.create(ds, INDEX_SIZE.encode(), h5t.STD_U64LE, h5s.create(h5s.SCALAR))
            attr.write(np.array(size, dtype=np.uint64))
    finally:
        ds.close()


def read_bytes(fid: h5f.FileID, name: str, limit: int | None = None) -> np.ndarray:
    """The whole content of the 1-d uint8 dataset ``name`` (``KeyError`` if missing); one
    declaring more than ``limit`` bytes is refused unread (``ValueError``)."""
    return _read_bytes(fid, name, limit)[0]


def _read_bytes(
    fid: h5f.FileID, name: str, limit: int | None = None, attr: str | None = None
) -> tuple[np.ndarray, int | None]:
    """:func:`read_bytes`, and the integer attribute ``attr`` of the dataset (``None`` if it has
    none) read while it is open."""
    try:
        ds = h5d.open(fid, name.encode())
    except KeyError:
        raise
    except (OSError, ValueError) as exc:  # h5py reports a missing link as KeyError or OSError
        raise KeyError(f"no dataset {name!r} ({exc})") from None
    try:
        if ds.dtype != np.uint8 or len(ds.shape) != 1:
            raise ValueError(f"dataset {name!r} is {ds.dtype}{list(ds.shape)}, not uint8[n]")
        if limit is not None and ds.shape[0] > limit:
            raise ValueError(f"dataset {name!r} declares {ds.shape[0]} bytes, more than {limit}")
        stored = ds.get_storage_size()
        if stored < ds.shape[0]:  # filtered or unallocated: the bytes would be made up on reading
            raise ValueError(
                f"dataset {name!r} declares {ds.shape[0]} bytes but the file stores {stored} for it; "
                "storage_nodes writes its byte datasets uncompressed"
            )
        value = None if attr is None else _int_attribute(ds, attr)
        out = read_contiguous(ds, vfd_of(fid)) if ds.shape[0] >= DIRECT_MIN_BYTES else None
        if out is None:
            out = np.empty(ds.shape, dtype=np.uint8)
            if out.shape[0]:
                ds.read(h5s.ALL, h5s.ALL, out)
        return out, value
    finally:
        ds.close()


def _int_attribute(ds: h5d.DatasetID, name: str) -> int | None:
    try:  # (opened directly: asking first costs one more HDF5 call on every load)
        attr = h5a.open(ds, name.encode())
    except KeyError:
        return None
    if attr.shape != () or attr.dtype.kind not in "iu":
        raise ValueError(f"the attribute {name!r} is {attr.dtype}{list(attr.shape)}, not an integer")
    out = np.empty((), dtype=np.int64)
    attr.read(out)
    return int(out)


def put_index(
    fid: h5f.FileID, index: dict[str, Any], *, dumped: tuple[np.ndarray, int] | None = None, check_space: bool = True
) -> np.ndarray:
    """Create the index dataset, its decompressed size recorded as its attribute ``index_size``;
    returns the compressed bytes written.

    ``dumped``: what :func:`dump_index` made of ``index`` already; ``check_space=False``
    when the caller checked the free space for it (:func:`write_file`)."""
    data, size = dump_index(index) if dumped is None else dumped
    if check_space:
        ensure_space(fid.name, data.nbytes)
    create_bytes(fid, INDEX, data, size=size)
    return data


def index_size(fid: h5f.FileID) -> int | None:
    """The recorded decompressed size of the index, or ``None`` (not recorded)."""
    ds = h5d.open(fid, INDEX.encode())
    try:
        return _int_attribute(ds, INDEX_SIZE)
    finally:
        ds.close()


def write_index(f: h5py.File, index: dict[str, Any], *, version: int = FORMAT_VERSION) -> tuple[np.ndarray, int]:
    """(Re)write the whole index of an open file, dropping its log (in this version's
    encoding, as format ``version``); returns the compressed bytes written and their
    decompressed size."""
    index["format_version"] = version
    dumped = dump_index(index)
    if INDEX in f:
        del f[INDEX]
    if INDEX_LOG in f:
        del f[INDEX_LOG]
    return put_index(f.id, index, dumped=dumped), dumped[1]


def append_log(fid: h5f.FileID, record: bytes) -> None:
    """Append ``record`` to ``/index_log`` (created, chunked and resizable, when missing)."""
    data = np.frombuffer(record, dtype=np.uint8)
    n = data.shape[0]
    name = INDEX_LOG.encode()
    try:
        ds = h5d.open(fid, name)
    except KeyError:
        ds = None
    if ds is None:
        dcpl = h5p.create(h5p.DATASET_CREATE)
        dcpl.set_obj_track_times(False)
        dcpl.set_chunk((LOG_CHUNK,))
        space = h5s.create_simple((n,), (h5s.UNLIMITED,))
        ds = h5d.create(fid, name, h5t.NATIVE_UINT8, space, dcpl=dcpl)
        try:
            ds.write(h5s.ALL, h5s.ALL, data)
        finally:
            ds.close()
        return
    try:
        start = int(ds.shape[0])
        ds.set_extent((start + n,))
        target = ds.get_space()
        target.select_hyperslab((start,), (n,))
        ds.write(h5s.create_simple((n,)), target, data)
    finally:
        ds.close()


def data_bytes(heap: np.ndarray | None, arrays: list[ArrayOut]) -> int:
    return (0 if heap is None else heap.nbytes) + sum(a.data.nbytes for a in arrays)


def write_data(
    fid: h5f.FileID,
    heap_name: str,
    heap: np.ndarray | None,
    arrays: Iterable[ArrayOut],
    compression: Any,
    *,
    check_space: bool = True,
) -> None:
    """Write one heap segment and the big arrays of an encoding into an open file
    (``check_space=False`` when the caller checked the free space for them)."""
    arrays = list(arrays)
    if check_space:
        ensure_space(fid.name, data_bytes(heap, arrays))
    if heap is not None:
        create_bytes(fid, heap_name, heap)
    if not arrays:
        return
    f = h5py.File(fid)  # a second handle on the open file, for h5py's dataset creation
    for a in arrays:
        ds = (
            f.create_dataset(a.name, data=a.data, compression=compression)
            if compression
            else f.create_dataset(a.name, data=a.data)
        )
        ds.attrs["key"] = a.key


def foreign(path: Path, why: str) -> CorruptFileError:
    """The error for an HDF5 file that storage_nodes did not write (``why``: how that shows)."""
    return CorruptFileError(
        f"{path} is an HDF5 file not written by storage_nodes ({why}); "
        "read it with h5py, or with the tool that wrote it",
        path=path,
    )


def index_bytes(fid: h5f.FileID, path: Path) -> np.ndarray:
    """The raw (compressed) content of the ``/index`` dataset."""
    return index_bytes_and_size(fid, path)[0]


def index_bytes_and_size(fid: h5f.FileID, path: Path) -> tuple[np.ndarray, int | None]:
    """:func:`index_bytes` and :func:`index_size`, the dataset opened once."""
    try:
        return _read_bytes(fid, INDEX, None, INDEX_SIZE)
    except KeyError:
        raise foreign(path, "it has no /index dataset") from None
    except (OSError, ValueError, TypeError) as exc:
        raise corrupt(path, exc) from None


def log_bytes(fid: h5f.FileID, path: Path) -> np.ndarray:
    """The content of ``/index_log`` (empty when there is none); one larger than
    :data:`.indexcodec.MAX_INDEX_BYTES` is refused unread."""
    try:
        present = INDEX_LOG.encode() in h5g.open(fid, b"/")  # asked first: HDF5's error path costs more
    except (KeyError, OSError, ValueError, TypeError) as exc:
        raise corrupt(path, exc) from None
    if not present:
        return np.empty(0, dtype=np.uint8)
    try:
        return read_bytes(fid, INDEX_LOG, indexcodec.MAX_INDEX_BYTES)
    except KeyError:
        raise corrupt(path, "its index log cannot be opened") from None
    except (OSError, ValueError, TypeError) as exc:
        raise corrupt(path, f"cannot read its index log: {exc}") from None
