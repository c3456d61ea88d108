"""Rebuild objects from index nodes.

Security rule: a class named by the file is resolved only by importing its recorded module
and following the recorded qualname with ``getattr``, and it must be a class
(``isinstance(found, type)``). The only code run is that class's ``__new__`` (or the class
itself for ``"call"`` nodes, as its ``__reduce_ex__`` asked), its ``__setstate__``, and
``extend``/``append``/``__setitem__`` for list and dict items. Opaque leaves are unpickled.
With ``safe=True`` nothing of this happens: object, class and opaque nodes raise
:class:`UnsafeLoadError` naming their key, before anything is rebuilt.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any, Literal

import numpy as np

from ...errors import CorruptFileError, MissingPackageError, StorageError, UnsafeLoadError
from .. import safetypes
from . import codec
from .tree import keyed_walk

__all__ = ["Decoder", "resolve_class", "resolve_global"]

Slice = list[Any]  # [heap dataset name, offset, nbytes]
_NOTHING = object()


def resolve_global(module: str, qualname: str) -> Any:
    """Import ``module`` and follow ``qualname`` with ``getattr`` (nothing is called)."""
    if not isinstance(module, str) or not isinstance(qualname, str) or "<locals>" in qualname:
        raise CorruptFileError(f"invalid reference {module!r}.{qualname!r}")
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


def resolve_class(module: str, qualname: str) -> type:
    """Import ``module`` and follow ``qualname``; the result must be a class."""
    found = resolve_global(module, qualname)
    if not isinstance(found, type):
        raise UnsafeLoadError(
            f"the file names {module}.{qualname}, which is not a class; refusing to call it "
            "(only classes are rebuilt from h5 archives)"
        )
    return found


def _is_function(found: Any) -> bool:
    return isinstance(found, FunctionType | BuiltinFunctionType)


class Decoder:
    """Rebuilds nodes; ``heap(slice)`` returns the bytes of a heap slice as a uint8 array,
    ``dataset(name, shape, dtype)`` a big array dataset's content (checked to be ``dtype[shape]``),
    ``definition(id)`` a shared node defined
    outside the part being loaded."""

    def __init__(
        self,
        *,
        path: Path,
        classes: list[list[str]],
        heap: Callable[[Slice], np.ndarray],
        dataset: Callable[[str, tuple[int, ...], np.dtype[Any]], np.ndarray],
        definition: Callable[[int], dict[str, Any] | None],
        safe: bool,
        raw: bool = False,
        placeholders: bool = False,
    ) -> None:
        self.path = path
        self.classes = classes
        self.heap = heap
        self.dataset = dataset
        self.definition = definition
        self.safe = safe
        #: native values (``n`` nodes) come back as :class:`safetypes.Raw` (their data as stored)
        self.raw = raw
        #: what is refused (an unsafe node with ``safe``, a missing package) becomes a
        #: :class:`safetypes.Refused` placeholder instead of raising
        self.placeholders = placeholders
        self.refusals = 0  # placeholders made so far
        self.memo: dict[int, Any] = {}
        self._resolved: dict[int, type] = {}
        self._globals: dict[int, Any] = {}
        self._following: set[int] = set()  # shared definitions being decoded through a reference

    def _global(self, node: dict[str, Any]) -> Any:
        """The object of a ``g`` node: a class, or a function or singleton that its ``t`` names."""
        declared = node.get("t", "type")
        if declared == "type":
            return self._class(node["c"], node)
        index = node["c"]
        found = self._class(index, node, resolve=resolve_global, cache=self._globals)
        if not (_is_function(found) if declared == "function" else type(found).__qualname__ == declared):
            module, qualname = self.classes[index]
            raise UnsafeLoadError(
                f"{self.path} says {module}.{qualname} at {self._key(node)!r} is a {declared}, but it is a "
                f"{type(found).__qualname__}; refusing to load it",
                path=self.path,
                key=self._key(node),
            )
        return found

    def _class(
        self,
        index: int,
        node: dict[str, Any],
        resolve: Callable[[str, str], Any] = resolve_class,
        cache: dict[int, Any] | None = None,
    ) -> Any:
        """Resolve ``classes[index]``; by default it must be a class (what ``o`` nodes build)."""
        if cache is None:
            cache = self._resolved  # checked classes only: never a function resolved for a g node
        cls = cache.get(index)
        if cls is None:
            try:
                module, qualname = self.classes[index]
            except (IndexError, TypeError, ValueError):
                raise CorruptFileError(f"{self.path} names an unknown class #{index}", path=self.path) from None
            try:
                cls = resolve(module, qualname)
            except (ImportError, AttributeError) as exc:
                key = self._key(node)
                raise StorageError(
                    f"cannot load {key or 'the root'!r} from {self.path}: {module}.{qualname} is not "
                    f"importable here ({exc}); plain entries still load with key=..., and "
                    f"storage_nodes.inspect({str(self.path)!r}) lists what is stored",
                    path=self.path,
                    key=key,
                ) from exc
            except StorageError as exc:
                key = self._key(node)
                raise type(exc)(f"{exc} (file {self.path}, key {key!r})", path=self.path, key=key) from None
            cache[index] = cls
        return cls

    def _refuse(self, node: dict[str, Any], what: str, label: str) -> Any:
        """Refuse ``node`` with ``safe=True``: a placeholder, or :class:`UnsafeLoadError`."""
        key = self._key(node)
        if not self.placeholders:
            raise self._unsafe(what, key)
        self.refusals += 1
        found = safetypes.Refused(key, label, f"safe=True: it holds {what}")
        if "id" in node:
            self.memo[node["id"]] = found
        return found

    def _label(self, node: dict[str, Any]) -> str:
        """``module.qualname`` of what a node holds (for placeholders and messages)."""
        k = node.get("k")
        if k == "x":
            return f"{node.get('m')}.{node.get('t')}"
        if k == "m":
            return f"method {node.get('n')}"
        try:
            return ".".join(self.classes[node["c"]])
        except (KeyError, IndexError, TypeError):
            return str(node.get("t", "?"))

    def _unsafe(self, what: str, key: str) -> UnsafeLoadError:
        return UnsafeLoadError(
            f"refusing to load {key or 'the root'!r} of {self.path} with safe=True: it holds {what}, which "
            "needs importing or running code; load with safe=False only if you trust the file",
            path=self.path,
            key=key,
        )

    def decode(self, node: dict[str, Any], key: str) -> Any:
        """Rebuild ``node`` (found at ``key``)."""
        self.top, self.top_key = node, key
        self._keys: dict[int, str] | None = None  # id(node) -> key, built on the second _key
        return self._dec(node)

    def _key(self, wanted: dict[str, Any]) -> str:
        """The key of ``wanted`` below the decoded node (searched only for error messages and
        placeholders; the second search builds a map, so that many placeholders cost one walk)."""
        if self._keys is None:
            self._keys = {}
            return next((p for n, p in keyed_walk(self.top, self.top_key) if n is wanted), self.top_key)
        if not self._keys:
            for n, p in keyed_walk(self.top, self.top_key):
                self._keys.setdefault(id(n), p)
        return self._keys.get(id(wanted), self.top_key)

    def _dec(self, node: Any) -> Any:
        if type(node) is not dict:
            return node  # a bare scalar is its own value
        k = node["k"]
        if k == "o":  # the most common kinds first
            return self._object(node)
        if k == "r":
            return self._shared(node)
        if k == "v":
            if "id" in node:
                self.memo[node["id"]] = node["v"]
            return node["v"]
        if k == "p":
            obj = codec.unpack(self.heap(node["h"]))
            if "id" in node:
                self.memo[node["id"]] = obj
            return obj
        if k == "a":
            return self._array(node)
        dec = self._dec
        if k == "d":
            d: dict[Any, Any] = {}
            if "id" in node:
                self.memo[node["id"]] = d
            for item in node["items"]:
                if len(item) == 2:
                    value = item[1]
                    d[item[0]] = dec(value) if type(value) is dict else value
                else:  # the key first: it is defined before the value (which may refer to it)
                    key = dec(item[2])
                    d[key] = dec(item[1])
            return d
        if k == "l":
            lst: list[Any] = []
            if "id" in node:
                self.memo[node["id"]] = lst
            lst.extend([dec(c) for c in node["items"]])
            return lst
        if k == "s":
            s: set[Any] = set()
            if "id" in node:
                self.memo[node["id"]] = s
            s.update([dec(c) for c in node["items"]])
            return s
        if k in ("t", "f"):
            items = [dec(c) for c in node["items"]]
            if "id" in node:
                found = self.memo.get(node["id"], _NOTHING)
                if found is not _NOTHING:  # defined inside its own items (a cycle through it)
                    return found
                obj = tuple(items) if k == "t" else frozenset(items)
                self.memo[node["id"]] = obj
                return obj
            return tuple(items) if k == "t" else frozenset(items)
        if k == "oa":
            children = node["items"]
            order: Literal["C", "F"] = "F" if node.get("o") == "F" else "C"
            arr = np.empty(tuple(node["sh"]), dtype=object, order=order)
            if arr.size != len(children):
                raise ValueError(f"object array of shape {node['sh']} with {len(children)} items")
            if "id" in node:
                self.memo[node["id"]] = arr  # the array itself: cycles through it see it
            flat = arr.ravel(order=order)  # a view: arr is contiguous in this order
            for i, c in enumerate(children):
                flat[i] = dec(c)
            return arr
        if k == "n":
            return self._native(node)
        if k == "g":
            if self.safe:
                return self._refuse(node, "a reference to a class or function", self._label(node))
            found = self._global(node)
            if "id" in node:
                self.memo[node["id"]] = found
            return found
        if k == "m":
            return self._bound(node)
        if k == "x":
            if self.safe:
                return self._refuse(node, f"an opaque pickled {node.get('m')}.{node.get('t')}", self._label(node))
            try:
                obj = pickle.loads(self.heap(node["h"]).tobytes())
            except (ImportError, AttributeError) as exc:
                key = self._key(node)
                raise StorageError(
                    f"cannot load the opaque {node.get('t')} at {key or 'the root'!r} of {self.path}: {exc}",
                    path=self.path,
                    key=key,
                ) from exc
            if "id" in node:
                self.memo[node["id"]] = obj
            return obj
        key = self._key(node)
        raise CorruptFileError(f"{self.path} holds an unknown node kind {k!r} at {key!r}", path=self.path, key=key)

    def _bound(self, node: dict[str, Any]) -> Any:
        """A method bound to an object: the function its class defines under the name ``n``,
        bound to the decoded object (``types.MethodType``: no attribute lookup runs code)."""
        if self.safe:
            return self._refuse(node, "a method bound to an object", self._label(node))
        owner = self._dec(node["self"])
        if "id" in node and node["id"] in self.memo:  # defined inside its object (a cycle)
            return self.memo[node["id"]]
        name = node["n"]
        func = inspect.getattr_static(type(owner), name, None) if type(name) is str else None
        if type(func) is not FunctionType:
            key = self._key(node)
            raise UnsafeLoadError(
                f"{self.path} says the {type(owner).__qualname__} at {key!r} has a method {name!r}, but its class "
                "defines no such function; refusing to load it",
                path=self.path,
                key=key,
            )
        method = MethodType(func, owner)
        if "id" in node:
            self.memo[node["id"]] = method
        return method

    def _native(self, node: dict[str, Any]) -> Any:
        """A value of a safe type: its parts decoded, then rebuilt by the type's own ``decode``
        (looked up by the stored name in :mod:`safetypes`; nothing the file names is called)."""
        name = node["t"]
        meta = node.get("m")
        if type(meta) is not dict:
            key = self._key(node)
            raise CorruptFileError(
                f"{self.path} holds a damaged {name!r} at {key!r} (no meta map)", path=self.path, key=key
            )
        st = safetypes.by_name(name)
        if st is None and not self.safe and not self.raw and "c" in node:
            # the library that registers the type may not be imported yet: import it (as for any class)
            self._class(node["c"], node, resolve=resolve_global, cache=self._globals)
            st = safetypes.by_name(name)
        if st is None and not self.raw:
            what = f"a value of the safe type {name!r}, which is not registered here"
            if self.safe:
                return self._refuse(node, what + " (import the library that registers it)", self._label(node))
            key = self._key(node)
            raise StorageError(
                f"cannot load {key or 'the root'!r} of {self.path}: it holds {what}; import the library that "
                "registers it, or load with raw=True to get its data",
                path=self.path,
                key=key,
            )
        if st is not None and not st.by_reference and "c" in node and not self.raw:
            module = self.classes[node["c"]][0]
            if not st.owns(module):  # a file naming another module for a safe type: refused
                key = self._key(node)
                what = f"a {st.name} that the file says is a {self._label(node)}"
                if self.placeholders:
                    self.refusals += 1
                    return safetypes.Refused(key, self._label(node), f"refused: it holds {what}")
                raise UnsafeLoadError(
                    f"refusing to load {key or 'the root'!r} of {self.path}: it holds {what}, which is not "
                    f"of the package of {st.name}; the file is damaged or forged",
                    path=self.path,
                    key=key,
                )
        dec = self._dec
        before = self.refusals
        parts = {part: dec(c) if type(c) is dict else c for part, c in node.get("items", ())}
        if self.raw:
            obj: Any = safetypes.Raw(str(name), meta, parts)
        else:
            assert st is not None
            try:
                if st.by_reference:
                    cls = self._reference(node, st)
                    if isinstance(cls, safetypes.Refused):
                        return cls
                    obj = st.decode(meta, parts, cls)
                else:
                    obj = st.decode(meta, parts)
            except ImportError as exc:
                return self._missing_package(node, st, exc)
            except StorageError:
                raise
            except (TypeError, ValueError, KeyError, IndexError, AttributeError, ArithmeticError) as exc:
                key = self._key(node)
                if self.refusals > before:  # a part is a placeholder: so is the value made of it
                    self.refusals += 1
                    found = safetypes.Refused(key, self._label(node), "a part of it is refused (see the key below it)")
                    if "id" in node:
                        self.memo[node["id"]] = found
                    return found
                raise CorruptFileError(
                    f"{self.path} holds a {name} at {key or 'the root'!r} that cannot be rebuilt "
                    f"({type(exc).__name__}: {exc})",
                    path=self.path,
                    key=key,
                ) from None
        if "id" in node:
            self.memo[node["id"]] = obj
        return obj

    def _reference(self, node: dict[str, Any], st: safetypes.SafeType) -> Any:
        """The class a by-reference safe type (an enum member) names; with ``safe=True`` only
        from a module already imported, followed with ``inspect.getattr_static`` (runs nothing)."""
        if not self.safe:
            return self._class(node["c"], node)
        module, qualname = self.classes[node["c"]]
        found: Any = sys.modules.get(module)
        if found is not None:
            for part in qualname.split("."):
                found = inspect.getattr_static(found, part, None)
        if not isinstance(found, type):
            what = f"a member of {module}.{qualname}, whose module is not imported (safe=True imports nothing)"
            return self._refuse(node, what + f"; import {module} first, or load with raw=True", f"{module}.{qualname}")
        return found

    def _missing_package(self, node: dict[str, Any], st: safetypes.SafeType, exc: ImportError) -> Any:
        package = exc.name or st.package or "?"
        key = self._key(node)
        reason = f"the package {package!r} it needs is not installed here"
        if self.placeholders:
            self.refusals += 1
            found = safetypes.Refused(key, self._label(node), reason)
            if "id" in node:
                self.memo[node["id"]] = found
            return found
        err = MissingPackageError(
            f"cannot load the {st.type_name or st.name} at {key or 'the root'!r} of {self.path}: {reason} ({exc}); "
            f"install {package}, or load with raw=True to get its data as plain arrays",
            path=self.path,
            key=key,
        )
        err.package = package
        raise err from exc

    def _shared(self, node: dict[str, Any]) -> Any:
        target = node["to"]
        if target in self.memo:
            return self.memo[target]
        definition = self.definition(target)
        if definition is None:
            key = self._key(node)
            raise CorruptFileError(
                f"{self.path} refers to a shared object #{target} at {key!r} that is not defined before it",
                path=self.path,
                key=key,
            )
        if target in self._following:  # only a damaged index defines an object through itself
            key = self._key(node)
            raise CorruptFileError(
                f"{self.path} defines the shared object #{target} through a reference to itself at {key!r}",
                path=self.path,
                key=key,
            )
        self._following.add(target)
        try:
            return self._dec(definition)
        finally:
            self._following.discard(target)

    def _array(self, node: dict[str, Any]) -> np.ndarray:
        dtype = codec.dtype_from_json(node["dt"])
        shape = tuple(node["sh"])
        fortran = node.get("o") == "F"
        stored_shape = shape[::-1] if fortran else shape
        if "ds" in node:
            if node.get("raw"):
                nbytes = dtype.itemsize * int(np.prod(stored_shape, dtype=np.int64))
                arr = self.dataset(node["ds"], (nbytes,), np.dtype(np.uint8)).view(dtype).reshape(stored_shape)
            else:
                arr = self.dataset(node["ds"], stored_shape, dtype)
            if arr.dtype != dtype:
                arr = arr.astype(dtype)
        else:
            arr = self.heap(node["h"]).view(dtype).reshape(stored_shape)
        if arr.shape != stored_shape:
            raise ValueError(f"array shape {arr.shape} differs from the index {stored_shape}")
        arr = arr.T if fortran else arr
        if "id" in node:
            self.memo[node["id"]] = arr
        return arr

    def _object(self, node: dict[str, Any]) -> Any:
        if self.safe:
            module, qualname = self.classes[node["c"]]
            return self._refuse(node, f"an instance of {module}.{qualname}", f"{module}.{qualname}")
        cls = self._class(node["c"], node)
        dec = self._dec
        how = node.get("r")
        args = dec(node["args"]) if "args" in node else ()
        if "id" in node and node["id"] in self.memo:  # defined inside its own arguments (a cycle)
            return self.memo[node["id"]]
        if how == "call":
            obj = cls(*args)
        elif how == "newex":
            kwargs = dec(node["kw"]) if "kw" in node else {}
            if "id" in node and node["id"] in self.memo:
                return self.memo[node["id"]]
            obj = cls.__new__(cls, *args, **kwargs)
        elif how == "new":
            obj = cls.__new__(cls, *args)
        else:
            raise CorruptFileError(
                f"{self.path} has an unknown construction {how!r} at {self._key(node)!r}", path=self.path
            )
        if "id" in node:
            self.memo[node["id"]] = obj
        state: Any = None
        if "state" in node:
            state = dec(node["state"])
        elif "attrs" in node or "slots" in node:
            attrs = {name: dec(c) if type(c) is dict else c for name, c in node.get("attrs", ())}
            state = (
                (attrs or None, {name: dec(c) if type(c) is dict else c for name, c in node["slots"]})
                if "slots" in node
                else attrs
            )
        if state is not None:
            _set_state(obj, state)
        if "li" in node:
            items = dec(node["li"])
            if hasattr(obj, "extend"):
                obj.extend(items)
            else:
                for item in items:
                    obj.append(item)
        if "di" in node:
            for k, v in dec(node["di"]):
                obj[k] = v
        return obj


def _set_state(obj: Any, state: Any) -> None:
    """What pickle's BUILD opcode does."""
    setstate = getattr(obj, "__setstate__", None)
    if setstate is not None:
        setstate(state)
        return
    slotstate = None
    if isinstance(state, tuple) and len(state) == 2:
        state, slotstate = state
    if state:
        obj.__dict__.update(state)
    if slotstate:
        for k, v in slotstate.items():
            setattr(obj, k, v)
