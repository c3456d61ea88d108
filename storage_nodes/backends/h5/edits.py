"""Partial updates and compaction of h5 archives, crash-safe and serialised between writers.

Under :func:`storage_nodes.atomic.writer_lock` the file is updated in place through the undo
journal of :mod:`.journal` (new heap segment and arrays appended, the change of the index
appended to ``/index_log``, datasets of the replaced entry deleted); where that is not
possible, a copy beside it is modified (the whole index rewritten) and moved over the original
with ``os.replace``. A crash leaves the old file or the new one. When the file has grown beyond
twice its live data plus 1 MiB, the update compacts it on the way (:func:`compact` does so on
demand).
"""

from __future__ import annotations

import collections
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py

from ...atomic import atomic_path, ensure_space, writer_lock
from ...errors import (
    CorruptFileError,
    FileExistsStorageError,
    KeyNotFoundError,
    NoSpaceError,
    StorageError,
    UnsupportedOperationError,
)
from ...keys import child as py_child
from ...keys import escape, split
from ...provenance.metadata import ObjectCollector, environment_record, merge_records
from . import codec, datasets, indexcodec, journal, reader, tree
from .compaction import Resources, compact_into, compact_over, outgrown, resources
from .encoder import Encoder

if TYPE_CHECKING:
    from . import H5Backend

__all__ = ["update"]

MISSING = object()  # a slot that has no entry yet (None is a stored value)


#: one change of the index: ``[path, value]``, the path a list of map keys and array positions
#: from the top of the index (docs/format.md, section *The index log*)
Op = list[Any]


class _Slot:
    """Where a node sits: read and replace it in its parent; ``path`` is where the node is in the
    index (a replacement is recorded in ``ops`` as the change to write to the index log)."""

    def __init__(self, get: Callable[[], Any], put: Callable[[Any], None], path: list[Any]) -> None:
        self.get = get
        self.put = put
        self.path = path


class _Names:
    """Where each name first sits in the items of a dict node: among the ``[name, node]`` items
    (str keys) and among all items (also ``[name, node, key node]``)."""

    def __init__(self, items: list[list[Any]]) -> None:
        self.items = items  # (kept alive, so that its id is not reused)
        self.count = len(items)
        self.str_keys: dict[Any, int] = {}
        self.any_keys: dict[Any, int] = {}
        for i, it in enumerate(items):
            self.add(it, i)

    def add(self, item: list[Any], i: int) -> None:
        if len(item) == 2:
            self.str_keys.setdefault(item[0], i)
        self.any_keys.setdefault(item[0], i)


#: a dict node of at least this many items is searched through a :class:`_Names` kept with the
#: index between updates (appends to a dict of many entries would else scan it each time)
_NAMES_MIN = 64
#: the :class:`_Names` of an index's dict nodes, by the id of their items list
Names = dict[int, _Names]


def _position(items: list[list[Any]], segment: str, names: Names | None) -> int | None:
    """The position of the item named ``segment`` (a str key first, then any key); ``names``:
    those kept with the index (``None``: search ``items``)."""
    if names is None or len(items) < _NAMES_MIN:
        pos = next((i for i, it in enumerate(items) if it[0] == segment and len(it) == 2), None)
        if pos is None:
            pos = next((i for i, it in enumerate(items) if it[0] == segment), None)
        return pos
    found = names.get(id(items))
    if found is None or found.items is not items or found.count != len(items):
        found = names[id(items)] = _Names(items)
    pos = found.str_keys.get(segment)
    return found.any_keys.get(segment) if pos is None else pos


def _appended(items: list[list[Any]], names: Names | None) -> None:
    """Keep the names of ``items`` (if known) up to date after an item was appended."""
    found = None if names is None else names.get(id(items))
    if found is not None and found.items is items and found.count == len(items) - 1:
        found.add(items[-1], found.count)
        found.count += 1


def _slot_in(parent: dict[str, Any], at: list[Any], segment: str, ops: list[Op], names: Names | None) -> _Slot | None:
    """The slot named ``segment`` in a container node at index path ``at`` (created on put when
    missing)."""
    k = tree.kind(parent)
    if k == "d":
        items = parent["items"]
        pos = _position(items, segment, names)

        def put_d(node: dict[str, Any]) -> None:
            if pos is None:
                ops.append([[*at, "items", len(items)], [segment, node]])
                items.append([segment, node])
                _appended(items, names)
            else:
                ops.append([[*at, "items", pos, 1], node])
                items[pos][1] = node

        place = [*at, "items", len(items) if pos is None else pos, 1]
        return _Slot(lambda: items[pos][1] if pos is not None else MISSING, put_d, place)
    if k in ("l", "t", "oa"):
        items = parent["items"]
        try:
            i = int(segment)
        except ValueError:
            return None
        if not -len(items) <= i <= len(items) or (k != "l" and i == len(items)):
            return None
        if i < 0:
            i += len(items)

        def put_l(node: dict[str, Any]) -> None:
            ops.append([[*at, "items", i], node])
            if i == len(items):
                items.append(node)
            else:
                items[i] = node

        return _Slot(lambda: items[i] if i < len(items) else MISSING, put_l, [*at, "items", i])
    if k == "o":
        for field in ("attrs", "slots"):
            for p, pair in enumerate(parent.get(field, ())):
                if pair[0] == segment:
                    place = [*at, field, p, 1]

                    def put_o(node: dict[str, Any], pair: list[Any] = pair, place: list[Any] = place) -> None:
                        ops.append([place, node])
                        pair[1] = node

                    def get_o(pair: list[Any] = pair) -> dict[str, Any]:
                        return pair[1]

                    return _Slot(get_o, put_o, place)
        if "state" in parent:
            return None
        had = "attrs" in parent
        attrs = parent.setdefault("attrs", [])

        def put_a(node: dict[str, Any]) -> None:
            if had:
                ops.append([[*at, "attrs", len(attrs)], [segment, node]])
            else:
                ops.append([[*at, "attrs"], [[segment, node]]])
            attrs.append([segment, node])

        return _Slot(lambda: MISSING, put_a, [*at, "attrs", len(attrs), 1])
    return None


def _walk_paths(node: Any, at: list[Any]) -> Iterator[tuple[dict[str, Any], list[Any]]]:
    """(node, index path) of this node and every node below it: the nodes of :func:`tree.walk`."""
    stack = [(node, at)]
    while stack:
        n, here = stack.pop()
        if type(n) is not dict:
            continue
        yield n, here
        k = n["k"]
        if k == "d":
            for i, item in enumerate(n["items"]):
                stack.append((item[1], [*here, "items", i, 1]))
                if len(item) == 3:
                    stack.append((item[2], [*here, "items", i, 2]))
        elif k in ("l", "t", "s", "f", "oa"):
            stack.extend((c, [*here, "items", i]) for i, c in enumerate(n["items"]))
        elif k == "o":
            for field in ("args", "kw", "li", "di", "state"):
                if field in n:
                    stack.append((n[field], [*here, field]))
            for field in ("attrs", "slots"):
                stack.extend((pair[1], [*here, field, i, 1]) for i, pair in enumerate(n.get(field, ())))
        elif k == "m":
            stack.append((n["self"], [*here, "self"]))


def _plain_has(value: Any, segments: list[str]) -> bool:
    try:
        for segment in segments:
            value = py_child(value, segment)
    except (KeyError, IndexError, TypeError):
        return False
    return True


def _set_plain(value: Any, segments: list[str], obj: Any) -> Any:
    """Set ``obj`` at ``segments`` inside plain data ``value`` (dicts created as needed)."""
    if not segments:
        return obj
    head, rest = segments[0], segments[1:]
    if isinstance(value, dict):
        key: Any = head
        if head not in value:
            key = next((k for k in value if not isinstance(k, str) and str(k) == head), head)
        value[key] = _set_plain(value.get(key, {}) if rest else None, rest, obj)
        return value
    if isinstance(value, list):
        i = int(head)
        if i == len(value):
            value.append(_set_plain({}, rest, obj))
        else:
            value[i] = _set_plain(value[i], rest, obj)
        return value
    if type(value) is tuple:  # stored data, not the tuple itself: a new tuple with the item replaced
        items = list(value)
        i = int(head)
        items[i] = _set_plain(items[i], rest, obj)
        return tuple(items)
    raise KeyError(head)


def _apply(
    f: h5py.File,
    index: dict[str, Any],
    obj: Any,
    path: Path,
    key: str,
    options: dict[str, Any],
    counts: Resources | None,
    ops: list[Op],
    names: Names | None = None,
) -> tuple[ObjectCollector, Resources]:
    """Write ``obj`` at ``key`` into ``f`` and ``index``: (its objects, the resources after);
    the changes made to ``index`` are added to ``ops``, ``names`` (kept with ``index``) speeds
    up finding names in big dict nodes.

    ``counts`` are the resources of ``index`` before, when known: they are then updated by the
    replaced and the new subtree only (else the whole tree is counted)."""
    segments = split(key)
    root = index["root"]
    ids: dict[int, tuple[dict[str, Any], list[Any]]] = {}

    def resolve(n: dict[str, Any], at: list[Any]) -> tuple[dict[str, Any], list[Any]]:
        if tree.kind(n) == "r" and not ids:  # the definitions, found on the first reference met
            ids.update((m["id"], (m, p)) for m, p in _walk_paths(root, ["root"]) if "id" in m)
        for _ in range(len(ids) + 1):  # a damaged index may chain references in a loop
            if tree.kind(n) != "r":
                return n, at
            n, at = ids[n["to"]]
        raise KeyError(f"shared reference #{n['to']} leads to itself")

    holder = {"root": root}

    def put_root(n: Any) -> None:
        ops.append([["root"], n])
        holder["root"] = n

    slot = _Slot(lambda: holder["root"], put_root, ["root"])
    value: Any = obj
    place = 0  # how many segments lead to the slot being replaced
    for i, segment in enumerate(segments):
        current = slot.get()
        if current is MISSING:  # a missing level: build the rest as nested dicts
            value = _set_plain({}, segments[i:], obj)
            break
        current, at = resolve(current, slot.path)
        if tree.kind(current) == "p" or (
            tree.kind(current) == "v" and type(current) is dict and type(current["v"]) in (dict, list)
        ):
            # inside packed plain data (or a small list/dict in the index): set, re-encode all of it
            if current["k"] == "p":
                plain = codec.unpack(reader.Reader(f.id, path, index).heap(current["h"]))
            else:  # (a copy: the node itself stays as it is, as a packed blob does; it matters
                # when it was reached through a shared reference, and for the index log)
                plain = type(current["v"])(current["v"])
            if not options.get("overwrite", True) and _plain_has(plain, segments[i:]):
                raise _exists(path, key)
            try:
                value = _set_plain(plain, segments[i:], obj)
            except (KeyError, IndexError, ValueError, TypeError):
                raise _plain_failure(path, key, plain, segments[:i], segments[i:]) from None
            break
        nxt = _slot_in(current, at, segment, ops, names)
        if nxt is None:
            what, length = _node_type(current, index["classes"])
            raise _cannot(path, key, segments[:i], what, segment, length)
        slot = nxt
        place = i + 1
    else:
        if slot.get() is not MISSING and not options.get("overwrite", True):
            raise _exists(path, key)
    old = slot.get()
    if old is not MISSING:
        defined = {n["id"] for n in tree.walk(old) if "id" in n}
        if defined:
            inside = sum(1 for n in tree.walk(old) if n["k"] == "r" and n["to"] in defined)
            total = sum(1 for n in tree.walk(root) if n["k"] == "r" and n["to"] in defined)
            if total > inside:
                raise UnsupportedOperationError(
                    f"cannot replace {key!r} in {path}: objects inside it are shared with other entries; "
                    "save the whole object again instead",
                    path=path,
                    key=key,
                )
    collector = ObjectCollector()
    classes_before = len(index["classes"])
    before = {name: index[name] for name in ("next_id", "next_heap", "next_array")}
    heap_name = f"heap_{index['next_heap']}"
    encoder = Encoder(
        heap_name=heap_name,
        array_prefix="array_",
        next_array=index["next_array"],
        next_id=index["next_id"],
        classes=index["classes"],
        collector=collector,
        compression=options.get("compression") or None,
    )
    enc = encoder.encode(value, "/".join(escape(s) for s in segments[:place]))
    for n in tree.walk(enc.node) if isinstance(enc.node, dict) else ():
        if n["k"] == "v" and type(n["v"]) in (list, dict):
            # short flat lists and dicts go into the index as they are: copy them, since this
            # index may be kept for the next update (_known_index) and the caller may change them
            n["v"] = type(n["v"])(n["v"])
    slot.put(enc.node)
    index["root"] = holder["root"]
    index["next_id"] = encoder.next_id
    index["next_heap"] += 1
    index["next_array"] = encoder.next_array
    ops.extend([["classes", i], index["classes"][i]] for i in range(classes_before, len(index["classes"])))
    ops.extend([[name], index[name]] for name, was in before.items() if index[name] != was)
    datasets.write_data(f.id, heap_name, enc.heap, enc.arrays, options.get("compression") or None)
    # only what the replaced entry referred to can have become unreferenced (not a walk of
    # every dataset of the file: appends would cost time in proportion to the entries)
    dropped = resources(old) if old is not MISSING and isinstance(old, dict) else Resources()
    if counts is None:
        counts = resources(index["root"])
    else:  # the old subtree out, the new one in (its references are to its own objects only)
        if old is not MISSING and isinstance(old, dict):
            counts.add(old, -1)
        if isinstance(enc.node, dict):
            counts.add(enc.node)
    gone = [n for n in dropped.heaps if counts.heaps[n] <= 0] + [n for n in dropped.arrays if counts.arrays[n] <= 0]
    for name in sorted(gone):
        counts.heaps.pop(name, None)
        counts.arrays.pop(name, None)
        if name in f:
            del f[name]
    return collector, counts


def _cannot(path: Path, key: str, walked: list[str], what: str, segment: str, length: int | None) -> KeyNotFoundError:
    """Why ``segment`` cannot be set below the entry at ``walked`` (a ``what`` of ``length`` items)."""
    here = "/".join(escape(s) for s in walked)
    where = repr(here) if here else "the root"
    a = "an" if what[:1] in ("a", "e", "i", "o", "u") else "a"
    if length is not None:
        last = length if what == "list" else length - 1
        detail = (
            f"{where} is {a} {what} of {length} item{'' if length == 1 else 's'} and {segment!r} is not an "
            f"index from {-length} to {last}" + (f" ({length} appends an item)" if what == "list" else "")
        )
    else:
        detail = (
            f"{where} is {a} {what}, which has no entries to replace one by one; "
            f"save the whole {what} with key={here!r} instead"
        )
    return KeyNotFoundError(
        f"cannot update {key!r} in {path}: {detail}; see storage_nodes.inspect({str(path)!r})",
        path=path,
        key=key,
    )


def _node_type(node: Any, classes: list[list[str]]) -> tuple[str, int | None]:
    """(type name, item count of an indexable container or None) of an index node, for errors."""
    k = tree.kind(node)
    what = tree.type_name(node, classes)
    if k == "o":
        what += " (its state is not a set of attributes)"
    return what, (len(node["items"]) if k in ("l", "t", "oa") else None)


def _plain_failure(path: Path, key: str, value: Any, walked: list[str], segments: list[str]) -> KeyNotFoundError:
    """The error for setting ``segments`` inside plain ``value`` (what :func:`_set_plain` refused)."""
    walked = list(walked)
    for segment in segments:
        t = type(value)
        if t is dict:
            found = segment if segment in value else next((k for k in value if str(k) == segment), None)
            if found is None:
                break  # a missing dict key is created: the failure lies below it
            value = value[found]
        elif t is list or t is tuple:
            try:
                i = int(segment)
                value = value[i]
            except (ValueError, IndexError):
                return _cannot(path, key, walked, t.__name__, segment, len(value))
        else:
            return _cannot(path, key, walked, t.__name__, segment, None)
        walked.append(segment)
    return _cannot(path, key, walked, type(value).__name__, segments[-1], None)


def _exists(path: Path, key: str) -> FileExistsStorageError:
    return FileExistsStorageError(
        f"{path} already has an entry {key!r} and overwrite=False; pass overwrite=True to replace it",
        path=path,
        key=key,
    )


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
    obj: Any,
    path: Path,
    key: str,
    metadata: dict[str, Any],
    options: dict[str, Any],
    counts: Resources | None = None,
    stored: Stored | None = None,
    names: Names | None = None,
) -> tuple[Resources, Stored]:
    """Write the entry into the open archive ``f`` and change its ``index``: (the resources
    after, what the file holds of the index after).

    ``stored``: the index as the file holds it, for an update in place: the change is then
    appended to ``/index_log`` (or, for a format-2 file or a log grown too long, the whole index
    is rewritten as format 3); without it the whole index is rewritten as format 2."""
    ops: list[Op] = []
    try:
        collector, counts = _apply(f, index, obj, path, key, options, counts, ops, names)
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        if isinstance(exc, StorageError):
            raise
        raise CorruptFileError(
            f"{path} has a damaged index ({type(exc).__name__}: {exc})", path=path, key=key
        ) from None
    version = indexcodec.FORMAT_VERSION if stored is None else indexcodec.LOG_FORMAT_VERSION
    env = environment_record(collector.objects, backend="h5", format_version=version)
    if not isinstance(index.get("environment"), dict):
        index["environment"] = {}
        ops.append([["environment"], index["environment"]])
    stored_env = index["environment"]
    # earlier modules and their source hashes stay; this update's modules are added
    modules = merge_records(stored_env, env)["modules"]
    if isinstance(stored_env.get("modules"), dict):
        for name in env.get("modules") or {}:
            if stored_env["modules"].get(name) != modules[name]:
                ops.append([["environment", "modules", name], modules[name]])
    else:
        ops.append([["environment", "modules"], modules])
    stored_env["modules"] = modules
    if not isinstance(index.get("metadata"), dict):
        index["metadata"] = {}
        ops.append([["metadata"], index["metadata"]])
    index["metadata"].update(metadata)
    ops.extend([["metadata", name], value] for name, value in metadata.items())
    note: dict[str, Any] = {"key": key, "timestamp": env["timestamp"], "storage_nodes": env["storage_nodes"]}
    if metadata:
        note["metadata"] = metadata
    if isinstance(index.get("updates"), list):
        ops.append([["updates", len(index["updates"])], note])
        index["updates"].append(note)
    else:
        index["updates"] = [note]
        ops.append([["updates"], index["updates"]])
    if stored is not None and stored.version == indexcodec.LOG_FORMAT_VERSION:
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
    raw = datasets.index_bytes(f.id, path)
    log = datasets.log_bytes(f.id, path)
    with _WRITTEN_LOCK:
        known = _WRITTEN.pop(os.fspath(path), None)
    if known is not None and known[0].base == raw.tobytes() and known[0].log == log.tobytes():
        return known[1], known[2], known[0], known[3]
    index = reader.read_index(f.id, path, raw, log)
    version = index.get("format_version")
    size = datasets.index_size(f.id)
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


def _in_place(obj: Any, path: Path, key: str, metadata: dict[str, Any], options: dict[str, Any]) -> int | None:
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
                counts, stored = _modify_index(f, index, obj, path, key, metadata, options, counts, stored, names)
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
    backend: H5Backend, obj: Any, path: Path, *, key: str, metadata: dict[str, Any], options: dict[str, Any]
) -> None:
    """Replace or add the entry ``key`` of ``path`` (creating the file if missing)."""
    durable = bool(options.get("durable", False))
    with writer_lock(path):
        if not path.exists():
            value = _set_plain({}, split(key), obj)
            with atomic_path(path, durable=durable) as tmp:
                backend.write(value, tmp, metadata=metadata, options=options)
            return
        journal.tidy(path)
        live = _in_place(obj, path, key, metadata, options)
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
                with h5py.File(tmp, "r+") as f:
                    index = reader.read_index(f.id, path)
                    live = _modify_index(f, index, obj, path, key, metadata, options)[0].live
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
