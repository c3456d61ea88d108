"""Reading an archive: its index, heap slices and big arrays, under the readers' shared lock.

:func:`open_reader` opens a file (a small file exactly as :mod:`.image` builds it is read
with one ``read`` and no HDF5), decodes its index (:func:`read_index`, with the changes of
``/index_log`` applied) and hands out a :class:`Reader`. Listings may share parsed indexes
through a small cache keyed by the file's identity. Every h5py/HDF5 failure on open or read
becomes :class:`CorruptFileError` naming the file.
"""

from __future__ import annotations

import collections
import contextlib
import os
import stat
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import msgpack
import numpy as np
from h5py import h5d, h5f

from ...errors import StorageError
from . import image, indexcodec, journal, locking
from .datasets import corrupt, foreign, index_bytes_and_size, index_size, log_bytes, plist, read_bytes
from .direct import read_contiguous, vfd_of
from .indexcodec import FORMAT, apply_log, load_index
from .tree import walk

__all__ = ["READ_IMAGES", "Reader", "heap_slices", "open_reader", "read_index"]

_ROOT_TYPES = (dict, str, bytes, int, float, bool, type(None))  # a node, or a scalar standing for itself


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
        raw, size = index_bytes_and_size(fid, path)
    elif size == -1 and fid is not None:
        size = index_size(fid)
    try:
        index = load_index(raw.tobytes(), size)
    except (OSError, KeyError, ValueError, TypeError, UnicodeDecodeError, zlib.error, msgpack.UnpackException) as exc:
        raise corrupt(path, exc) from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise foreign(path, "its /index is not a storage_nodes index")
    if "root" not in index or not isinstance(index["root"], _ROOT_TYPES):
        raise corrupt(path, "the index has no root entry")
    version = index.get("format_version")
    newest = indexcodec.LOG_FORMAT_VERSION
    if not isinstance(version, int) or version > newest:
        raise StorageError(
            f"{path} uses h5 archive format {version}; this storage_nodes reads up to {newest}: upgrade it",
            path=path,
        )
    if version in indexcodec.LOG_VERSIONS:
        if log is None:
            assert fid is not None
            log = log_bytes(fid, path)
        if log.shape[0]:
            try:
                apply_log(index, log.tobytes())
            except (KeyError, ValueError, TypeError, UnicodeDecodeError, msgpack.UnpackException) as exc:
                raise corrupt(path, f"its index log does not fit its index ({type(exc).__name__}: {exc})") from None
            if index.get("format") != FORMAT or index.get("format_version") != version:
                raise corrupt(path, "its index log changes the format of the file")
            if "root" not in index or not isinstance(index["root"], _ROOT_TYPES):
                raise corrupt(path, "its index log leaves no root entry")
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
        self._vfd: int | None = -2  # the descriptor HDF5 reads through (-2: not asked yet)

    @property
    def fid(self) -> h5f.FileID:
        """The HDF5 file id (for a file read without HDF5, opened on first use: only what the
        bytes read did not hold needs it)."""
        if self._fid is None:
            try:
                fid = open_readonly(self.path)
            except (OSError, ValueError) as exc:
                raise corrupt(self.path, exc) from None
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
                raise corrupt(self.path, exc) from None

    def prefetch_all(self) -> None:
        """Read each heap segment whole on its first use (for a full load)."""
        self._whole = True

    def _read_whole(self, name: str) -> np.ndarray:
        if not isinstance(name, str) or not name.startswith("heap_"):
            raise corrupt(self.path, f"{name!r} is not a heap segment")
        try:
            data = self._heaps[name] = read_bytes(self.fid, name)
        except (KeyError, OSError, ValueError, TypeError) as exc:
            raise corrupt(self.path, f"cannot read heap segment {name!r}: {exc}") from None
        return data

    def heap(self, s: list[Any]) -> np.ndarray:
        try:
            name, offset, nbytes = s
            offset, nbytes = int(offset), int(nbytes)
        except (TypeError, ValueError) as exc:
            raise corrupt(self.path, exc) from None
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
                    raise corrupt(self.path, exc) from None
        if out.shape[0] != nbytes or offset < 0:
            raise corrupt(self.path, f"heap slice {name}[{offset}:+{nbytes}] lies outside the heap")
        return out

    def _dataset(self, name: str) -> h5py.Dataset:
        try:
            ds = self.f[name]
        except (KeyError, OSError, ValueError, TypeError) as exc:
            raise corrupt(self.path, f"missing dataset {name!r}: {exc}") from None
        if not isinstance(ds, h5py.Dataset):
            raise corrupt(self.path, f"{name!r} is not a dataset")
        if name.startswith("heap_") and name not in self._checked:
            stored = ds.id.get_storage_size()
            if ds.dtype != np.uint8 or len(ds.shape) != 1 or stored < ds.shape[0]:
                raise corrupt(
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
        if not isinstance(name, str):
            raise corrupt(self.path, f"{name!r} is not a dataset name")
        try:  # the low-level id: a high-level handle costs ~0.1 ms more to make and close
            dsid = h5d.open(self.fid, name.encode())
        except (KeyError, OSError, ValueError, TypeError) as exc:
            raise corrupt(self.path, f"missing dataset {name!r}: {exc}") from None
        if tuple(dsid.shape) != tuple(shape) or dsid.dtype.itemsize != dtype.itemsize or dsid.dtype.kind != dtype.kind:
            raise corrupt(
                self.path,
                f"dataset {name!r} is {dsid.dtype}{list(dsid.shape)}, but the index says {dtype}{list(shape)}",
            )
        if name.startswith("heap_") and name not in self._checked:
            self._dataset(name)  # a heap segment read as an array: the same checks as for its slices
        try:
            if self._vfd == -2:
                self._vfd = vfd_of(self.fid)
            direct = read_contiguous(dsid, self._vfd)
            return direct if direct is not None else np.asarray(h5py.Dataset(dsid)[()])
        except (OSError, ValueError, TypeError) as exc:
            raise corrupt(self.path, exc) from None

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
    raw, size = index_bytes_and_size(fid, path)
    index = read_index(fid, path, raw, size=size)
    if identity is not None and raw.nbytes <= _INDEX_CACHE_MAX_BYTES:
        _keep_index(identity, index)
    return index


def open_readonly(path: Path) -> h5f.FileID:
    """HDF5's read-only file id of ``path``, with or without HDF5's own locks (:mod:`.locking`)."""
    name = os.fsencode(path)
    return locking.locked_open(
        path, lambda locks: h5f.open(name, h5f.ACC_RDONLY, fapl=None if locks else plist("read-unlocked"))
    )


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
                fid = open_readonly(path)
            except FileNotFoundError:
                raise
            except (OSError, ValueError) as exc:
                raise corrupt(path, exc) from None
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
        data = os.read(fd, min(st.st_size + 1, image.HEAD_BYTES))
        if not image.may_be_image(data):  # (a file with datasets: not read whole for nothing)
            return None
        if len(data) < st.st_size + 1:
            data += os.read(fd, st.st_size + 1 - len(data))
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
