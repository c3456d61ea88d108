"""The index tree: find the node of a key, walk nodes, describe them as listing entries.

Everything here reads index nodes only; plain blobs are unpacked (safe) when a listing or a
key reaches inside them. Nothing imports a stored module or rebuilds an object.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ...errors import CorruptFileError
from ...keys import escape
from ...listing import Entry, LazyEntry
from .. import safetypes
from . import codec

__all__ = [
    "MISSING",
    "blob_slices",
    "children",
    "defined_at",
    "describe_node",
    "describe_value",
    "find",
    "keyed_walk",
    "kind",
    "type_name",
    "value_signature",
    "walk",
]

_CONTAINER_TYPES = {"d": "dict", "l": "list", "t": "tuple", "s": "set", "f": "frozenset"}
_CONTAINER_NAMES = frozenset(_CONTAINER_TYPES.values())
#: parts of an object node that are not listed as children, and the names the encoder gives them
_REDUCE_FIELDS = (
    ("args", "__args__"),
    ("kw", "__kwargs__"),
    ("li", "__items__"),
    ("di", "__dictitems__"),
    ("self", "__self__"),  # the object an ``m`` node (a bound method) is bound to
)


def kind(node: Any) -> str:
    """The kind of a node; a bare JSON scalar is a value (``"v"``)."""
    return str(node["k"]) if type(node) is dict else "v"


def children(node: Any) -> Iterator[tuple[str, Any]]:
    """(name, child node) pairs of an index node, in stored order."""
    k = kind(node)
    if k == "d":
        for item in node["items"]:
            yield item[0], item[1]
    elif k in ("l", "t", "s", "f", "oa"):
        for i, c in enumerate(node["items"]):
            yield str(i), c
    elif k == "o":
        for name, c in node.get("attrs", ()):
            yield name, c
        for name, c in node.get("slots", ()):
            yield name, c
        if "state" in node:
            yield "__state__", node["state"]
    elif k == "n":
        for name, c in node.get("items", ()):
            yield name, c


#: what :func:`child` and :func:`find` return for "no such entry" (``None`` is a stored value)
MISSING: Any = object()


def child(node: Any, segment: str) -> Any:
    """The child named ``segment``, or :data:`MISSING` (exact string keys win over ``str()``
    of other keys)."""
    k = kind(node)
    if k == "d":
        fallback = MISSING
        for item in node["items"]:
            if item[0] == segment:
                if len(item) == 2:
                    return item[1]
                if fallback is MISSING:
                    fallback = item[1]
        return fallback
    if k in ("l", "t", "s", "f", "oa"):
        try:
            return node["items"][int(segment)]
        except (ValueError, IndexError):
            return MISSING
    if k == "o":
        for name, c in (*node.get("attrs", ()), *node.get("slots", ())):
            if name == segment:
                return c
        if segment == "__state__":
            return node.get("state", MISSING)
        if segment == "__args__":
            return node.get("args", MISSING)
    if k == "n":
        for name, c in node.get("items", ()):
            if name == segment:
                return c
    return MISSING


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """This node and every node below it (keys of dicts included), depth first."""
    stack = [node]
    while stack:
        n = stack.pop()
        if type(n) is not dict:
            continue
        yield n
        k = n["k"]
        if k == "d":
            for item in reversed(n["items"]):
                stack.append(item[1])
                if len(item) == 3:
                    stack.append(item[2])
        elif k in ("l", "t", "s", "f", "oa"):
            stack.extend(reversed(n["items"]))
        elif k == "o":
            for field in ("di", "li", "state"):
                if field in n:
                    stack.append(n[field])
            stack.extend(c for _, c in reversed(n.get("slots", ())))
            stack.extend(c for _, c in reversed(n.get("attrs", ())))
            for field in ("kw", "args"):
                if field in n:
                    stack.append(n[field])
        elif k == "m":
            stack.append(n["self"])
        elif k == "n":
            stack.extend(c for _, c in reversed(n.get("items", ())))


def find(root: Any, segments: list[str], resolve: Callable[[int], dict[str, Any] | None]) -> tuple[Any, int]:
    """Follow ``segments`` from ``root``; return (deepest node reached, segments consumed).

    Shared-reference nodes are followed to their definition with ``resolve``; a reference
    whose definition is missing gives :data:`MISSING`.
    """
    node = root
    for i, segment in enumerate(segments):
        if kind(node) == "r":
            target = resolve(node["to"])
            if target is None:
                return MISSING, i
            node = target
        nxt = child(node, segment)
        if nxt is MISSING:
            return node, i
        node = nxt
    if kind(node) == "r":
        target = resolve(node["to"])
        if target is not None:
            node = target
    return node, len(segments)


#: children listed per container; the rest are counted in ``Entry.truncated`` (inspect of a
#: million-entry dict would otherwise build a million entries)
MAX_LISTED_CHILDREN = 10_000
#: levels listed when no depth is asked for
MAX_DEPTH = 64


_PLAIN_CONTAINERS = frozenset({dict, list, tuple, set, frozenset})
#: signatures of leaf values by type (str, int, float, None...): the same for every value
_LEAF_SIGNATURES: dict[type, tuple[Any, ...]] = {}


class _ValueEntry(LazyEntry):
    """A plain container from an unpacked blob: children, signature and dict from the value."""

    _value: Any
    _depth: int

    def _build(self) -> list[Entry]:
        return self._first(MAX_LISTED_CHILDREN)

    def _peek(self) -> _ValuePeek:
        return _ValuePeek(self._value, self.path, self._depth - 1)

    def _first(self, n: int) -> list[Entry]:
        prefix = self.path + "/" if self.path else ""
        items = self._value.items() if type(self._value) is dict else enumerate(self._value)
        out = []
        for k, v in itertools.islice(items, n):
            child_name = k if type(k) is str else str(k)
            out.append(_entry_for_value(v, prefix + escape(child_name), child_name, self._depth - 1))
        return out

    def _fast_signature(self) -> tuple[Any, ...]:
        return value_signature(self._value, self._depth)

    def _fast_dict(self) -> dict[str, Any]:
        d = self._own_dict()
        d["children"] = _value_dicts(self._value, self.path, self._depth)
        return d


class _ValuePeek:
    """The children of a plain container by index, for a summary (see ``listing.Peek``)."""

    def __init__(self, value: Any, path: str, depth: int) -> None:
        n = min(len(value), MAX_LISTED_CHILDREN)
        if type(value) is dict:
            self.names: Sequence[str] = _key_names(value, n)
            self.values = list(itertools.islice(value.values(), n))
        else:
            self.names = _index_names(n)
            self.values = list(itertools.islice(value, n))
        self.prefix = path + "/" if path else ""
        self.depth = depth

    def signature(self, i: int) -> tuple[Any, ...]:
        return value_signature(self.values[i], self.depth)

    def size(self, i: int) -> int | None:
        value = self.values[i]
        t = type(value)
        if t in _PLAIN_CONTAINERS:
            return None
        if isinstance(value, np.ndarray | np.generic):
            return int(value.nbytes)
        if t is str:
            return len(value.encode("utf-8", "surrogatepass"))
        if t is bytes:
            return len(value)
        return sys.getsizeof(value) if value is not None else 0

    def child(self, i: int) -> Entry:
        name = self.names[i]
        return _entry_for_value(self.values[i], self.prefix + escape(name), name, self.depth)


def _value_dicts(value: Any, path: str, depth: int) -> list[dict[str, Any]]:
    """``to_dict()`` of the children of the entry of a plain container, from the value."""
    prefix = path + "/" if path else ""
    items = value.items() if type(value) is dict else enumerate(value)
    out = []
    for k, v in itertools.islice(items, MAX_LISTED_CHILDREN):
        name = k if type(k) is str else str(k)
        out.append(_value_dict(v, prefix + escape(name), name, depth - 1))
    return out


def _value_dict(value: Any, path: str, name: str, depth: int) -> dict[str, Any]:
    """``_entry_for_value(value, path, name, depth).to_dict()``, without the entries."""
    t = type(value)
    d: dict[str, Any] = {"path": path, "name": name, "type": t.__qualname__}
    if t in _PLAIN_CONTAINERS:
        n = d["length"] = len(value)
        if depth <= 0 or not n:
            if n:
                d["truncated"] = n
            return d
        if n > MAX_LISTED_CHILDREN:
            d["truncated"] = n - MAX_LISTED_CHILDREN
        d["children"] = _value_dicts(value, path, depth)
        return d
    if t.__module__ != "builtins":
        d["module"] = t.__module__
    if isinstance(value, np.ndarray | np.generic):
        d["dtype"] = str(value.dtype)
        d["size"] = int(value.nbytes)
        d["shape"] = [int(s) for s in value.shape]
    elif t is str or t is bytes:
        d["length"] = len(value)
        d["size"] = len(value) if t is bytes else len(value.encode("utf-8", "surrogatepass"))
    else:
        d["size"] = sys.getsizeof(value) if value is not None else 0
    return d


def _entry_for_value(value: Any, path: str, name: str, depth: int) -> Entry:
    """Describe a plain value (from an unpacked blob); children are built when first reached."""
    t = type(value)
    if t in _PLAIN_CONTAINERS:
        n = len(value)
        if depth <= 0 or not n:
            return Entry(path=path, name=name, type=t.__qualname__, length=n, truncated=n)
        lazy = _ValueEntry(
            path=path, name=name, type=t.__qualname__, length=n, truncated=max(0, n - MAX_LISTED_CHILDREN)
        )
        lazy._value = value
        lazy._depth = depth
        return lazy.pending()
    module = None if t.__module__ == "builtins" else t.__module__
    entry = Entry(path=path, name=name, type=t.__qualname__, module=module)
    if isinstance(value, np.ndarray | np.generic):
        entry.shape = tuple(int(s) for s in value.shape)
        entry.dtype = str(value.dtype)
        entry.size = int(value.nbytes)
    elif t is str or t is bytes:
        entry.length = len(value)
        entry.size = len(value) if t is bytes else len(value.encode("utf-8", "surrogatepass"))
    else:
        entry.size = sys.getsizeof(value) if value is not None else 0
    return entry


def value_signature(value: Any, depth: int) -> tuple[Any, ...]:
    """:func:`storage_nodes.listing.signature` of the entry that describes ``value`` at
    ``depth``, computed from the value (no entries built)."""
    t = type(value)
    found = _LEAF_SIGNATURES.get(t)
    if found is not None:
        return found
    if t in _PLAIN_CONTAINERS:
        n = len(value)
        if depth <= 0 or not n:
            return (t.__qualname__, None, None, None, False, n, (), ())
        values = value.values() if t is dict else value
        if n > MAX_LISTED_CHILDREN:
            values = list(itertools.islice(values, MAX_LISTED_CHILDREN))
        types = tuple(map(type, values))
        if _LEAF_SIGNATURES.keys() >= set(types):  # leaves only (the common case): no call per child
            sigs = tuple(map(_LEAF_SIGNATURES.__getitem__, types))
        else:
            below, leaf = depth - 1, _LEAF_SIGNATURES.get
            sigs = tuple([leaf(type(v)) or value_signature(v, below) for v in values])
        names = _key_names(value, len(sigs)) if t is dict else _index_names(len(sigs))
        return (t.__qualname__, None, None, None, False, n - len(sigs), names, sigs)
    module = None if t.__module__ == "builtins" else t.__module__
    if isinstance(value, np.ndarray | np.generic):
        return (t.__qualname__, module, tuple(int(s) for s in value.shape), str(value.dtype), False, 0, (), ())
    found = (t.__qualname__, module, None, None, False, 0, (), ())
    _LEAF_SIGNATURES[t] = found
    return found


#: small tuples of str keys already checked (records share their keys), index names by length
_STR_KEYS: dict[tuple[Any, ...], None] = {}
_INDEX_NAMES: dict[int, tuple[str, ...]] = {}
_SMALL = 64


def _key_names(d: dict[Any, Any], n: int) -> tuple[str, ...]:
    """The entry names of the first ``n`` keys of ``d`` (``str()`` of non-str keys)."""
    keys = tuple(d) if n == len(d) else tuple(itertools.islice(d, n))
    if n <= _SMALL and keys in _STR_KEYS:
        return keys
    if all(type(k) is str for k in keys):
        if n <= _SMALL and len(_STR_KEYS) < 4096:
            _STR_KEYS[keys] = None
        return keys
    return tuple(k if type(k) is str else str(k) for k in keys)


def _index_names(n: int) -> tuple[str, ...]:
    found = _INDEX_NAMES.get(n)
    if found is None:
        found = tuple(map(str, range(n)))
        if n <= _SMALL:
            _INDEX_NAMES[n] = found
    return found


def describe_value(value: Any, path: str, name: str, depth: int) -> Entry:
    """The listing entry of a plain value (from inside a packed blob), ``depth`` levels deep."""
    return _entry_for_value(value, path, name, depth)


def blob_slices(node: Any, depth: int) -> list[list[Any]]:
    """The heap slices of the packed blobs a listing of ``node``, ``depth`` levels deep, looks inside."""
    found: list[list[Any]] = []
    stack = [(node, depth)]
    while stack:
        n, d = stack.pop()
        if type(n) is not dict:
            continue
        k = n["k"]
        if k == "p":
            if d > 0 or n.get("t") not in _CONTAINER_NAMES:
                found.append(n["h"])
        elif d > 0 and k in ("d", "l", "t", "s", "f", "o", "oa", "n"):
            stack.extend((c, d - 1) for _, c in children(n))
    return found


def describe_node(
    node: dict[str, Any],
    path: str,
    name: str,
    *,
    classes: list[list[str]],
    heap: Callable[[list[Any]], Any] | None,
    shared: dict[int, str],
    depth: int = MAX_DEPTH,
    file: str = "",
) -> Entry:
    """The listing entry of ``node``; the children of a container are described when first reached.

    ``heap`` gives a packed blob's unpacked value for its heap slice (``None``: do not look
    inside). ``shared`` maps shared-object ids to the key where they are defined (filled as
    we go). ``file`` names the archive in the error of a damaged index met later.
    """
    if type(node) is not dict:
        return _entry_for_value(node, path, name, 0)
    k = node["k"]
    if "id" in node:
        shared[node["id"]] = path
    if k == "v":
        entry = _entry_for_value(node["v"], path, name, depth)
    elif k == "p":
        if heap is not None and (depth > 0 or node.get("t") not in _CONTAINER_NAMES):
            entry = _entry_for_value(heap(node["h"]), path, name, depth)
        else:  # not looking inside: the index says type and length
            entry = Entry(path=path, name=name, type=node.get("t", "?"), length=node.get("n"))
            if depth <= 0 and node.get("t") in _CONTAINER_NAMES:
                entry.truncated = int(node.get("n") or 0)
        entry.size = node["h"][2]
        entry.info["packed"] = True
    elif k == "a":
        dtype = codec.dtype_from_json(node["dt"])
        entry = Entry(path=path, name=name, type="ndarray", module="numpy", shape=tuple(node["sh"]), dtype=str(dtype))
        entry.size = int(dtype.itemsize * int(np.prod(node["sh"], dtype=np.int64)))
        if "ds" in node:
            entry.info["dataset"] = node["ds"]
        if node.get("o") == "F":
            entry.info["order"] = "F"
    elif k == "oa":
        entry = Entry(path=path, name=name, type="ndarray", module="numpy", shape=tuple(node["sh"]), dtype="object")
    elif k == "r":
        target = shared.get(node["to"])
        entry = Entry(path=path, name=name, type="shared reference", info={"shared_with": target})
    elif k == "o":
        module, qualname = classes[node["c"]]
        entry = Entry(path=path, name=name, type=qualname, module=module)
        items = node.get("di", node.get("li"))  # a list or dict subclass: its items, counted
        if items is not None:
            entry.length = _length(items)
    elif k == "g":
        module, qualname = classes[node["c"]]
        declared = str(node.get("t", "type"))  # "type" (a class), "function", or a singleton's type
        what = "class" if declared == "type" else "reference"
        entry = Entry(path=path, name=name, type=declared, module=module, info={what: f"{module}.{qualname}"})
    elif k == "m":
        entry = Entry(path=path, name=name, type="method", info={"method": str(node.get("n"))})
    elif k == "x":
        entry = Entry(path=path, name=name, type=node.get("t", "?"), module=node.get("m"), opaque=True)
        entry.size = node["h"][2]
    elif k == "n":
        entry = _native_entry(node, path, name, classes)
    else:
        entry = Entry(path=path, name=name, type=str(_CONTAINER_TYPES.get(k, k)))
    if k in _CONTAINER_TYPES:
        entry.length = len(node["items"])
    if k in ("d", "l", "t", "s", "f", "o", "oa", "n"):
        count = sum(1 for _ in children(node))
        if depth <= 0 or not count:
            entry.truncated = count
            return entry
        entry.truncated = max(0, count - MAX_LISTED_CHILDREN)
        fields = {f.name: getattr(entry, f.name) for f in dataclasses.fields(Entry) if f.name != "children"}
        lazy = _NodeEntry(**fields)
        lazy._node, lazy._depth, lazy._count = node, depth, count
        lazy._context = (classes, heap, shared, file)
        return lazy.pending()
    return entry


def _native_entry(node: dict[str, Any], path: str, name: str, classes: list[list[str]]) -> Entry:
    """The entry of a safe-type value, from its ``meta`` alone (nothing is imported or built)."""
    st = safetypes.by_name(node.get("t"))
    meta: dict[str, Any] = node["m"] if type(node.get("m")) is dict else {}
    if "c" in node:
        module, type_ = classes[node["c"]]
    else:
        module, type_ = (st.module, st.type_name) if st is not None else (None, str(node.get("t")))
    if st is not None and st.module and st.name != "enum":  # the public module (pandas, not pandas.core.frame)
        module = st.module
    entry = Entry(path=path, name=name, type=type_, module=module, info={"safe_type": node.get("t")})
    if st is not None and st.describe is not None:
        try:
            shown = st.describe(meta)
        except (KeyError, IndexError, TypeError, ValueError):
            shown = {}
        if "shape" in shown:
            entry.shape = tuple(shown["shape"])
        if "dtype" in shown:
            entry.dtype = str(shown["dtype"])
        if "length" in shown:
            entry.length = shown["length"]
        entry.info.update(shown.get("info", {}))
    return entry


class _NodeEntry(LazyEntry):
    """A container of the index: its children are described when first reached."""

    _node: dict[str, Any]
    _depth: int
    _count: int
    _context: tuple[list[list[str]], Callable[[list[Any]], Any] | None, dict[int, str], str]

    def _build(self) -> list[Entry]:
        return self._first(MAX_LISTED_CHILDREN)

    def _build_head(self, want: int) -> tuple[list[Entry], int]:
        total = min(self._count, MAX_LISTED_CHILDREN)
        return (self.children if want >= total else self._first(want)), total

    def _first(self, n: int) -> list[Entry]:
        classes, heap, shared, file = self._context
        prefix = self.path + "/" if self.path else ""
        try:
            return [
                describe_node(
                    c,
                    prefix + escape(child_name),
                    child_name,
                    classes=classes,
                    heap=heap,
                    shared=shared,
                    depth=self._depth - 1,
                    file=file,
                )
                for child_name, c in itertools.islice(children(self._node), n)
            ]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise CorruptFileError(
                f"{file} has a damaged index below {self.path or 'the root'!r} ({type(exc).__name__}: {exc})",
                path=file,
            ) from None


def keyed_walk(node: Any, path: str = "") -> Iterator[tuple[Any, str]]:
    """(node, key) for ``node`` (at ``path``) and every node below it, depth first in stored
    order: children, then the key nodes of non-str dict keys, then the constructor
    arguments and items of objects (``__args__``, ``__kwargs__``, ``__items__``, ``__dictitems__``)."""
    stack: list[tuple[Any, str]] = [(node, path)]
    while stack:
        n, p = stack.pop()
        yield n, p
        if type(n) is not dict:
            continue
        prefix = p + "/" if p else ""
        below = [(c, prefix + escape(name)) for name, c in children(n)]
        if n["k"] == "d":
            below.extend((item[2], prefix + escape(item[0])) for item in n["items"] if len(item) == 3)
        below.extend((n[field], prefix + label) for field, label in _REDUCE_FIELDS if field in n)
        stack.extend(reversed(below))


def defined_at(root: Any) -> dict[int, str]:
    """The key of every node that carries an ``id`` (a shared object's definition)."""
    found: dict[int, str] = {}
    for n, p in keyed_walk(root):
        if type(n) is dict and "id" in n:
            found.setdefault(n["id"], p)
    return found


def type_name(node: Any, classes: list[list[str]]) -> str:
    """What a node holds, in a word or two (for messages)."""
    k = kind(node)
    if type(node) is not dict:
        return type(node).__name__
    if k in _CONTAINER_TYPES:
        return _CONTAINER_TYPES[k]
    if k in ("v", "p"):
        return str(node.get("t") or type(node.get("v")).__name__)
    if k == "a" or k == "oa":
        return "numpy array" if k == "a" else "numpy object array"
    if k == "o":
        return str(classes[node["c"]][1])
    if k == "g":
        return f"reference to {'.'.join(classes[node['c']])}"
    if k == "x":
        return f"opaque {node.get('t', 'object')}"
    if k == "m":
        return f"method {node.get('n')}"
    if k == "n":
        return str(node.get("t"))
    return str(k)


def _length(node: Any) -> int | None:
    """The number of items of a container node, when the index says it."""
    k = kind(node)
    if k in _CONTAINER_TYPES:
        return len(node["items"])
    if k == "v" and isinstance(node, dict):
        return len(node["v"])
    if k == "p":
        return node.get("n")
    return None


def modules_needed(node: dict[str, Any], classes: list[list[str]]) -> set[str]:
    """Modules whose classes the subtree of ``node`` rebuilds (opaque leaves included)."""
    found: set[str] = set()
    for n in walk(node):
        k = n["k"]
        if k in ("o", "g") or (k == "n" and "c" in n):
            found.add(classes[n["c"]][0])
        elif k == "x" and n.get("m"):
            found.add(n["m"])
    return found


def unsafe_node(
    node: dict[str, Any], path: str, classes: list[list[str]] | None = None
) -> tuple[str, dict[str, Any]] | None:
    """The first node below ``node`` that a safe load must refuse, with its key: objects,
    globals, opaque leaves, bound methods, values of safe types not registered here, and
    (given the file's ``classes``) values whose class is not of their safe type's package."""
    if not _any_refused(node, classes):
        return None  # (the usual answer: found without walking the tree node by node with keys)
    for n, p in keyed_walk(node, path):
        if _refused(n, classes):
            return p, n
    return None


def _any_refused(node: Any, classes: list[list[str]] | None) -> bool:
    """Whether a node :func:`keyed_walk` reaches is refused, found without making keys: the
    same nodes (children, key nodes of dicts, constructor fields), at a fraction of its cost;
    a refused object, global, leaf or method ends the search before its own fields matter."""
    stack = [node]
    while stack:
        n = stack.pop()
        if type(n) is not dict:
            continue
        if _refused(n, classes):
            return True
        k = n["k"]
        if k == "d":
            for item in n["items"]:
                stack.append(item[1])
                if len(item) == 3:
                    stack.append(item[2])
        elif k in ("l", "t", "s", "f", "oa"):
            stack.extend(n["items"])
        elif k == "n":
            stack.extend(c for _, c in n.get("items", ()))
        for field, _label in _REDUCE_FIELDS:
            if field in n:
                stack.append(n[field])
    return False


def _refused(n: Any, classes: list[list[str]] | None) -> bool:
    if type(n) is not dict:
        return False
    k = n.get("k")
    if k in ("o", "g", "x", "m"):
        return True
    if k == "n":
        st = safetypes.by_name(n.get("t"))
        if st is None:
            return True
        c = n.get("c")
        if classes is not None and not st.by_reference and c is not None and not st.owns(classes[c][0]):
            return True
    return False
