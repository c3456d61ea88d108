"""Pure edits of an archive's index for an update: no HDF5, no file.

An update of the entry at ``key`` finds where the new value goes (:func:`locate`: through
dict, list and object nodes, shared references, and into packed plain data, which is then
re-encoded whole), puts the encoded node there (:func:`put`) and notes the update in the
index (:func:`note_update`). Each change is also recorded as an ``[path, value]``
operation (:data:`Op`) for the index log. :mod:`.update` does the I/O around these: it
reads the index and packed blobs, encodes, writes datasets and the index or its log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import FileExistsStorageError, KeyNotFoundError, UnsupportedOperationError
from ...keys import child as py_child
from ...keys import escape, split
from ...provenance.metadata import merge_records
from . import tree

__all__ = ["MISSING", "Names", "Op", "Target", "locate", "note_update", "put", "set_plain"]

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


def set_plain(value: Any, segments: list[str], obj: Any) -> Any:
    """Set ``obj`` at ``segments`` inside plain data ``value`` (dicts created as needed)."""
    if not segments:
        return obj
    head, rest = segments[0], segments[1:]
    if isinstance(value, dict):
        key: Any = head
        if head not in value:
            key = next((k for k in value if not isinstance(k, str) and str(k) == head), head)
        value[key] = set_plain(value.get(key, {}) if rest else None, rest, obj)
        return value
    if isinstance(value, list):
        i = int(head)
        if i == len(value):
            value.append(set_plain({}, rest, obj))
        else:
            value[i] = set_plain(value[i], rest, obj)
        return value
    if type(value) is tuple:  # stored data, not the tuple itself: a new tuple with the item replaced
        items = list(value)
        i = int(head)
        items[i] = set_plain(items[i], rest, obj)
        return tuple(items)
    raise KeyError(head)


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
    """The error for setting ``segments`` inside plain ``value`` (what :func:`set_plain` refused)."""
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


@dataclass
class Target:
    """Where an update puts its value: found by :func:`locate`, filled by :func:`put`."""

    slot: _Slot
    #: the root of the index as it will be after the put (a new one when the root is replaced)
    holder: dict[str, Any]
    #: what to encode into the slot (``obj``, or the plain data or dicts it is set inside)
    value: Any
    #: the key of the slot (what the encoder names the entries below it by)
    prefix: str
    #: the node replaced, or :data:`MISSING`
    old: Any
    #: the index's class count and counters before encoding (what :func:`put` records as changed)
    classes_before: int
    counters_before: dict[str, Any]


def locate(
    index: dict[str, Any],
    obj: Any,
    path: Path,
    key: str,
    *,
    overwrite: bool,
    ops: list[Op],
    names: Names | None,
    unpack: Callable[[list[Any]], Any],
) -> Target:
    """Where ``obj`` goes to be stored at ``key`` in ``index`` (``path``: the file, for errors).

    ``unpack``: the plain data of a packed blob's heap slice (when ``key`` lies inside one);
    ``names``: those kept with ``index`` (finds names in big dict nodes); changes made on the
    way are added to ``ops``. Raises :class:`KeyNotFoundError` for a key that cannot be set,
    :class:`FileExistsStorageError` for an existing one without ``overwrite``, and
    :class:`UnsupportedOperationError` when objects inside the replaced entry are shared."""
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
            value = set_plain({}, segments[i:], obj)
            break
        current, at = resolve(current, slot.path)
        if tree.kind(current) == "p" or (
            tree.kind(current) == "v" and type(current) is dict and type(current["v"]) in (dict, list)
        ):
            # inside packed plain data (or a small list/dict in the index): set, re-encode all of it
            # (of a small list/dict a copy: the node itself stays as it is, as a packed blob does;
            # it matters when it was reached through a shared reference, and for the index log)
            plain = unpack(current["h"]) if current["k"] == "p" else type(current["v"])(current["v"])
            if not overwrite and _plain_has(plain, segments[i:]):
                raise _exists(path, key)
            try:
                value = set_plain(plain, segments[i:], obj)
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
        if slot.get() is not MISSING and not overwrite:
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
    return Target(
        slot,
        holder,
        value,
        "/".join(escape(s) for s in segments[:place]),
        old,
        len(index["classes"]),
        {name: index[name] for name in ("next_id", "next_heap", "next_array")},
    )


def put(index: dict[str, Any], target: Target, node: Any, *, next_id: int, next_array: int, ops: list[Op]) -> None:
    """Put the encoded ``node`` into ``target`` of ``index``, with the encoder's counters after
    (``next_id``, ``next_array``; one heap segment more); the changes are added to ``ops``."""
    for n in tree.walk(node) if isinstance(node, dict) else ():
        if n["k"] == "v" and type(n["v"]) in (list, dict):
            # short flat lists and dicts go into the index as they are: copy them, since this
            # index may be kept for the next update and the caller may change them
            n["v"] = type(n["v"])(n["v"])
    target.slot.put(node)
    index["root"] = target.holder["root"]
    index["next_id"] = next_id
    index["next_heap"] += 1
    index["next_array"] = next_array
    ops.extend([["classes", i], index["classes"][i]] for i in range(target.classes_before, len(index["classes"])))
    ops.extend([[name], index[name]] for name, was in target.counters_before.items() if index[name] != was)


def note_update(index: dict[str, Any], env: dict[str, Any], key: str, metadata: dict[str, Any], ops: list[Op]) -> None:
    """Record an update of ``key`` in ``index``: the modules of its environment record ``env``
    added to the stored environment's, ``metadata`` merged into the stored metadata, a note
    appended to ``updates``; the changes are added to ``ops``."""
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
