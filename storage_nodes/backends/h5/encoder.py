"""Decompose a Python object into index nodes, heap chunks and big-array datasets.

The tree stays coarse: a subtree of plain data becomes one packed blob (``codec``), a
numpy array one heap slice (or its own dataset when big), and only containers that hold
something else, and decomposable objects, get index nodes of their own. See
``docs/format.md`` (section ``h5``) for the node kinds.
"""

from __future__ import annotations

import copyreg
import inspect
import math
import sys
from dataclasses import dataclass, field
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any, Literal

import numpy as np

from ...errors import SerializationError
from ...keys import escape
from ...provenance.metadata import ObjectCollector
from ...provenance.picklers import cloudpickle_dumps
from .. import safetypes
from . import codec
from .importable import TYPES_NAMES, class_name, importable

__all__ = ["ArrayOut", "Encoded", "Encoder"]

#: arrays of at least this many bytes get their own HDF5 dataset
BIG_ARRAY_BYTES = 1 << 18
#: str and bytes up to this length are written straight into the index
INLINE_STR = 200
#: lists, dicts, tuples and sets of up to this many such scalars are written straight into the index
INLINE_ITEMS = 16
#: levels of nesting (key segments) the encoder follows before refusing with SerializationError;
#: an explicit limit, so that a raised ``sys.setrecursionlimit`` cannot lead it into a C stack overflow
MAX_DEPTH = 1000
_ALIGN = 16
_INT_LIMIT = 2**53
_SIMPLE_CONTAINERS: dict[type, str] = {list: "l", tuple: "t", set: "s", frozenset: "f"}
_NEWOBJ = copyreg.__newobj__  # type: ignore[attr-defined]
_NEWOBJ_EX = copyreg.__newobj_ex__  # type: ignore[attr-defined]


class _Restart(Exception):
    """A container packed into a plain blob turned up again elsewhere: re-encode."""

    def __init__(self, oid: int) -> None:
        self.oid = oid


@dataclass
class ArrayOut:
    """A big array to write as its own dataset."""

    name: str
    data: np.ndarray
    key: str


@dataclass
class Encoded:
    """What an encoding produced: the node plus the bytes and datasets it refers to."""

    node: dict[str, Any]
    heap: np.ndarray | None
    arrays: list[ArrayOut] = field(default_factory=list)


class Encoder:
    """Encodes objects for one write: heap segment ``heap_name``, new ids from ``next_id``."""

    def __init__(
        self,
        *,
        heap_name: str,
        array_prefix: str,
        next_array: int,
        next_id: int,
        classes: list[list[str]],
        collector: ObjectCollector,
        compression: str | None = None,
    ) -> None:
        self.heap_name = heap_name
        self.array_prefix = array_prefix
        self.first_array = next_array
        self.first_id = next_id
        self.classes = classes
        self.class_ids = {(m, q): i for i, (m, q) in enumerate(classes)}
        self.collector = collector
        self.compression = compression
        self.force: set[int] = set()
        self._importable: dict[type, bool] = {}
        #: the method encoding each type met (see :meth:`_handler`; functions, not bound
        #: methods: a bound method would make the encoder a reference cycle)
        self.handlers: dict[type, Any] = {}
        self._reset()

    def _reset(self) -> None:
        self.memo: dict[int, dict[str, Any]] = {}
        self.keep: list[Any] = []
        self.blob_ids: set[int] = set()
        self.chunks: list[tuple[int, Any]] = []
        self.size = 0
        self.arrays: list[ArrayOut] = []
        self.next_array = self.first_array
        self.next_id = self.first_id
        self.classes_len = len(self.classes)
        self.by_class: dict[Any, int] = {}
        self.stack: list[Any] = []
        #: tuples, frozensets and objects whose items or constructor arguments are being encoded
        #: (a reference to one of them from inside is a cycle that only a redefinition resolves)
        self.pending: dict[int, dict[str, Any]] = {}

    # -- public -------------------------------------------------------------------------
    def encode(self, obj: Any, path: str = "") -> Encoded:
        """Encode ``obj`` (stored at key ``path``)."""
        self.base = path
        for _ in range(64):
            try:
                node = self._enc(obj)
            except _Restart as restart:
                self.force.add(restart.oid)
                del self.classes[self.classes_len :]
                self.class_ids = {(m, q): i for i, (m, q) in enumerate(self.classes)}
                self._reset()
                continue
            except RecursionError:
                raise SerializationError(
                    f"cannot store the object at {path or 'the root'!r}: nested too deeply (the h5 backend "
                    f"follows at most {MAX_DEPTH} levels, fewer if Python's recursion limit is lower); "
                    "flatten the data or store the deep part as a numpy array"
                ) from None
            return Encoded(node, self._heap(), self.arrays)
        raise SerializationError("cannot store this object: too many shared references between plain containers")

    # -- heap -----------------------------------------------------------------------------
    def _put(self, data: Any, nbytes: int, *, aligned: bool = False) -> list[Any]:
        offset = self.size
        if aligned and offset % _ALIGN:
            pad = -offset % _ALIGN
            self.chunks.append((offset, bytes(pad)))
            offset += pad
        self.chunks.append((offset, data))
        self.size = offset + nbytes
        return [self.heap_name, offset, nbytes]

    def _heap(self) -> np.ndarray | None:
        if not self.chunks:
            return None
        buf = np.empty(self.size, dtype=np.uint8)
        for offset, data in self.chunks:
            raw = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
            buf[offset : offset + raw.size] = raw
        return buf

    # -- helpers --------------------------------------------------------------------------
    def _class(self, cls: Any) -> int:
        found = self.by_class.get(cls)
        if found is not None:
            return found
        index = self._name(*class_name(cls))
        self.by_class[cls] = index
        return index

    def _name(self, module: str, qualname: str) -> int:
        """The position of ``module.qualname`` in the file's ``classes`` table (added if new)."""
        name = (module, qualname)
        index = self.class_ids.get(name)
        if index is None:
            index = len(self.classes)
            self.classes.append([module, qualname])
            self.class_ids[name] = index
        self.collector.add_name(module, qualname)  # also for names already in an updated file
        return index

    def _ref(self, node: dict[str, Any]) -> dict[str, Any]:
        if "id" not in node:
            node["id"] = self.next_id
            self.next_id += 1
        return {"k": "r", "to": node["id"]}

    def _memo(self, obj: Any, node: dict[str, Any]) -> None:
        self.memo[id(obj)] = node
        self.keep.append(obj)

    def _path(self) -> str:
        """The key of the object being encoded (built only when needed)."""
        return "/".join(
            [self.base, *(escape(str(n)) for n in self.stack)] if self.base else (escape(str(n)) for n in self.stack)
        )

    def _where(self) -> str:
        return repr(self._path() or "the root")

    def _child(self, name: Any, value: Any) -> dict[str, Any]:
        stack = self.stack
        if len(stack) >= MAX_DEPTH:
            raise RecursionError
        stack.append(name)
        node = self._enc(value)
        stack.pop()
        return node

    def _plain(self, obj: Any) -> dict[str, Any] | None:
        """A packed blob node for ``obj`` if it is plain data without shared containers."""
        oid = id(obj)
        if oid in self.force:
            return None
        t = type(obj)
        if t is dict:  # a cheap look first: most containers of objects fail here
            if len(obj) <= 64 and not all(map(_PLAIN_TYPES.__contains__, map(type, obj.values()))):
                return None
        elif t in _SIMPLE_CONTAINERS and len(obj) <= 64 and not all(map(_PLAIN_TYPES.__contains__, map(type, obj))):
            return None
        try:
            data = codec.pack(obj)
        except (codec.NotPlain, ValueError, OverflowError, TypeError):  # UnicodeEncodeError is a ValueError
            return None
        if t in codec._CONTAINERS:
            ids = codec.container_ids(obj)
            if ids is None or not self.memo.keys().isdisjoint(ids) or not ids.isdisjoint(self.force):
                return None
            ids.discard(oid)
            shared = ids & self.blob_ids
            if shared:  # a container already packed into another blob: both must refer to one object
                raise _Restart(next(iter(shared)))
            self.blob_ids |= ids
        node: dict[str, Any] = {"k": "p", "t": t.__name__, "h": self._put(data, len(data))}
        if t in codec._CONTAINERS or t is str or t is bytes:
            node["n"] = len(obj)
        if t in codec._CONTAINERS:
            self._memo(obj, node)
        return node

    # -- the walk -------------------------------------------------------------------------
    def _enc(self, obj: Any) -> dict[str, Any]:
        t = type(obj)
        if t is str or t is bytes:  # _scalar(obj), inlined: the call cost 4-5% of an encoding
            if len(obj) <= INLINE_STR:
                return obj
        elif obj is None or t is bool:
            return obj
        elif t is int:
            if -_INT_LIMIT < obj < _INT_LIMIT:
                return obj
        elif t is float and math.isfinite(obj):
            return obj
        oid = id(obj)
        node = self.memo.get(oid)
        if node is not None:
            if oid in self.pending:
                return self._redefine(obj)
            return self._ref(node)
        if oid in self.blob_ids:
            raise _Restart(oid)
        handler = self.handlers.get(t)
        if handler is None:
            handler = self.handlers[t] = self._handler(t)
        return handler(self, obj)

    @staticmethod
    def _handler(t: type) -> Any:
        """The method that encodes (non-scalar, not yet met) values of exact type ``t``:
        what it is depends on the type alone, so it is chosen once per type and encoding."""
        if t is np.ndarray:
            return Encoder._array
        if t in _INLINE_TYPES:
            return Encoder._container
        if t in (str, bytes, int, float, complex) or issubclass(t, np.generic):
            return Encoder._number
        native = safetypes.for_type(t)
        if native is not None:
            return lambda encoder, obj: encoder._native(obj, native)
        if issubclass(t, type):
            return Encoder._global
        if t is FunctionType or t is BuiltinFunctionType:
            return Encoder._function
        if t is MethodType:
            return Encoder._method
        return Encoder._object

    def _container(self, obj: Any) -> dict[str, Any]:
        """A list, dict, tuple, set or frozenset: in the index, a packed blob, or decomposed."""
        t = type(obj)
        if len(obj) <= INLINE_ITEMS and id(obj) not in self.force:
            # one read of it, now (a copy of a list or dict is one step no other thread can
            # interleave with): what is stored is what it held when save() read it, also if
            # it changes before the index is packed
            snap = obj.copy() if t is list or t is dict else list(obj)
            if _flat(snap, t):
                # a few JSON scalars: straight into the index (cheaper than a packed blob)
                node = {"k": "v", "v": snap} if t is list or t is dict else {"k": _SIMPLE_CONTAINERS[t], "items": snap}
                self.memo[id(obj)] = node
                self.keep.append(obj)
                return node
        plain = self._plain(obj)
        if plain is not None:
            return plain
        if t is dict:
            return self._dict(obj)
        return self._sequence(obj, t)

    def _number(self, obj: Any) -> Any:
        """A str, bytes, int, float, complex or numpy scalar that does not stand for itself."""
        plain = self._plain(obj)
        if plain is not None:
            return plain
        if type(obj) is str:  # not valid UTF-8 (lone surrogates): JSON escapes them
            return obj
        return self._object(obj)

    def _items(self, pairs: Any) -> list[list[Any]]:
        """``[[name, value or node], ...]`` for ``(name, value)`` pairs with str names."""
        stack = self.stack
        if len(stack) >= MAX_DEPTH:  # only scalars may stand here (a child raises)
            return [[k, v if _scalar(v) else self._child(k, v)] for k, v in pairs]
        enc = self._enc
        out: list[list[Any]] = []
        append = out.append
        push = stack.append
        pop = stack.pop
        for k, v in pairs:
            push(k)
            append([k, enc(v)])
            pop()
        return out

    def _values(self, values: Any) -> list[Any]:
        """The values or nodes of the items of a sequence (named by their position)."""
        stack = self.stack
        if len(stack) >= MAX_DEPTH:  # raises
            return [self._child(i, v) for i, v in enumerate(values)]
        enc = self._enc
        out: list[Any] = []
        append = out.append
        push = stack.append
        pop = stack.pop
        for i, v in enumerate(values):
            push(i)
            append(enc(v))
            pop()
        return out

    def _dict(self, obj: dict[Any, Any]) -> dict[str, Any]:
        node: dict[str, Any] = {"k": "d", "items": None}  # "items" before an "id" a cycle adds
        self._memo(obj, node)
        snap = obj.copy()  # one read of the dict (see _container)
        if _str_keys(snap):
            node["items"] = self._items(snap.items())
            return node
        items: list[list[Any]] = []
        node["items"] = items
        child = self._child
        for key, value in snap.items():
            if type(key) is str:
                items.append([key, value if _scalar(value) else child(key, value)])
            else:
                name = str(key)
                key_node = child(name, key)
                items.append([name, child(name, value), key_node])
        return node

    def _sequence(self, obj: Any, t: type, node_id: int | None = None) -> dict[str, Any]:
        node: dict[str, Any] = {"k": _SIMPLE_CONTAINERS[t]}
        if node_id is not None:
            node["id"] = node_id
        self._memo(obj, node)
        if t is tuple or t is frozenset:  # built from its items: a cycle back to it needs a redefinition
            oid = id(obj)
            self.pending[oid] = node
            node["items"] = self._values(obj)
            if self.pending.get(oid) is node:
                del self.pending[oid]
            return node
        node["items"] = self._values(obj.copy() if t is list else obj)  # one read of a list (see _container)
        return node

    def _redefine(self, obj: Any) -> dict[str, Any]:
        """``obj`` (a tuple, frozenset or object built from arguments) is reached again while
        its own items or arguments are encoded: define it here, where everything it is made of
        exists already (as pickle does); the outer node keeps the same ``id`` and readers take
        the object defined inside (see docs/format.md, "Cycles through immutable objects")."""
        if self.pending[id(obj)]["k"] == "n":  # a native value inside its own parts: store it the generic way
            raise _Restart(id(obj))
        outer = self.pending.pop(id(obj))
        self._ref(outer)  # gives the outer node its id
        t = type(obj)
        if t is tuple or t is frozenset:
            return self._sequence(obj, t, outer["id"])
        if t is MethodType:
            return self._bound(obj, outer["id"])
        return self._object(obj, outer["id"])

    def _array(self, arr: np.ndarray) -> dict[str, Any]:
        if arr.dtype.hasobject:
            if arr.dtype != object:
                return self._opaque(arr)
            order: Literal["C", "F"] = (
                "F" if arr.ndim > 1 and arr.flags.f_contiguous and not arr.flags.c_contiguous else "C"
            )
            node: dict[str, Any] = {"k": "oa", "sh": list(arr.shape), "o": order}
            self._memo(arr, node)
            node["items"] = self._values(arr.ravel(order=order))
            return node
        order = "F" if arr.ndim > 1 and arr.flags.f_contiguous and not arr.flags.c_contiguous else "C"
        data = arr.T if order == "F" else arr
        if not data.flags.c_contiguous:
            data = np.ascontiguousarray(data)
        node = {"k": "a", "dt": codec.dtype_to_json(arr.dtype), "sh": list(arr.shape), "o": order}
        self._memo(arr, node)
        if arr.nbytes >= BIG_ARRAY_BYTES:
            name = f"{self.array_prefix}{self.next_array}"
            self.next_array += 1
            kind, size = arr.dtype.kind, arr.dtype.itemsize
            if not (kind in "biu" or (kind == "f" and size <= 8) or (kind == "c" and size <= 16)):
                data = data.reshape(-1).view(np.uint8)
                node["raw"] = True
            self.arrays.append(ArrayOut(name, data, self._path()))
            node["ds"] = name
            node["n"] = int(arr.nbytes)
        else:
            node["h"] = self._put(data.reshape(-1).view(np.uint8), int(arr.nbytes), aligned=True)
        return node

    def _global(self, cls: type) -> dict[str, Any]:
        if importable(cls):
            return {"k": "g", "c": self._class(cls)}
        if cls.__module__ == "builtins":  # type(None), type(...), type(NotImplemented): in ``types``
            name = TYPES_NAMES.get(cls)
            if name is not None:
                return {"k": "g", "c": self._name("types", name)}
        return self._opaque(cls)

    def _method(self, method: Any, node_id: int | None = None) -> dict[str, Any]:
        """A method bound to an importable class (a classmethod, ``Plain.make``) by its name;
        pickle stores it as ``getattr(Plain, "make")``. Methods of objects: :meth:`_bound`."""
        owner = method.__self__
        qualname = getattr(method, "__qualname__", None)
        module = getattr(owner, "__module__", None)
        if isinstance(owner, type) and importable(owner) and type(qualname) is str and type(module) is str:
            found: Any = sys.modules.get(module)
            for part in qualname.split("."):
                found = getattr(found, part, None)
            if found == method and getattr(found, "__self__", None) is owner:
                node = {"k": "g", "c": self._name(module, qualname), "t": "method"}
                self._memo(method, node)
                return node
        return self._bound(method, node_id)

    def _bound(self, method: Any, node_id: int | None) -> dict[str, Any]:
        """A method bound to an object (``obj.method``, pickled as ``getattr(obj, "method")``):
        an ``m`` node holding the object, when the method is the plain function its class
        defines under that name (the reader binds that function again, calling nothing)."""
        owner = method.__self__
        name = getattr(method.__func__, "__name__", None)
        if type(name) is not str or inspect.getattr_static(type(owner), name, None) is not method.__func__:
            return self._opaque(method)
        if type(method.__func__) is not FunctionType:
            return self._opaque(method)
        node: dict[str, Any] = {"k": "m", "n": name}
        if node_id is not None:
            node["id"] = node_id
        self._memo(method, node)
        oid = id(method)
        self.pending[oid] = node
        node["self"] = self._child("__self__", owner)
        if self.pending.get(oid) is node:
            del self.pending[oid]
        return node

    def _function(self, func: Any) -> dict[str, Any]:
        """A module-level function by reference (as pickle stores it); others are opaque."""
        if importable(func):
            node = {"k": "g", "c": self._name(func.__module__, func.__qualname__), "t": "function"}
            self._memo(func, node)
            return node
        return self._opaque(func)

    def _named(self, obj: Any, name: str) -> dict[str, Any]:
        """An object whose ``__reduce_ex__`` gave its global name (a module-level singleton)."""
        module = getattr(obj, "__module__", None)
        found: Any = sys.modules.get(module) if type(module) is str else None
        for part in name.split("."):
            found = getattr(found, part, None)
        if found is not obj or obj is None or "<locals>" in name:
            return self._opaque(obj)
        node = {"k": "g", "c": self._name(module, name), "t": type(obj).__qualname__}  # type: ignore[arg-type]
        self._memo(obj, node)
        return node

    def _native(self, obj: Any, st: safetypes.SafeType) -> dict[str, Any]:
        """A value of a safe type (``docs/format.md``, *Safe types*): an ``n`` node holding
        the type's name, its ``meta`` in the index and its parts as entries of their own."""
        oid = id(obj)
        if oid in self.force:
            return self._object(obj)
        cls = type(obj)
        if importable(cls):
            index = self._class(cls)
        elif cls in TYPES_NAMES:  # type(...), type(NotImplemented): named through ``types``
            index = self._name("types", TYPES_NAMES[cls])
        else:
            return self._object(obj)
        try:
            encoded = st.encode(obj)
        except Exception as exc:
            raise SerializationError(
                f"cannot store the {cls.__qualname__} at {self._where()}: its safe type {st.name!r} failed to "
                f"encode it ({type(exc).__name__}: {exc})"
            ) from None
        if encoded is None:
            return self._object(obj)
        meta, parts = encoded
        bad = safetypes.meta_problem(meta)
        if bad is not None or not all(type(p) is tuple and len(p) == 2 and type(p[0]) is str for p in parts):
            raise SerializationError(
                f"cannot store the {cls.__qualname__} at {self._where()}: its safe type {st.name!r} gave "
                f"{'a meta holding ' + bad if bad else 'parts that are not (str, value) pairs'}"
            )
        node: dict[str, Any] = {"k": "n", "t": st.name, "c": index, "m": meta}
        self._memo(obj, node)
        self.keep.append(parts)  # parts may be made for this encoding: their ids must stay unique
        if parts:
            self.pending[oid] = node
            node["items"] = self._items(parts)
            del self.pending[oid]
        return node

    def _opaque(self, obj: Any) -> dict[str, Any]:
        try:
            data = cloudpickle_dumps(obj, self.collector)
        except Exception as exc:
            raise SerializationError(
                f"cannot store the {type(obj).__qualname__} at {self._where()}: it cannot be decomposed "
                f"and cloudpickle failed too ({type(exc).__name__}: {exc})"
            ) from None
        cls = type(obj)
        self.collector.add_type(cls)
        node = {"k": "x", "t": cls.__qualname__, "m": cls.__module__, "h": self._put(data, len(data))}
        self._memo(obj, node)
        return node

    def _object(self, obj: Any, node_id: int | None = None) -> dict[str, Any]:
        cls = type(obj)
        try:
            reduced = obj.__reduce_ex__(5)
        except Exception:
            return self._opaque(obj)
        if type(reduced) is str:
            return self._named(obj, reduced)
        if not isinstance(reduced, tuple) or not 2 <= len(reduced) <= 6:
            return self._opaque(obj)
        func, args, state, listitems, dictitems = (*reduced, None, None, None)[:5]
        if len(reduced) == 6 or not isinstance(args, tuple):
            return self._opaque(obj)
        if func is _NEWOBJ and args and args[0] is cls:
            how, kwargs, args = "new", None, args[1:]
        elif func is _NEWOBJ_EX and len(args) == 3 and args[0] is cls:
            how, kwargs, args = "newex", args[2], args[1]
        elif func is cls:
            how, kwargs = "call", None
        else:
            return self._opaque(obj)
        index = self.by_class.get(cls)  # only importable classes are in it
        if index is None:
            ok = self._importable.get(cls)
            if ok is None:
                ok = self._importable[cls] = importable(cls)
            if not ok:
                return self._opaque(obj)
            index = self._class(cls)
        node: dict[str, Any] = {"k": "o", "c": index, "r": how}
        if node_id is not None:
            node["id"] = node_id
        self.memo[id(obj)] = node
        keep = self.keep
        keep.append(obj)
        keep.append(reduced)
        child = self._child
        if args or kwargs:
            oid = id(obj)
            self.pending[oid] = node
            if args:
                node["args"] = child("__args__", tuple(args))
            if kwargs:
                node["kw"] = child("__kwargs__", dict(kwargs))
            if self.pending.get(oid) is not node:  # defined inside its arguments: that one has the state
                return node
            del self.pending[oid]
        if type(state) is dict and _ONLY_STR.issuperset(map(type, state)):  # the common case, first
            node["attrs"] = self._items(state.items())
        elif state is not None:
            attrs, slots = _split_state(state)
            if attrs is None and slots is None:
                node["state"] = child("__state__", state)
            else:
                if attrs is not None:
                    node["attrs"] = self._items(attrs.items())
                if slots is not None:
                    node["slots"] = self._items(slots.items())
        if listitems is not None:
            items = list(listitems)
            self.keep.append(items)
            node["li"] = child("__items__", items)
        if dictitems is not None:
            pairs = [list(p) for p in dictitems]
            self.keep.append(pairs)
            node["di"] = child("__dictitems__", pairs)
        return node


_ONLY_STR = frozenset({str})


def _scalar(v: Any) -> bool:
    """Whether ``v`` stands for itself in the index (what ``Encoder._enc`` returns as is)."""
    t = type(v)
    if t is str or t is bytes:
        return len(v) <= INLINE_STR
    if v is None or t is bool:
        return True
    if t is int:
        return -_INT_LIMIT < v < _INT_LIMIT
    return t is float and math.isfinite(v)


_INLINE_TYPES = frozenset({list, dict, tuple, set, frozenset})
_PLAIN_TYPES = frozenset(
    {str, bool, type(None), int, float, bytes, complex, dict, list, tuple, set, frozenset}
    | {np.float64, np.float32, np.int64, np.int32, np.bool_, np.complex128}
)


def _flat(obj: Any, t: type) -> bool:
    """Whether a small list, dict, tuple or set holds only scalars that stand for themselves
    in the index (see :func:`_scalar`); dict keys must be str."""
    if t is dict:
        return _str_keys(obj) and all(map(_scalar, obj.values()))
    return all(map(_scalar, obj))


def _str_keys(d: dict[Any, Any]) -> bool:
    return _ONLY_STR.issuperset(map(type, d))


def _split_state(state: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(attrs, slots) when ``state`` is pickle's default shape, else (None, None)."""
    if type(state) is dict and _str_keys(state):
        return state, None
    if (
        type(state) is tuple
        and len(state) == 2
        and (state[0] is None or (type(state[0]) is dict and _str_keys(state[0])))
        and type(state[1]) is dict
        and _str_keys(state[1])
    ):
        return (state[0] if state[0] else None), state[1]
    return None, None
