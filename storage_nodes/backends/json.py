"""The ``json`` backend: human-readable files of plain data; loading never imports anything.

Stored objects: dict, list, str, int, float, bool, None, plus the tagged forms below
(written as ``{"__sn__": <tag>, ...}``), documented in ``docs/format.md``:

``tuple``, ``set``, ``frozenset`` (``items``), ``bytes`` (``base64``), ``float`` (``value``:
``"nan"``, ``"inf"``, ``"-inf"``), ``complex`` (``real``, ``imag``), ``dict`` (``items``:
``[[key, value], ...]`` for non-string keys or a key ``"__sn__"``), ``ndarray`` and
``npscalar`` (``dtype``, ``shape``, ``order``, then ``data`` as a flat list in that order, or
``base64`` raw bytes for structured and void dtypes), and ``safe`` (``type``, ``meta``,
``parts``): a value of one of the standard library's safe types (dates and times, paths,
UUID, Decimal, Fraction, Ellipsis, NotImplemented; see :mod:`.safetypes`), rebuilt by that
type's fixed constructor (format version 2; a file without such values is written as 1).

An object of any other type raises :class:`SerializationError` naming where it sits,
e.g. ``obj['forces'][3]``.
"""

from __future__ import annotations

import base64
import contextvars
import io
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..atomic import open_new
from ..describe import describe
from ..errors import CorruptFileError, SerializationError, StorageError
from ..keys import escape, navigate, split
from ..listing import Listing
from ..provenance.metadata import environment_record
from ._dtype import dtype_from_descr
from .base import Backend, CheckCallback
from .safetypes import Raw, SafeType, by_name, for_type

__all__ = ["JsonBackend", "decode", "encode"]

TAG = "__sn__"
FORMAT = "storage_nodes-json"
_SNIFF = re.compile(rb'^\s*\{\s*"storage_nodes"\s*:')
_FLOAT_TAGS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
#: levels of nesting the encoder follows (an explicit limit: with a raised recursion limit the
#: walk would otherwise go on, and building each item's trail costs time in the depth)
MAX_DEPTH = 1000


def _where(trail: list[Any]) -> str:
    return "obj" + "".join(f"[{t!r}]" for t in trail)


def _float(x: float) -> Any:
    if math.isfinite(x):
        return x
    return {TAG: "float", "value": "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")}


def _array_fields(a: np.ndarray, trail: list[Any], active: set[int]) -> dict[str, Any]:
    order: Literal["C", "F"] = "F" if a.ndim > 1 and a.flags.f_contiguous and not a.flags.c_contiguous else "C"
    flat = a.ravel(order=order)
    kind = a.dtype.kind
    fields: dict[str, Any] = {"dtype": a.dtype.str, "shape": list(a.shape), "order": order}
    if kind in "biu":
        fields["data"] = flat.tolist()
    elif kind == "f":
        fields["data"] = [_float(float(x)) for x in flat.tolist()]
    elif kind == "c":
        fields["data"] = [[_float(z.real), _float(z.imag)] for z in flat.tolist()]
    elif kind == "U":
        fields["data"] = flat.tolist()
    elif kind == "S":
        fields["data"] = [base64.b64encode(x).decode("ascii") for x in flat.tolist()]
    elif kind in "mM":
        fields["data"] = flat.view(np.int64).tolist()
    elif kind == "O":
        fields["data"] = [_encode(x, [*trail, i], active) for i, x in enumerate(flat.tolist())]
    else:  # structured / void: raw bytes with the full dtype description
        fields["dtype"] = np.lib.format.dtype_to_descr(a.dtype)
        fields["base64"] = base64.b64encode(np.ascontiguousarray(flat).tobytes()).decode("ascii")
    return fields


class _Active(set[int]):
    """The ids of the containers being encoded (the cycle guard); ``safe``: a ``safe`` tag was written."""

    safe = False


#: the modules of the safe types json stores: the standard library's (rebuilt without importing anything)
_STDLIB = frozenset({"datetime", "zoneinfo", "pathlib", "uuid", "decimal", "fractions", "builtins"})


def _stdlib(st: SafeType | None) -> SafeType | None:
    """``st`` if json stores it: a standard-library safe type, not by reference (enum members name a class)."""
    return st if st is not None and st.module in _STDLIB and not st.by_reference else None


def _json_safe_type(t: type) -> SafeType | None:
    """The safe type json stores for values of exactly ``t``."""
    return _stdlib(for_type(t))


def _safe(obj: Any, st: SafeType, trail: list[Any], active: set[int]) -> Any:
    encoded = st.encode(obj)
    if encoded is None:
        return None
    meta, parts = encoded
    if isinstance(active, _Active):
        active.safe = True
    return {
        TAG: "safe",
        "type": st.name,
        "meta": _encode(meta, trail, active),
        "parts": {name: _encode(value, [*trail, name], active) for name, value in parts},
    }


def _encode(obj: Any, trail: list[Any], active: set[int]) -> Any:
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int) and type(obj) is int:
        return obj
    if type(obj) is float:
        return _float(obj)
    if isinstance(obj, np.generic):
        return {TAG: "npscalar", **_array_fields(np.asarray(obj), trail, active)}
    if isinstance(obj, np.ndarray):
        return {TAG: "ndarray", **_array_fields(obj, trail, active)}
    if isinstance(obj, complex):
        return {TAG: "complex", "real": _float(obj.real), "imag": _float(obj.imag)}
    if isinstance(obj, bytes | bytearray):
        return {TAG: "bytes", "base64": base64.b64encode(bytes(obj)).decode("ascii")}
    if type(obj) in (dict, list, tuple, set, frozenset):
        if len(trail) >= MAX_DEPTH:
            raise RecursionError
        if id(obj) in active:
            raise SerializationError(
                f"the 'json' backend cannot store the reference cycle at {_where(trail)}; use 'h5' or 'pickle'"
            )
        active.add(id(obj))
        try:
            if type(obj) is dict:
                if all(type(k) is str for k in obj) and TAG not in obj:
                    return {k: _encode(v, [*trail, k], active) for k, v in obj.items()}
                return {
                    TAG: "dict",
                    "items": [
                        [_encode(k, [*trail, k], active), _encode(v, [*trail, k], active)] for k, v in obj.items()
                    ],
                }
            if type(obj) is list:
                return [_encode(v, [*trail, i], active) for i, v in enumerate(obj)]
            items = sorted(obj, key=repr) if isinstance(obj, set | frozenset) else obj
            return {
                TAG: type(obj).__name__,
                "items": [_encode(v, [*trail, i], active) for i, v in enumerate(items)],
            }
        finally:
            active.discard(id(obj))
    st = _json_safe_type(type(obj))
    found = _safe(obj, st, trail, active) if st is not None else None
    if found is not None:
        return found
    raise SerializationError(
        f"the 'json' backend cannot store {type(obj).__module__}.{type(obj).__qualname__} at {_where(trail)}; "
        "it stores dict, list, tuple, set, str, bytes, int, float, complex, bool, None, numpy "
        "arrays/scalars and the standard library's dates, times, paths, UUIDs, decimals and fractions. "
        "Convert it, or use backend='h5' (which stores pandas, ASE and scipy.sparse values as data too)"
    )


def encode(obj: Any) -> Any:
    """Encode ``obj`` into plain JSON data (see the module docstring)."""
    return _encode_document(obj)[0]


def _encode_document(obj: Any) -> tuple[Any, bool]:
    """The JSON data of ``obj``, and whether it holds a ``safe`` tag (format version 2)."""
    active = _Active()
    try:
        return _encode(obj, [], active), active.safe
    except RecursionError:
        raise SerializationError(
            f"the 'json' backend cannot store data nested this deeply (at most {MAX_DEPTH} levels)"
        ) from None


def _dec_float(x: Any) -> float:
    if isinstance(x, dict) and x.get(TAG) == "float":
        return _FLOAT_TAGS[x["value"]]
    return float(x)


def _decode_array(d: dict[str, Any]) -> np.ndarray:
    shape = tuple(d["shape"])
    order = d.get("order", "C")
    if "base64" in d:
        dtype = dtype_from_descr(d["dtype"])
        flat = np.frombuffer(base64.b64decode(d["base64"]), dtype=dtype).copy()
    else:
        dtype = np.dtype(d["dtype"])
        data = d["data"]
        kind = dtype.kind
        if kind == "f":
            flat = np.array([_dec_float(x) for x in data], dtype=dtype)
        elif kind == "c":
            flat = np.array([complex(_dec_float(r), _dec_float(i)) for r, i in data], dtype=dtype)
        elif kind == "S":
            flat = np.array([base64.b64decode(x) for x in data], dtype=dtype)
        elif kind in "mM":
            flat = np.array(data, dtype=np.int64).view(dtype)
        elif kind == "O":
            flat = np.empty(len(data), dtype=object)
            for i, x in enumerate(data):
                flat[i] = _decode(x)
        else:
            flat = np.array(data, dtype=dtype)
    if flat.size != math.prod(shape):
        raise ValueError(f"array data has {flat.size} elements, shape {shape} needs {math.prod(shape)}")
    return flat.reshape(shape, order=order)


#: ``decode(..., raw=True)``: safe tags become :class:`Raw` values
_RAW: contextvars.ContextVar[bool] = contextvars.ContextVar("sn_json_raw", default=False)


def _decode_safe(d: dict[str, Any]) -> Any:
    name = d["type"]
    meta, parts = _decode(d["meta"]), {k: _decode(v) for k, v in d["parts"].items()}
    if type(meta) is not dict:
        raise TypeError("the meta of a safe value must be a map")
    if _RAW.get():
        return Raw(str(name), meta, parts)
    st = _stdlib(by_name(name))
    if st is None:
        raise ValueError(f"unknown safe type {name!r} (json stores the standard library's only)")
    return st.decode(meta, parts)


_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "tuple": lambda d: tuple(_decode(x) for x in d["items"]),
    "set": lambda d: {_decode(x) for x in d["items"]},
    "frozenset": lambda d: frozenset(_decode(x) for x in d["items"]),
    "bytes": lambda d: base64.b64decode(d["base64"]),
    "float": lambda d: _FLOAT_TAGS[d["value"]],
    "complex": lambda d: complex(_dec_float(d["real"]), _dec_float(d["imag"])),
    "dict": lambda d: {_decode(k): _decode(v) for k, v in d["items"]},
    "ndarray": _decode_array,
    "npscalar": lambda d: _decode_array(d)[()],
    "safe": _decode_safe,
}


def _decode(data: Any) -> Any:
    if isinstance(data, list):
        return [_decode(x) for x in data]
    if isinstance(data, dict):
        tag = data.get(TAG)
        if tag is None:
            return {k: _decode(v) for k, v in data.items()}
        decoder = _DECODERS.get(tag) if isinstance(tag, str) else None
        if decoder is None:
            raise ValueError(f"unknown tag {tag!r}")
        return decoder(data)
    return data


def decode(data: Any, *, raw: bool = False) -> Any:
    """Inverse of :func:`encode`; never imports a module or calls anything the data names
    (a ``safe`` tag is rebuilt by the constructor of the standard-library type it names;
    ``raw=True``: returned as :class:`Raw` instead)."""
    token = _RAW.set(raw)
    try:
        return _decode(data)
    finally:
        _RAW.reset(token)


class JsonBackend(Backend):
    name = "json"
    #: 2: ``safe`` tags (the standard library's safe types); files without them are written as 1
    format_version = 2
    supports_browse = True  # the whole file is plain data: listing it runs no code
    save_options = frozenset({"indent"})  # json.dump's indent (default 1)
    read_options = frozenset({"raw", "refused"})  # raw: safe tags as Raw; nothing is ever refused

    def sniff(self, head: bytes) -> bool:
        return _SNIFF.match(head) is not None

    def write(self, obj: Any, path: Path, *, metadata: dict[str, Any], options: dict[str, Any]) -> None:
        try:
            data, uses_safe = _encode_document(obj)
        except SerializationError as exc:
            raise SerializationError(f"cannot save to {path}: {exc}", path=path) from None
        version = 2 if uses_safe else 1  # readers of 1 would not know the safe tag
        doc = {
            "storage_nodes": {
                "format": FORMAT,
                "format_version": version,
                "backend": self.name,
            },
            "metadata": metadata,
            "environment": environment_record(backend=self.name, format_version=version),
            "data": data,
        }
        indent = options.get("indent", 1)
        with io.TextIOWrapper(open_new(path), encoding="utf-8") as f:
            json.dump(doc, f, indent=indent, ensure_ascii=False, allow_nan=False)

    def _document(self, path: Path) -> dict[str, Any]:
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except RecursionError:
            raise StorageError(f"{path} is nested too deeply for the json reader", path=path) from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise CorruptFileError(f"{path} is not a valid storage_nodes JSON file ({exc})", path=path) from None
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}", path=path) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("storage_nodes"), dict) or "data" not in doc:
            raise CorruptFileError(
                f"{path} is JSON but not a storage_nodes file (no 'storage_nodes' header)", path=path
            )
        header = doc["storage_nodes"]
        if header.get("format", FORMAT) != FORMAT:  # as h5 refuses a foreign index (none: written by hand)
            raise CorruptFileError(
                f"{path} is JSON of the format {header.get('format')!r}, not {FORMAT!r}; read it with the tool that "
                "wrote it",
                path=path,
            )
        version = header.get("format_version")
        if type(version) is not int or not 1 <= version <= self.format_version:  # as h5 refuses a newer version
            raise StorageError(
                f"{path} uses json format {version!r}; this storage_nodes reads up to "
                f"{self.format_version}: upgrade it",
                path=path,
            )
        return doc

    def _data(self, path: Path, doc: dict[str, Any], raw: bool = False) -> Any:
        try:
            return decode(doc["data"], raw=raw)
        except RecursionError:
            raise StorageError(f"{path} is nested too deeply to decode", path=path) from None
        except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as exc:
            raise CorruptFileError(
                f"{path} holds damaged tagged data ({type(exc).__name__}: {exc})", path=path
            ) from None

    def read(
        self,
        path: Path,
        *,
        key: str | None,
        safe: bool,
        check: CheckCallback,
        raw: bool = False,
        refused: str = "error",
    ) -> Any:
        doc = self._document(path)
        check(doc.get("environment"), None)
        return navigate(self._data(path, doc, raw), key, path=path)

    def list(self, path: Path, *, key: str | None = None, depth: int | None = None) -> Listing:
        doc = self._document(path)
        obj = navigate(self._data(path, doc), key, path=path)
        prefix = "/".join(escape(s) for s in split(key))
        name = split(key)[-1] if key else ""
        header = doc["storage_nodes"]
        return Listing(
            path=str(path),
            backend=self.name,
            format_version=int(header.get("format_version", 0)),
            root=describe(obj, path=prefix, name=name, depth=64 if depth is None else depth),
            metadata=doc.get("metadata") or {},
            environment=doc.get("environment") or {},
            key=key,
        )
