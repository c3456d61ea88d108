"""The safe codec for packed plain data: MessagePack plus a few extension types.

A *plain* value is built only from ``dict``, ``list``, ``str``, ``bytes``, ``int``,
``float``, ``bool`` and ``None`` (exact types, packed natively at C speed) and the
extension types below. Decoding never imports a module or calls anything the data names:
it only builds builtins and numpy arrays, so it is what ``load(..., safe=True)`` reads.

=====  ==============  ====================================================================
code   type            payload
=====  ==============  ====================================================================
1      tuple           a packed list of the items
2      set             a packed list of the items
3      frozenset       a packed list of the items
4      int             beyond 64 bits: signed little-endian two's complement bytes
5      complex         two little-endian float64 (real, imag)
6      numpy scalar    a packed list ``[dtype, raw bytes]``
7      dict            a packed flat list ``[key0, value0, key1, value1, ...]``
=====  ==============  ====================================================================

Extension types nest (a tuple in a set in a tuple ...) at most :data:`MAX_EXT_DEPTH` levels
deep: each level is a nested MessagePack call made from msgpack's C code, so an unbounded
nesting (or a cycle through a tuple, which no packing can end) would overflow the C stack
and kill the interpreter whatever ``sys.getrecursionlimit()`` says. :func:`pack` raises
``ValueError`` beyond it (the encoder then decomposes the data into index nodes) and
:func:`unpack` raises ``ValueError`` (the reader reports a damaged file).

A dict of more than :data:`FLAT_DICT` entries at the top of a packed document is written
as type 7 rather than as a map: MessagePack's reader interns every map key, which made
loading a 10,000-entry dict of unique keys 2.7x slower than from a flat list (measured
in ``benchmarks/bench_h5.py``, workload b).

``dtype`` is a numpy dtype string (``"<f8"``) or, for structured dtypes, a numpy descr list.
Arrays are never packed: they are index nodes of their own (readable with h5py alone).
"""

from __future__ import annotations

import functools
import gc
import itertools
import struct
from typing import Any

import msgpack
import numpy as np

from .._dtype import dtype_from_descr

__all__ = ["BIGINT", "NotPlain", "bigint_bytes", "container_ids", "dtype_from_json", "dtype_to_json", "pack", "unpack"]

_TUPLE, _SET, _FROZENSET, BIGINT, _COMPLEX, _NPSCALAR, _FLATDICT = 1, 2, 3, 4, 5, 6, 7
#: dicts with more entries than this are packed as a flat key/value list (type 7) at the top
FLAT_DICT = 64
#: extension types nested deeper than this are refused by pack and unpack (see the module docstring)
MAX_EXT_DEPTH = 32
_COMPLEX_STRUCT = struct.Struct("<dd")
_CONTAINERS = frozenset({dict, list, tuple, set, frozenset})
_is_container = _CONTAINERS.__contains__


class NotPlain(Exception):
    """Raised while packing when a value is not plain data (the caller decomposes it)."""


def dtype_to_json(dtype: np.dtype[Any]) -> Any:
    """A JSON-able description of ``dtype``: its string, or a descr list if structured."""
    if dtype.fields is None and dtype.subdtype is None:
        return dtype.str
    return np.lib.format.dtype_to_descr(dtype)


_dtypes: dict[str, np.dtype[Any]] = {}


def dtype_from_json(value: Any) -> np.dtype[Any]:
    """Inverse of :func:`dtype_to_json`; never yields an object dtype."""
    if type(value) is str:
        found = _dtypes.get(value)
        if found is not None:
            return found
    dtype = dtype_from_descr(value) if isinstance(value, list) else np.dtype(value)
    if dtype.hasobject:
        raise ValueError(f"object dtype {value!r} cannot be read from raw bytes")
    if type(value) is str and len(_dtypes) < 1024:
        _dtypes[value] = dtype  # a plain dict: concurrent inserts of equal values are harmless
    return dtype


def bigint_bytes(value: int) -> bytes:
    """``value`` as signed little-endian two's complement bytes (extension type 4)."""
    return value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)


def _default(depth: int, obj: Any) -> Any:
    """msgpack's ``default`` for extension types met ``depth`` extension levels deep."""
    t = type(obj)
    if t is int:
        return msgpack.ExtType(BIGINT, bigint_bytes(obj))
    if t is complex:
        return msgpack.ExtType(_COMPLEX, _COMPLEX_STRUCT.pack(obj.real, obj.imag))
    if depth >= MAX_EXT_DEPTH and (t in _CONTAINERS or isinstance(obj, np.generic)):
        raise ValueError(f"plain data nested more than {MAX_EXT_DEPTH} tuples/sets deep (or a cycle)")
    if t is tuple:
        return msgpack.ExtType(_TUPLE, _pack_at(list(obj), depth + 1))
    if t is set:
        return msgpack.ExtType(_SET, _pack_at(list(obj), depth + 1))
    if t is frozenset:
        return msgpack.ExtType(_FROZENSET, _pack_at(list(obj), depth + 1))
    if isinstance(obj, np.generic) and not obj.dtype.hasobject:
        return msgpack.ExtType(_NPSCALAR, _pack_at([dtype_to_json(obj.dtype), obj.tobytes()], depth + 1))
    raise NotPlain(t)


#: one ``default`` per extension depth, made once (no allocation per packed value)
_DEFAULTS = [functools.partial(_default, depth) for depth in range(MAX_EXT_DEPTH + 1)]


def _pack_at(obj: Any, depth: int) -> bytes:
    return msgpack.packb(obj, default=_DEFAULTS[depth], strict_types=True, use_bin_type=True)


def pack(obj: Any) -> bytes:
    """Pack plain data; raise :class:`NotPlain` if ``obj`` holds anything else.

    Deep nesting raises ``ValueError`` (the packer's depth limit, or more than
    :data:`MAX_EXT_DEPTH` nested tuples/sets) and strings that are not valid UTF-8 (lone
    surrogates) raise ``UnicodeEncodeError``: the caller decomposes.
    """
    if type(obj) is dict and len(obj) > FLAT_DICT:
        flat: list[Any] = [None] * (2 * len(obj))
        flat[::2] = obj  # keys and values by slice assignment: no (key, value) tuples
        flat[1::2] = obj.values()
        obj = msgpack.ExtType(_FLATDICT, _pack_at(flat, 1))
    return msgpack.packb(obj, default=_DEFAULTS[0], strict_types=True, use_bin_type=True)


def _ext(depth: int, code: int, data: bytes) -> Any:
    if code == BIGINT:
        return int.from_bytes(data, "little", signed=True)
    if code == _COMPLEX:
        real, imag = _COMPLEX_STRUCT.unpack(data)
        return complex(real, imag)
    if depth >= MAX_EXT_DEPTH:
        raise ValueError(f"packed data nested more than {MAX_EXT_DEPTH} extension types deep")
    if code == _TUPLE:
        return tuple(_unpack_at(data, depth + 1))
    if code == _SET:
        return set(_unpack_at(data, depth + 1))
    if code == _FROZENSET:
        return frozenset(_unpack_at(data, depth + 1))
    if code == _FLATDICT:
        items = iter(_unpack_at(data, depth + 1))
        return dict(zip(items, items))
    if code == _NPSCALAR:
        dtype, raw = _unpack_at(data, depth + 1)
        return np.frombuffer(raw, dtype=dtype_from_json(dtype), count=1)[0]
    raise ValueError(f"unknown extension type {code}")


_EXT_HOOKS = [functools.partial(_ext, depth) for depth in range(MAX_EXT_DEPTH + 1)]


def _unpack_at(data: bytes, depth: int) -> Any:
    return msgpack.unpackb(data, ext_hook=_EXT_HOOKS[depth], strict_map_key=False, raw=False)


def unpack(data: Any) -> Any:
    """Unpack plain data written by :func:`pack` (builds only builtins and numpy arrays)."""
    if not isinstance(data, bytes):
        data = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    return _unpack_at(data, 0)


def container_ids(obj: Any) -> set[int] | None:
    """The ids of all containers inside plain ``obj`` (itself included), or ``None`` if some
    container is reached twice (a shared reference that packing would duplicate)."""
    seen: set[int] = set()
    level = [obj]
    count = 0
    while level:
        count += len(level)
        seen.update(map(id, level))
        if len(seen) != count:
            return None
        refs = gc.get_referents(*level)
        level = list(itertools.compress(refs, map(_is_container, map(type, refs))))
    return seen
