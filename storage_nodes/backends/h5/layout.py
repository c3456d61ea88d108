"""The HDF5 side of the archive: which datasets a file holds and how they are read.

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

import collections
import contextlib
import itertools
import json
import os
import stat
import threading
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import msgpack
import numpy as np
from h5py import h5a, h5d, h5f, h5g, h5p, h5s, h5t

from ...atomic import ensure_space, open_new
from ...errors import CorruptFileError, SerializationError, StorageError
from . import codec, image, journal
from .encoder import ArrayOut
from .image import build_image
from .tree import walk

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "LOG_FORMAT_VERSION",
    "Reader",
    "Resources",
    "live_resources",
    "open_reader",
    "resources",
    "index_size",
    "log_bytes",
    "write_file",
    "write_index",
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
INDEX = "index"
INDEX_LOG = "index_log"
#: chunk size of ``/index_log`` (a chunked, resizable dataset: an update appends its change)
LOG_CHUNK = 1 << 10
#: attribute of ``/index``: the byte size of the decompressed index (absent in files written
#: before it, and when another tool replaced the dataset)
INDEX_SIZE = "index_size"
#: the largest decompressed index written or read (some two million index nodes): a
#: bigger one is refused on save, and a file whose index inflates beyond it (or beyond its
#: recorded ``index_size``) is refused without inflating the rest (a zlib bomb)
MAX_INDEX_BYTES = 1 << 27
#: HDF5 file-format bounds (readable by HDF5 >= 1.10) and a small metadata block: small files
FILE_OPTIONS: dict[str, Any] = {"libver": ("v110", "v110"), "meta_block_size": 256}


def _corrupt(path: Path, exc: BaseException | str) -> CorruptFileError:
    detail = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return CorruptFileError(
        f"{path} is not a readable h5 archive of storage_nodes ({detail}); it is damaged or was cut "
        "short (storage_nodes itself never leaves a half-written file): restore it from a copy",
        path=path,
    )


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


def _load_index(raw: bytes, size: int | None = None) -> Any:
    text = inflate(raw, size)
    if text[:1] == b"{":  # format version 1: JSON (a MessagePack map never starts with "{")
        return json.loads(text.decode("utf-8"))
    return msgpack.unpackb(text, ext_hook=_index_ext, raw=False)


def _index_ext(code: int, data: bytes) -> Any:
    if code != codec.BIGINT:
        raise ValueError(f"unexpected extension type {code} in the index")
    return int.from_bytes(data, "little", signed=True)


_plists: dict[str, Any] = {}
_plists_lock = threading.Lock()


def _plist(kind: str) -> Any:
    """The file-access or dataset-creation property list of the archive, made once per process
    (HDF5 copies a property list into each file or dataset made with it; ~0.05 ms per save)."""
    found = _plists.get(kind)
    if found is None:
        with _plists_lock:
            found = _plists.get(kind)
            if found is None:
                if kind == "fapl":
                    found = h5p.create(h5p.FILE_ACCESS)
                    found.set_libver_bounds(h5f.LIBVER_V110, h5f.LIBVER_V110)
                    found.set_meta_block_size(FILE_OPTIONS["meta_block_size"])
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
        return h5f.create(name, h5f.ACC_EXCL, fapl=_plist("fapl"))
    return h5f.create(name, h5f.ACC_TRUNC, fapl=_plist("fapl"))


def create_bytes(fid: h5f.FileID, name: str, data: np.ndarray, *, size: int | None = None) -> None:
    """Create the 1-d uint8 dataset ``name`` holding ``data`` (low-level: no wrapper overhead),
    with the attribute ``index_size`` set to ``size`` if given (see :func:`put_index`)."""
    n = int(data.shape[0])
    ds = h5d.create(fid, name.encode(), h5t.NATIVE_UINT8, h5s.create_simple((n,)), dcpl=_plist("dcpl"))
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
        out = np.empty(ds.shape, dtype=np.uint8)
        if out.shape[0]:
            ds.read(h5s.ALL, h5s.ALL, out)
        return out
    finally:
        ds.close()


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
        name = INDEX_SIZE.encode()
        if not h5a.exists(ds, name):
            return None
        attr = h5a.open(ds, name)
        if attr.shape != () or attr.dtype.kind not in "iu":
            raise ValueError(f"the attribute {INDEX_SIZE!r} is {attr.dtype}{list(attr.shape)}, not an integer")
        out = np.empty((), dtype=np.int64)
        attr.read(out)
        return int(out)
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


def pack_change(ops: list[list[Any]]) -> bytes:
    """One record of ``/index_log``: the MessagePack array of ``[path, value]`` operations."""
    return msgpack.packb(ops, default=_index_default, use_bin_type=True)


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


def _data_bytes(heap: np.ndarray | None, arrays: list[ArrayOut]) -> int:
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
        ensure_space(fid.name, _data_bytes(heap, arrays))
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


#: a new file without big arrays whose heap and index take at most this many bytes is built in
#: memory (HDF5's core driver, the same bytes) and written with one write, instead of HDF5's
#: dozen small writes and a truncation of the file (~0.05 ms of a small save)
IN_MEMORY_BYTES = 1 << 22
_memory_files = itertools.count()
#: build those files' bytes in pure Python (:mod:`.image`, the same bytes as HDF5's, ~0.7 ms
#: less per small save); ``False`` makes HDF5 write them (tests compare the two)
BUILD_IMAGES = True


def _memory_fapl() -> Any:
    found = _plists.get("memory")
    if found is None:
        with _plists_lock:
            found = _plists.get("memory")
            if found is None:
                found = h5p.create(h5p.FILE_ACCESS)
                found.set_libver_bounds(h5f.LIBVER_V110, h5f.LIBVER_V110)
                found.set_meta_block_size(FILE_OPTIONS["meta_block_size"])
                found.set_fapl_core(block_size=1 << 16, backing_store=False)
                _plists["memory"] = found
    return found


def write_file(
    path: Path, index: dict[str, Any], heap_name: str, heap: np.ndarray | None, arrays: list[ArrayOut], compression: Any
) -> None:
    """Create the archive ``path`` (a new file).

    A small file without big arrays is built in memory -- by :func:`.image.build_image` when
    it models the file (unless :data:`BUILD_IMAGES` is off), else by HDF5's core driver -- and
    written with one write. The index is packed first (a too large one is refused before the
    file is touched) and the free space checked once for data and index."""
    dumped = dump_index(index)
    size = _data_bytes(heap, arrays) + dumped[0].nbytes
    ensure_space(path, size)
    if not arrays and size <= IN_MEMORY_BYTES:
        built = build_image(heap_name, heap, dumped[0], dumped[1]) if BUILD_IMAGES else None
        if built is not None:
            with open_new(path) as f:
                f.write(built)
            return
        fid = h5f.create(b"storage_nodes-%d" % next(_memory_files), h5f.ACC_TRUNC, fapl=_memory_fapl())
        try:
            write_data(fid, heap_name, heap, arrays, compression, check_space=False)
            put_index(fid, index, dumped=dumped, check_space=False)
            h5f.flush(fid)
            built = fid.get_file_image()
        finally:
            fid.close()
        with open_new(path) as f:
            f.write(built)
        return
    fid = create_file(path)
    try:
        write_data(fid, heap_name, heap, arrays, compression, check_space=False)
        put_index(fid, index, dumped=dumped, check_space=False)
    finally:
        fid.close()


_ROOT_TYPES = (dict, str, bytes, int, float, bool, type(None))  # a node, or a scalar standing for itself


def _foreign(path: Path, why: str) -> CorruptFileError:
    return CorruptFileError(
        f"{path} is an HDF5 file not written by storage_nodes ({why}); "
        "read it with h5py, or with the tool that wrote it",
        path=path,
    )


def index_bytes(fid: h5f.FileID, path: Path) -> np.ndarray:
    """The raw (compressed) content of the ``/index`` dataset."""
    try:
        return read_bytes(fid, INDEX)
    except KeyError:
        raise _foreign(path, "it has no /index dataset") from None
    except (OSError, ValueError, TypeError) as exc:
        raise _corrupt(path, exc) from None


def log_bytes(fid: h5f.FileID, path: Path) -> np.ndarray:
    """The content of ``/index_log`` (empty when there is none); one larger than
    :data:`MAX_INDEX_BYTES` is refused unread."""
    try:
        return read_bytes(fid, INDEX_LOG, MAX_INDEX_BYTES)
    except KeyError:
        try:
            present = INDEX_LOG.encode() in h5g.open(fid, b"/")
        except (KeyError, OSError, ValueError, TypeError) as exc:
            raise _corrupt(path, exc) from None
        if present:
            raise _corrupt(path, "its index log cannot be opened") from None
        return np.empty(0, dtype=np.uint8)
    except (OSError, ValueError, TypeError) as exc:
        raise _corrupt(path, f"cannot read its index log: {exc}") from None


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


def read_index(
    fid: h5f.FileID | None,
    path: Path,
    raw: np.ndarray | None = None,
    log: np.ndarray | None = None,
    *,
    size: int | None = -1,
) -> dict[str, Any]:
    """The decoded index of the open file ``fid`` (format versions 1 to 5; for 3 and 5 the changes
    of ``/index_log`` applied); ``raw``, ``log`` and ``size`` (its ``index_size``): what the
    caller has read already (all three when ``fid`` is None: a file read without HDF5)."""
    if raw is None:
        assert fid is not None
        raw = index_bytes(fid, path)
    try:
        index = _load_index(raw.tobytes(), index_size(fid) if size == -1 and fid is not None else size)
    except (OSError, KeyError, ValueError, TypeError, UnicodeDecodeError, zlib.error, msgpack.UnpackException) as exc:
        raise _corrupt(path, exc) from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise _foreign(path, "its /index is not a storage_nodes index")
    if "root" not in index or not isinstance(index["root"], _ROOT_TYPES):
        raise _corrupt(path, "the index has no root entry")
    version = index.get("format_version")
    if not isinstance(version, int) or version > LOG_FORMAT_VERSION:
        raise StorageError(
            f"{path} uses h5 archive format {version}; this storage_nodes reads up to {LOG_FORMAT_VERSION}: upgrade it",
            path=path,
        )
    if version in LOG_VERSIONS:
        if log is None:
            assert fid is not None
            log = log_bytes(fid, path)
        if log.shape[0]:
            try:
                apply_log(index, log.tobytes())
            except (KeyError, ValueError, TypeError, UnicodeDecodeError, msgpack.UnpackException) as exc:
                raise _corrupt(path, f"its index log does not fit its index ({type(exc).__name__}: {exc})") from None
            if index.get("format") != FORMAT or index.get("format_version") != version:
                raise _corrupt(path, "its index log changes the format of the file")
            if "root" not in index or not isinstance(index["root"], _ROOT_TYPES):
                raise _corrupt(path, "its index log leaves no root entry")
    return index


class Reader:
    """Read access to an open archive: the index, heap slices and big arrays."""

    def __init__(self, fid: h5f.FileID | None, path: Path, index: dict[str, Any], inode: int | None = None) -> None:
        self._fid = fid
        self._inode = inode  # of the file read without HDF5 (``fid`` None): HDF5 must open that one
        self.path = path
        self.index = index
        self._f: h5py.File | None = None
        self._whole = False
        self._heaps: dict[str, np.ndarray] = {}
        self._spans: dict[str, tuple[int, np.ndarray]] = {}
        self._ids: dict[int, dict[str, Any]] | None = None
        self._checked: set[str] = set()  # heap segments found to store all the bytes they declare

    @property
    def fid(self) -> h5f.FileID:
        """The HDF5 file id (for a file read without HDF5, opened on first use: only what the
        bytes read did not hold needs it)."""
        if self._fid is None:
            try:
                fid = h5f.open(os.fsencode(self.path), h5f.ACC_RDONLY)
            except (OSError, ValueError) as exc:
                raise _corrupt(self.path, exc) from None
            if _inode(fid) not in (self._inode, None):
                fid.close()
                raise StorageError(f"cannot read {self.path}: it was replaced while being read", path=self.path)
            self._fid = fid
        return self._fid

    def close(self) -> None:
        """Close what was opened through it (the high-level handle first), then its file id."""
        if self._f is not None:
            self._f.close()
        if self._fid is not None and self._fid.valid:
            self._fid.close()

    @property
    def f(self) -> h5py.File:
        """A high-level handle on the open file (made on first use; closed with the file)."""
        if self._f is None:
            self._f = h5py.File(self.fid)
        return self._f

    def prefetch(self, slices: list[list[Any]], *, whole: bool = False) -> None:
        """Read what ``slices`` need in one read per heap segment (the whole segment if ``whole``)."""
        by_name: dict[str, list[list[Any]]] = {}
        for s in slices:
            by_name.setdefault(s[0], []).append(s)
        for name, group in by_name.items():
            if name in self._heaps:
                continue
            if whole:
                self._read_whole(name)
                continue
            ds = self._dataset(name)
            start = min(s[1] for s in group)
            end = max(s[1] + s[2] for s in group)
            needed = sum(s[2] for s in group)
            try:
                if start == 0 and end >= ds.shape[0]:
                    self._heaps[name] = ds[()]
                elif end - start <= 2 * needed + 65536:
                    self._spans[name] = (start, ds[start:end])
            except (OSError, ValueError, TypeError) as exc:
                raise _corrupt(self.path, exc) from None

    def prefetch_all(self) -> None:
        """Read each heap segment whole on its first use (for a full load)."""
        self._whole = True

    def _read_whole(self, name: str) -> np.ndarray:
        if not isinstance(name, str) or not name.startswith("heap_"):
            raise _corrupt(self.path, f"{name!r} is not a heap segment")
        try:
            data = self._heaps[name] = read_bytes(self.fid, name)
        except (KeyError, OSError, ValueError, TypeError) as exc:
            raise _corrupt(self.path, f"cannot read heap segment {name!r}: {exc}") from None
        return data

    def heap(self, s: list[Any]) -> np.ndarray:
        try:
            name, offset, nbytes = s
            offset, nbytes = int(offset), int(nbytes)
        except (TypeError, ValueError) as exc:
            raise _corrupt(self.path, exc) from None
        whole = self._heaps.get(name)
        if whole is None and self._whole:
            whole = self._read_whole(name)
        if whole is not None:
            out = whole[offset : offset + nbytes]
        else:
            span = self._spans.get(name)
            if span is not None and span[0] <= offset and offset + nbytes <= span[0] + span[1].shape[0]:
                out = span[1][offset - span[0] : offset - span[0] + nbytes]
            else:
                try:
                    out = self._dataset(name)[offset : offset + nbytes]
                except (OSError, ValueError, TypeError) as exc:
                    raise _corrupt(self.path, exc) from None
        if out.shape[0] != nbytes or offset < 0:
            raise _corrupt(self.path, f"heap slice {name}[{offset}:+{nbytes}] lies outside the heap")
        return out

    def _dataset(self, name: str) -> h5py.Dataset:
        try:
            ds = self.f[name]
        except (KeyError, OSError, ValueError, TypeError) as exc:
            raise _corrupt(self.path, f"missing dataset {name!r}: {exc}") from None
        if not isinstance(ds, h5py.Dataset):
            raise _corrupt(self.path, f"{name!r} is not a dataset")
        if name.startswith("heap_") and name not in self._checked:
            stored = ds.id.get_storage_size()
            if ds.dtype != np.uint8 or len(ds.shape) != 1 or stored < ds.shape[0]:
                raise _corrupt(
                    self.path,
                    f"heap segment {name!r} is {ds.dtype}{list(ds.shape)} storing {stored} bytes, "
                    "not uncompressed uint8[n]",
                )
            self._checked.add(name)
        return ds

    def dataset(self, name: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        """The content of the big-array dataset ``name``, which the index says is ``dtype[shape]``.

        Shape and item size are checked before reading: a dataset rewritten to declare more
        elements (a few compressed bytes can declare gigabytes) is refused unread.
        """
        ds = self._dataset(name)
        if tuple(ds.shape) != tuple(shape) or ds.dtype.itemsize != dtype.itemsize or ds.dtype.kind != dtype.kind:
            raise _corrupt(
                self.path,
                f"dataset {name!r} is {ds.dtype}{list(ds.shape)}, but the index says {dtype}{list(shape)}",
            )
        try:
            return np.asarray(ds[()])
        except (OSError, ValueError, TypeError) as exc:
            raise _corrupt(self.path, exc) from None

    def definition(self, target: int) -> dict[str, Any] | None:
        if self._ids is None:
            self._ids = {n["id"]: n for n in walk(self.index["root"]) if "id" in n}
        return self._ids.get(target)


#: parsed indexes of recently listed files, by the identity of the file opened (device,
#: inode, size, mtime, ctime): repeated listings of one file (``open(...)["a"]["b"]``) parse
#: its index once. storage_nodes' writers replace files (a new inode), so a changed file
#: never matches; another program rewriting the file in place to the same size within the
#: file system's timestamp granularity (a few ms) would go unnoticed by listings (never by
#: loads). Only listings use it: they neither modify nor hand out the index.
_INDEX_CACHE: collections.OrderedDict[tuple[int, ...], dict[str, Any]] = collections.OrderedDict()
_INDEX_CACHE_LOCK = threading.Lock()
_INDEX_CACHE_ITEMS = 8
_INDEX_CACHE_MAX_BYTES = 1 << 22  # compressed index bytes; bigger indexes are not kept


def _stat_identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _file_identity(fid: h5f.FileID) -> tuple[int, ...] | None:
    try:
        st = os.fstat(fid.get_vfd_handle())
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return _stat_identity(st)


def _kept_index(identity: tuple[int, ...]) -> dict[str, Any] | None:
    with _INDEX_CACHE_LOCK:
        found = _INDEX_CACHE.get(identity)
        if found is not None:
            _INDEX_CACHE.move_to_end(identity)
        return found


def _keep_index(identity: tuple[int, ...], index: dict[str, Any]) -> None:
    with _INDEX_CACHE_LOCK:
        _INDEX_CACHE[identity] = index
        while len(_INDEX_CACHE) > _INDEX_CACHE_ITEMS:
            _INDEX_CACHE.popitem(last=False)


def _cached_index(fid: h5f.FileID, path: Path) -> dict[str, Any]:
    identity = _file_identity(fid)
    if identity is not None:
        found = _kept_index(identity)
        if found is not None:
            return found
    raw = index_bytes(fid, path)
    index = read_index(fid, path, raw)
    if identity is not None and raw.nbytes <= _INDEX_CACHE_MAX_BYTES:
        _keep_index(identity, index)
    return index


@contextlib.contextmanager
def open_reader(path: Path, *, cached_index: bool = False) -> Iterator[Reader]:
    """Open ``path`` for reading; h5py errors become :class:`CorruptFileError`.

    ``cached_index=True`` (listings only) may hand out an index shared with earlier calls:
    the caller must not modify it or return parts of it.
    """
    for _ in range(100):
        # a shared flock on the file, taken before HDF5 opens it (HDF5's own lock comes after it
        # has measured the file's size, too late): an in-place update waits until the read is over
        with journal.reading(path) as locked:
            small = None if locked is None or not READ_IMAGES else _read_image(path, locked, cached_index)
            if small is not None:
                try:
                    yield small
                finally:
                    small.close()
                return
            try:
                fid = h5f.open(os.fsencode(path), h5f.ACC_RDONLY)
            except FileNotFoundError:
                raise
            except (OSError, ValueError) as exc:
                raise _corrupt(path, exc) from None
            if locked is not None and _inode(fid) not in (locked, None):
                fid.close()  # replaced by a whole save between locking and opening: lock the new file
                continue
            reader = None
            try:
                reader = Reader(fid, path, _cached_index(fid, path) if cached_index else read_index(fid, path))
                yield reader
            finally:
                if reader is not None:
                    reader.close()
                if fid.valid:
                    fid.close()
            return
    raise StorageError(f"cannot read {path}: it is replaced faster than it can be opened", path=path)


#: read small files that are exactly what :func:`.image.build_image` writes without HDF5
#: (tests turn it off to compare with HDF5's reading)
READ_IMAGES = True


def _read_image(path: Path, locked: int, cached_index: bool = False) -> Reader | None:
    """A reader of ``path`` from its bytes, when it is a small file exactly as
    :func:`.image.build_image` writes it (one read, no HDF5: ~0.7 ms less on a small load);
    None for any other file, or one replaced since ``locked`` (its inode) was locked.
    ``cached_index``: as for :func:`open_reader` (the same cache of parsed indexes)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_ino != locked or not stat.S_ISREG(st.st_mode) or st.st_size > image.MAX_BYTES + 8192:
            return None
        data = os.read(fd, st.st_size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    parsed = image.parse_image(data)
    if parsed is None:
        return None
    heap_name, heap, raw, size = parsed
    identity = _stat_identity(st)
    index = _kept_index(identity) if cached_index else None
    if index is None:
        index = read_index(None, path, raw, np.empty(0, dtype=np.uint8), size=size)
        if cached_index:
            _keep_index(identity, index)
    reader = Reader(None, path, index, locked)
    if heap_name is not None and heap is not None:
        reader._heaps[heap_name] = heap
        reader._checked.add(heap_name)
    return reader


def _inode(fid: h5f.FileID) -> int | None:
    try:
        return os.fstat(fid.get_vfd_handle()).st_ino
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def heap_slices(node: dict[str, Any]) -> list[list[Any]]:
    """Every heap slice the subtree of ``node`` refers to."""
    return [n["h"] for n in walk(node) if "h" in n]


def live_resources(root: dict[str, Any]) -> tuple[set[str], set[str], int]:
    """(heap segments used, array datasets used, live bytes) of a node tree."""
    heaps: set[str] = set()
    arrays: set[str] = set()
    live = 0
    for n in walk(root):
        if "h" in n:
            heaps.add(n["h"][0])
            live += int(n["h"][2])
        if "ds" in n:
            arrays.add(n["ds"])
            live += int(n.get("n", 0))
    return heaps, arrays, live


@dataclass
class Resources:
    """How many nodes refer to each heap segment and array dataset, and the live bytes."""

    heaps: Counter[str] = field(default_factory=Counter)
    arrays: Counter[str] = field(default_factory=Counter)
    live: int = 0

    def add(self, node: dict[str, Any], sign: int = 1) -> None:
        """Count the subtree of ``node`` in (``sign=1``) or out (``sign=-1``)."""
        for n in walk(node):
            if "h" in n:
                self.heaps[n["h"][0]] += sign
                self.live += sign * int(n["h"][2])
            if "ds" in n:
                self.arrays[n["ds"]] += sign
                self.live += sign * int(n.get("n", 0))


def resources(root: dict[str, Any]) -> Resources:
    """The :class:`Resources` of a whole node tree."""
    r = Resources()
    r.add(root)
    return r


def compact_into(src: Path, dst: Path) -> None:
    """Write the live content of archive ``src`` into the new file ``dst`` (heap repacked)."""
    with open_reader(src) as r:
        index = r.index
        nodes = [n for n in walk(index["root"]) if "h" in n]
        r.prefetch([n["h"] for n in nodes], whole=True)
        offsets: dict[tuple[str, int], int] = {}
        chunks: list[np.ndarray] = []
        size = 0
        for n in nodes:
            key = (n["h"][0], int(n["h"][1]))
            if key not in offsets:
                data = r.heap(n["h"])
                offsets[key] = size
                chunks.append(data)
                size += data.shape[0] + (-data.shape[0] % 16)
        heap = np.zeros(size, dtype=np.uint8) if chunks else None
        if heap is not None:
            for off, data in zip(offsets.values(), chunks):
                heap[off : off + data.shape[0]] = data
        for n in nodes:
            n["h"] = ["heap_0", offsets[(n["h"][0], int(n["h"][1]))], n["h"][2]]
        index["next_heap"] = 1
        index["format_version"] = FORMAT_VERSION
        _, arrays, live = live_resources(index["root"])
        ensure_space(dst, live)
        with h5py.File(dst, "w", **FILE_OPTIONS) as out:
            if heap is not None:
                create_bytes(out.id, "heap_0", heap)
            for name in sorted(arrays):
                r.f.copy(r.f[name], out, name)
            put_index(out.id, index)
