"""Partial updates of h5 archives (the I/O around :mod:`.edits`), crash-safe and serialised between writers.

Under :func:`storage_nodes.atomic.writer_lock` the file is updated in place through the undo
journal of :mod:`.journal` (new heap segment and arrays appended, the change of the index
appended to ``/index_log``, datasets of the replaced entry deleted); where that is not
possible, a copy beside it is modified (the whole index rewritten) and moved over the original
with ``os.replace``. A crash leaves the old file or the new one. When the file has grown beyond
twice its live data plus 1 MiB, the update compacts it on the way (:mod:`.compaction`).
"""

from __future__ import annotations

import collections
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ...atomic import atomic_path, ensure_space, writer_lock
from ...errors import CorruptFileError, KeyNotFoundError, NoSpaceError, StorageError
from ...keys import split
from ...provenance.metadata import ObjectCollector, environment_record
from . import codec, datasets, edits, indexcodec, journal, locking, reader, tree
from .compaction import Resources, compact_into, compact_over, outgrown, resources
from .edits import Edit, Names, Op
from .encoder import Encoder

__all__ = ["update", "update_many"]


class _BatchHeap:
    """The one heap segment of an update: the heaps of its encodings, one after the other
    (each at a multiple of 16 bytes, so that arrays stay aligned), written when all are in."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.parts: list[np.ndarray] = []
        self.size = 0

    def add(self, node: Any, heap: np.ndarray | None) -> None:
        """Append an encoding's ``heap``; the references of ``node``'s tree into it are moved along."""
        if heap is None:
            return
        shift = self.size
        if shift and isinstance(node, dict):
            seen: set[int] = set()
            for n in tree.walk(node):
                h = n.get("h")
                if h is not None and h[0] == self.name and id(h) not in seen:
                    seen.add(id(h))
                    h[1] += shift
        self.parts.append(heap)
        pad = -heap.shape[0] % 16
        if pad:
            self.parts.append(np.zeros(pad, dtype=np.uint8))
        self.size += heap.shape[0] + pad

    def slice(self, h: list[Any]) -> np.ndarray:
        data = self.parts[0] if len(self.parts) == 1 else np.concatenate(self.parts)
        return data[int(h[1]) : int(h[1]) + int(h[2])]

    def write(self, f: h5py.File, counts: Resources) -> None:
        """Write the segment, if anything of the index refers to it."""
        if self.parts and counts.heaps.get(self.name, 0) > 0:
            data = self.parts[0] if len(self.parts) == 1 else np.concatenate(self.parts)
            datasets.write_data(f.id, self.name, data, [], None)


def _apply(
    f: h5py.File,
    index: dict[str, Any],
    obj: Any,
    path: Path,
    key: str,
    options: dict[str, Any],
    counts: Resources | None,
    ops: list[Op],
    names: Names | None,
    collector: ObjectCollector,
    heap: _BatchHeap,
) -> Resources:
    """Write ``obj`` at ``key`` into ``f`` and ``index`` (its objects added to ``collector``):
    the resources after; the changes made to ``index`` are added to ``ops``, ``names`` (kept
    with ``index``) speeds up finding names in big dict nodes.

    ``counts`` are the resources of ``index`` before, when known: they are then updated by the
    replaced and the new subtree only (else the whole tree is counted)."""
    target = edits.locate(
        index,
        obj,
        path,
        key,
        overwrite=options.get("overwrite", True),
        ops=ops,
        names=names,
        unpack=_unpacker(f, path, index, heap),
    )
    encoder = Encoder(
        heap_name=heap.name,
        array_prefix="array_",
        next_array=index["next_array"],
        next_id=index["next_id"],
        classes=index["classes"],
        collector=collector,
        compression=options.get("compression") or None,
    )
    enc = encoder.encode(target.value, target.prefix)
    heap.add(enc.node, enc.heap)
    edits.put(index, target, enc.node, next_id=encoder.next_id, next_array=encoder.next_array, ops=ops)
    if enc.arrays:
        datasets.write_data(f.id, heap.name, None, enc.arrays, options.get("compression") or None)
    # only what the replaced entry referred to can have become unreferenced (not a walk of
    # every dataset of the file: appends would cost time in proportion to the entries)
    if counts is None:
        counts = resources(index["root"])
    else:  # the old subtree out, the new one in (its references are to its own objects only)
        if isinstance(target.old, dict):
            counts.add(target.old, -1)
        if isinstance(enc.node, dict):
            counts.add(enc.node)
    _drop(f, counts, target.old)
    return counts


def _unpacker(f: h5py.File, path: Path, index: dict[str, Any], heap: _BatchHeap) -> Callable[[list[Any]], Any]:
    """What unpacks a packed blob (also one written by this update, still in ``heap``)."""

    def unpack(h: list[Any]) -> Any:
        if h[0] == heap.name:
            return codec.unpack(heap.slice(h))
        return codec.unpack(reader.Reader(f.id, path, index).heap(h))

    return unpack


def _drop(f: h5py.File, counts: Resources, old: Any) -> None:
    """Delete the datasets only the replaced or removed subtree ``old`` referred to."""
    for name in counts.release(old):
        if name in f:
            del f[name]


def _apply_all(
    f: h5py.File,
    index: dict[str, Any],
    changes: list[Edit],
    path: Path,
    options: dict[str, Any],
    counts: Resources | None,
    ops: list[Op],
    names: Names | None,
) -> tuple[ObjectCollector, Resources, bool]:
    """Apply the edits ``changes`` in order (see :func:`_apply`): (their objects, the resources
    after, whether an entry was taken out of its container, so that the index must be written
    whole)."""
    collector = ObjectCollector()
    removed = False
    heap = _BatchHeap(f"heap_{index['next_heap']}")
    for key, value in changes:
        if value is not edits.DELETE:
            counts = _apply(f, index, value, path, key, options, counts, ops, names, collector, heap)
            continue
        removal = edits.remove(index, path, key, names=names, unpack=_unpacker(f, path, index, heap))
        if removal.rewrite is not None:  # inside packed plain data: stored again without it
            plain_key, plain = removal.rewrite
            overwrite = {**options, "overwrite": True}
            counts = _apply(f, index, plain, path, plain_key, overwrite, counts, ops, names, collector, heap)
            continue
        removed = True
        if counts is None:
            counts = resources(index["root"])
        else:
            counts.add(removal.old, -1)
        _drop(f, counts, removal.old)
    if counts is None:
        counts = resources(index["root"])
    heap.write(f, counts)
    return collector, counts, removed


#: the index log of a file updated in place is folded into a new ``/index`` when it would grow
#: beyond this share of the index's decompressed size (or LOG_MIN_BYTES, if more): each fold
#: rewrites the index once per that many bytes of changes, so appends cost linear total time,
#: and a reader decodes at most a quarter more than the index (2 KiB more for small ones)
LOG_SHARE = 0.25
LOG_MIN_BYTES = 1 << 11


@dataclass
class Stored:
    """The index as an archive updated in place holds it: ``/index`` (its compressed bytes,
    decompressed size, format version) and ``/index_log``."""

    base: bytes
    size: int | None
    version: int | None
    log: bytes


def _modify_index(
    f: h5py.File,
    index: dict[str, Any],
    changes: list[Edit],
    path: Path,
    metadata: dict[str, Any],
    options: dict[str, Any],
    counts: Resources | None = None,
    stored: Stored | None = None,
    names: Names | None = None,
) -> tuple[Resources, Stored]:
    """Apply the edits ``changes`` to the open archive ``f`` and its ``index``: (the resources
    after, what the file holds of the index after).

    ``stored``: the index as the file holds it, for an update in place: the change is then
    appended to ``/index_log`` (or, for a format-2 file or a log grown too long, the whole index
    is rewritten as format 3); without it the whole index is rewritten as format 2."""
    ops: list[Op] = []
    try:
        collector, counts, removed = _apply_all(f, index, changes, path, options, counts, ops, names)
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        if isinstance(exc, StorageError):
            raise
        raise CorruptFileError(
            f"{path} has a damaged index ({type(exc).__name__}: {exc})",
            path=path,
            key=changes[0][0] if len(changes) == 1 else None,
        ) from None
    version = indexcodec.FORMAT_VERSION if stored is None else indexcodec.LOG_FORMAT_VERSION
    env = environment_record(collector.objects, backend="h5", format_version=version)
    keys = [k for k, _ in changes]
    edits.note_update(index, env, keys[0] if keys else "", metadata, ops, keys)
    if stored is not None and stored.version == indexcodec.LOG_FORMAT_VERSION and not removed:
        change = indexcodec.pack_change(ops)
        if len(stored.log) + len(change) <= max(LOG_MIN_BYTES, LOG_SHARE * (stored.size or 0)):
            datasets.append_log(f.id, change)
            return counts, Stored(stored.base, stored.size, stored.version, stored.log + change)
    raw, size = datasets.write_index(f, index, version=version)
    return counts, Stored(raw.tobytes(), size, version, b"")


def _unreadable(path: Path, exc: OSError) -> CorruptFileError:
    return CorruptFileError(f"cannot update {path}: it is not a readable h5 archive ({exc})", path=path)


#: the index each archive was last updated with in place by this process, and what the file
#: holds of it: the next update of the file compares the bytes stored with these instead of
#: decoding them (appends to one archive would else decode an ever larger index each time)
_WRITTEN: collections.OrderedDict[str, tuple[Stored, dict[str, Any], Resources, Names]] = collections.OrderedDict()
_WRITTEN_LOCK = threading.Lock()
_WRITTEN_ITEMS = 4
_WRITTEN_MAX_BYTES = 1 << 22


def _known_index(f: h5py.File, path: Path) -> tuple[dict[str, Any], Resources | None, Stored, Names]:
    """The index of the open archive, its resources, what the file holds of it and the names
    kept with it; index, resources and names are taken from :data:`_WRITTEN` when the file
    holds exactly the bytes remembered (handed over: the caller modifies them), else the index
    is decoded (the resources are then ``None``, the names empty)."""
    raw, size = datasets.index_bytes_and_size(f.id, path)
    log = datasets.log_bytes(f.id, path)
    with _WRITTEN_LOCK:
        known = _WRITTEN.pop(os.fspath(path), None)
    if known is not None and known[0].base == raw.tobytes() and known[0].log == log.tobytes():
        return known[1], known[2], known[0], known[3]
    index = reader.read_index(f.id, path, raw, log, size=size)
    version = index.get("format_version")
    stored = Stored(raw.tobytes(), size, version if isinstance(version, int) else None, log.tobytes())
    return index, None, stored, {}


def _remember(path: Path, stored: Stored, index: dict[str, Any], counts: Resources, names: Names) -> None:
    if len(stored.base) + len(stored.log) > _WRITTEN_MAX_BYTES:
        return
    with _WRITTEN_LOCK:
        _WRITTEN[os.fspath(path)] = (stored, index, counts, names)
        _WRITTEN.move_to_end(os.fspath(path))
        while len(_WRITTEN) > _WRITTEN_ITEMS:
            _WRITTEN.popitem(last=False)


def _forget(path: Path) -> None:
    with _WRITTEN_LOCK:
        _WRITTEN.pop(os.fspath(path), None)


def _failed(path: Path, exc: OSError) -> StorageError:
    """A failed write of an in-place update (undone before this is raised)."""
    if isinstance(exc, StorageError):
        return exc
    return StorageError(f"cannot update {path}: {exc}; the file is as it was before", path=path)


def _in_place(changes: list[Edit], path: Path, metadata: dict[str, Any], options: dict[str, Any]) -> int | None:
    """Update ``path`` in place through an undo journal (see :mod:`.journal`): the live bytes
    after the update, or ``None`` when it must be done by copying (nothing changed then)."""
    if not journal.supported() or path.is_symlink():
        return None
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None  # the copy path reports what is wrong
    try:
        base = journal.stored_eoa(fd)
        if base is None:
            return None
        jf = journal.JournaledFile(path, fd, base)
        try:
            with h5py.File(jf, "r+") as f:
                index, counts, stored, names = _known_index(f, path)
                if stored.version not in (indexcodec.FORMAT_VERSION, indexcodec.LOG_FORMAT_VERSION):
                    raise journal.Busy("an older format version is rewritten whole, by copying")
                counts, stored = _modify_index(f, index, changes, path, metadata, options, counts, stored, names)
        except BaseException as exc:
            jf.abandon()
            if isinstance(exc, journal.Busy) or jf.overflow:
                return None
            if jf.error is not None and not isinstance(exc, StorageError):
                raise _failed(path, jf.error) from jf.error  # what the file system said, not HDF5's echo
            if isinstance(exc, OSError) and not isinstance(exc, StorageError):
                raise _unreadable(path, exc) from None
            raise
        try:
            jf.commit(durable=bool(options.get("durable", False)))
        except journal.Busy:
            jf.abandon()
            return None
        except OSError as exc:
            jf.abandon()
            raise _failed(path, exc) from exc
        except BaseException:
            jf.abandon()
            raise
        _remember(path, stored, index, counts, names)
        return counts.live
    finally:
        os.close(fd)


def update(
    write: Callable[..., None], obj: Any, path: Path, *, key: str, metadata: dict[str, Any], options: dict[str, Any]
) -> None:
    """Replace or add the entry ``key`` of ``path`` (creating the file if missing, with ``write``:
    the backend's ``write(obj, path, *, metadata, options)``)."""
    update_many(write, [(key, obj)], path, metadata=metadata, options=options)


def _new_value(changes: list[Edit], path: Path) -> Any:
    """The object a missing file gets from ``changes``: the keys set in nested dicts."""
    value: Any = {}
    for key, obj in changes:
        segments = split(key)
        if obj is edits.DELETE:
            try:
                value = edits.del_plain(value, segments) if segments else {}
            except (KeyError, IndexError, ValueError, TypeError):
                raise KeyNotFoundError(
                    f"cannot delete {key!r} from {path}: there is no such entry", path=path, key=key
                ) from None
        else:
            value = edits.set_plain(value, segments, obj)
    return value


def update_many(
    write: Callable[..., None], changes: list[Edit], path: Path, *, metadata: dict[str, Any], options: dict[str, Any]
) -> None:
    """Apply the edits ``changes`` (``(key, value)``, or ``(key, edits.DELETE)``) to ``path`` in
    order, as ONE update: a crash or an error leaves the file as it was before all of them
    (creating the file if missing, with ``write``: the backend's ``write(obj, path, *,
    metadata, options)``)."""
    durable = bool(options.get("durable", False))
    with writer_lock(path):
        if not path.exists():
            value = _new_value(changes, path)
            with atomic_path(path, durable=durable) as tmp:
                write(value, tmp, metadata=metadata, options=options)
            return
        journal.tidy(path)
        live = _in_place(changes, path, metadata, options)
        if live is not None:
            if outgrown(path, live):
                try:
                    ensure_space(path, live)
                except NoSpaceError:
                    return  # compaction only reclaims space: the update stands without it
                with atomic_path(path, durable=durable) as tmp:
                    compact_into(path, tmp)
                _forget(path)  # the compacted index is another one
            return
        with atomic_path(path, durable=durable) as tmp:
            shutil.copyfile(path, tmp)
            try:
                copy = locking.locked_open(tmp, lambda locks: h5py.File(tmp, "r+", locking=None if locks else False))
                with copy as f:
                    index = reader.read_index(f.id, path)
                    live = _modify_index(f, index, changes, path, metadata, options)[0].live
            except StorageError:
                raise
            except OSError as exc:
                raise _unreadable(path, exc) from None
            if outgrown(tmp, live):
                try:
                    ensure_space(tmp, live)
                except NoSpaceError:
                    pass  # compaction only reclaims space: the update stands without it
                else:
                    compact_over(tmp)
