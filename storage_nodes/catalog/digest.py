"""A canonical, typed digest of Python values: the catalog's keys for input values.

:func:`digest` returns the hex SHA-256 of a canonical, type-tagged encoding of a value, or
``None`` when the value cannot be digested (then the catalog stores no digest for it and
no query can match it: a missed match, never a wrong one). The rules:

- the type is part of the digest: ``1``, ``1.0``, ``True``, ``np.int64(1)`` and ``"1"`` all
  differ; ``list`` and ``tuple`` differ; so do ``bytes`` and ``bytearray``;
- floats by their IEEE-754 bits: ``-1.0`` and ``-2.0`` differ (no ``hash()``), every NaN is
  one value (``nan`` equals ``nan``), and ``0.0`` and ``-0.0`` **differ** (``1/x``,
  ``copysign`` and ``atan2`` tell them apart, so a node may return different results);
- dicts by their items, in any order (sorted by the digests of the keys); sets and
  frozensets by their sorted element digests;
- numpy arrays by dtype (byte order normalised), shape and C-order bytes, so a Fortran-order
  copy equals its C-order original and ``float32`` never equals ``float64``; NaNs are made
  one value; object arrays element by element; numpy scalars like 0-d arrays;
- functions, classes and enum members by reference (module + qualname [+ member]); a
  lambda or a function defined inside another one has no stable reference: ``None``;
- any other object by its reduced state (``__reduce_ex__(4)``: the reconstructor, its
  arguments, the state and the list/dict items), the same information pickle stores;
- cycles are encoded as a back-reference to the position on the current path; nesting
  deeper than :data:`MAX_DEPTH` or more than :data:`MAX_ITEMS` visited items give ``None``
  (bounded time and memory for any input).

Changing these rules changes digests: :data:`DIGEST_VERSION` is recorded in the catalog,
and a catalog with another digest version must be re-indexed (docs/catalog.md).
"""

from __future__ import annotations

import enum
import hashlib
import math
import struct
import sys
import types
from collections.abc import Callable
from typing import Any

__all__ = ["DIGEST_VERSION", "MAX_DEPTH", "MAX_ITEMS", "Undigestable", "digest", "digest_parts"]

DIGEST_VERSION = 1
MAX_DEPTH = 200
MAX_ITEMS = 2_000_000
_CHUNK = 1 << 24  # bytes of a non-contiguous array copied at a time

_NAN = struct.pack(">d", math.nan)
_pack_d = struct.Struct(">d").pack
_pack_q = struct.Struct(">q").pack


class Undigestable(Exception):
    """Raised inside the encoder when a value has no canonical form (``digest`` returns None)."""


def _float_bytes(x: float) -> bytes:
    return _NAN if x != x else _pack_d(x)


#: the hash state after the version prefix every digest starts with (copied, not recomputed)
_PREFIXED = hashlib.sha256(b"storage_nodes-digest-%d\x00" % DIGEST_VERSION)


#: (tag, dtype, shape) -> the encoded header of such an array (its text costs more than the hashing)
_HEADERS: dict[tuple[bytes, Any, tuple[int, ...]], bytes] = {}


class _Encoder:
    __slots__ = ("h", "items", "path")

    def __init__(self) -> None:
        self.h = _PREFIXED.copy()
        self.items = 0
        self.path: list[int] = []  # ids of the containers on the current path (cycle guard)

    def put(self, tag: bytes, payload: bytes = b"") -> None:
        self.h.update(tag + _pack_q(len(payload)) + payload)

    def enc(self, obj: Any, depth: int) -> None:
        self.items += 1
        if self.items > MAX_ITEMS:
            raise Undigestable(f"more than {MAX_ITEMS} items")
        if depth > MAX_DEPTH:
            raise Undigestable(f"nested deeper than {MAX_DEPTH} levels")
        t = type(obj)
        simple = _SIMPLE.get(t)
        if simple is not None:
            simple(self, obj)
            return
        container = _CONTAINERS.get(t)
        if container is not None or t.__module__ == "numpy" or not isinstance(obj, type | types.FunctionType):
            oid = id(obj)
            if oid in self.path:  # a cycle: name the ancestor by its distance
                self.put(b"^", str(len(self.path) - self.path.index(oid)).encode())
                return
            self.path.append(oid)
            try:
                if container is not None:
                    container(self, obj, depth)
                else:
                    self.other(obj, depth)
            finally:
                self.path.pop()
            return
        self.other(obj, depth)

    # ------------------------------------------------------------------ containers
    def seq(self, tag: bytes, obj: Any, depth: int) -> None:
        self.put(tag, str(len(obj)).encode())
        for item in obj:
            self.enc(item, depth + 1)

    def sub_digest(self, obj: Any, depth: int) -> bytes:
        """The digest of ``obj`` alone (for order-free containers), sharing the budget."""
        sub = _Encoder()
        sub.items = self.items
        sub.path = self.path
        sub.enc(obj, depth)
        self.items = sub.items
        return sub.h.digest()

    def mapping(self, tag: bytes, obj: Any, depth: int) -> None:
        pairs = sorted((self.sub_digest(k, depth + 1), self.sub_digest(v, depth + 1)) for k, v in obj.items())
        self.put(tag, str(len(pairs)).encode())
        for k, v in pairs:
            self.h.update(k + v)

    def unordered(self, tag: bytes, obj: Any, depth: int) -> None:
        members = sorted(self.sub_digest(x, depth + 1) for x in obj)
        self.put(tag, str(len(members)).encode())
        for m in members:
            self.h.update(m)

    # ------------------------------------------------------------------ numpy and others
    def other(self, obj: Any, depth: int) -> None:
        np = sys.modules.get("numpy")
        if np is not None:
            if isinstance(obj, np.ndarray):
                self.array(np, obj, b"A", depth)
                return
            if isinstance(obj, np.generic):
                self.array(np, np.asarray(obj), b"a", depth)
                return
        if isinstance(obj, enum.Enum):
            self.reference(b"M", type(obj))
            self.put(b"m", obj.name.encode("utf-8", "surrogatepass"))
            return
        if isinstance(obj, type | types.FunctionType | types.BuiltinFunctionType):
            self.reference(b"R", obj)
            return
        if isinstance(obj, types.MethodType):
            self.reference(b"R", obj.__func__)
            self.enc(obj.__self__, depth + 1)
            return
        self.reduced(obj, depth)

    def reference(self, tag: bytes, obj: Any) -> None:
        module = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None)
        if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname or module == "__main__":
            raise Undigestable(f"{obj!r:.60} has no stable module-level name")
        self.put(tag, f"{module}:{qualname}".encode())

    def array(self, np: Any, a: Any, tag: bytes, depth: int) -> None:
        dtype = a.dtype
        if dtype.hasobject:
            self.put(tag + b"o", repr(a.shape).encode())
            for item in a.ravel(order="C"):
                self.enc(item, depth + 1)
            return
        if dtype.byteorder not in ("=", "|"):
            dtype = dtype.newbyteorder("=")
            a = a.astype(dtype)
        if dtype.kind in "fc" and a.size and np.isnan(a).any():
            a = np.where(np.isnan(a), np.array(np.nan, dtype=dtype), a)  # one NaN bit pattern
        header = _HEADERS.get((tag, dtype, a.shape))
        if header is None:
            if len(_HEADERS) > 1024:
                _HEADERS.clear()
            text = f"{dtype.str}|{dtype.descr!r}|{a.shape!r}".encode()
            header = _HEADERS[(tag, dtype, a.shape)] = tag + _pack_q(len(text)) + text
        self.h.update(header)
        if a.flags.c_contiguous:
            self.h.update(a.reshape(-1).view(np.uint8).data if a.size else b"")  # no copy
            return
        step = max(1, _CHUNK // max(1, a[0].nbytes))  # a block of rows at a time: bounded memory
        for start in range(0, a.shape[0], step):
            self.h.update(np.ascontiguousarray(a[start : start + step]).tobytes())

    def reduced(self, obj: Any, depth: int) -> None:
        try:
            reduced = obj.__reduce_ex__(4)
        except Exception as exc:
            raise Undigestable(f"{type(obj).__name__} cannot be reduced: {exc}") from None
        if isinstance(reduced, str):  # a module-level singleton, stored by name
            self.reference(b"G", type(obj))
            self.put(b"g", reduced.encode())
            return
        if not isinstance(reduced, tuple) or len(reduced) < 2:
            raise Undigestable(f"{type(obj).__name__}.__reduce_ex__ returned {type(reduced).__name__}")
        func, args, *rest = reduced
        state = rest[0] if len(rest) > 0 else None
        listitems = list(rest[1]) if len(rest) > 1 and rest[1] is not None else None
        dictitems = dict(rest[2]) if len(rest) > 2 and rest[2] is not None else None
        self.put(b"O")
        self.reference(b"R", func)
        if func.__name__ == "__newobj__" and args:  # copyreg.__newobj__(cls, *args)
            self.reference(b"R", args[0])
            args = args[1:]
        self.enc(tuple(args), depth + 1)
        self.enc(state, depth + 1)
        self.enc(listitems, depth + 1)
        self.enc(dictitems, depth + 1)


def _text(e: _Encoder, x: str) -> None:
    e.put(b"S", x.encode("utf-8", "surrogatepass"))


def _int(e: _Encoder, x: int) -> None:
    e.put(b"I", x.to_bytes((x.bit_length() + 8) // 8, "big", signed=True))


_SIMPLE: dict[type, Callable[[_Encoder, Any], None]] = {
    type(None): lambda e, x: e.put(b"N"),
    bool: lambda e, x: e.put(b"B", b"1" if x else b"0"),
    int: _int,
    float: lambda e, x: e.put(b"F", _float_bytes(x)),
    complex: lambda e, x: e.put(b"C", _float_bytes(x.real) + _float_bytes(x.imag)),
    str: _text,
    bytes: lambda e, x: e.put(b"Y", x),
    bytearray: lambda e, x: e.put(b"y", bytes(x)),
    type(Ellipsis): lambda e, x: e.put(b"."),
}

_CONTAINERS: dict[type, Callable[[_Encoder, Any, int], None]] = {
    list: lambda e, x, d: e.seq(b"L", x, d),
    tuple: lambda e, x, d: e.seq(b"T", x, d),
    dict: lambda e, x, d: e.mapping(b"D", x, d),
    set: lambda e, x, d: e.unordered(b"E", x, d),
    frozenset: lambda e, x, d: e.unordered(b"Z", x, d),
}


def _constant(value: Any) -> str:
    enc = _Encoder()
    _SIMPLE[type(value)](enc, value)
    return enc.h.hexdigest()


_CONSTANTS = {v: _constant(v) for v in (None, True, False)}


def digest(value: Any) -> str | None:
    """The hex SHA-256 of ``value``'s canonical typed encoding, or ``None`` if it has none.

    >>> digest(1) == digest(1.0) or digest(1) == digest(True)
    False
    >>> digest(float("nan")) == digest(float("nan")), digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1})
    (True, True)
    >>> digest(lambda x: x) is None
    True
    """
    t = type(value)
    if t is str:  # the commonest input values, hashed as _Encoder.put would (no walk, no budget)
        payload = value.encode("utf-8", "surrogatepass")
        h = _PREFIXED.copy()
        h.update(b"S" + _pack_q(len(payload)) + payload)
        return h.hexdigest()
    if value is None or t is bool:
        return _CONSTANTS[value]
    simple = _SIMPLE.get(t)
    if simple is not None:
        enc = _Encoder()
        simple(enc, value)
        return enc.h.hexdigest()
    enc = _Encoder()
    try:
        enc.enc(value, 0)
    except (Undigestable, RecursionError, MemoryError):
        return None
    except Exception:  # a hostile __reduce_ex__ or a broken container: no digest, never a crash
        return None
    return enc.h.hexdigest()


def digest_parts(parts: dict[str, Any]) -> str | None:
    """The digest of a dict of already-computed digests (``None`` anywhere: ``None``)."""
    if any(v is None for v in parts.values()):
        return None
    return digest(parts)
