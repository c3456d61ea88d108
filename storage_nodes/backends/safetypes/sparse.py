"""The safe type of ``scipy.sparse``: matrices and arrays in the CSR, CSC, COO, BSR and DIA formats.

Stored as ``meta`` (``format``, ``kind``: ``"matrix"`` or ``"array"``, ``shape``, ``dtype``,
``nnz``) and the format's component arrays as parts (CSR/CSC/BSR: ``data``, ``indices``,
``indptr``; COO: ``data``, ``coords``; DIA: ``data``, ``offsets``), rebuilt by the scipy class
of that format and kind, with its full format check. LIL and DOK (no array form to store)
are stored the generic way. scipy is imported only when such a value is met or rebuilt.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .registry import Encoded, Meta, SafeType

__all__ = ["install"]

_FORMATS = ("csr", "csc", "coo", "bsr", "dia")
_COMPONENTS = {
    "csr": ("data", "indices", "indptr"),
    "csc": ("data", "indices", "indptr"),
    "bsr": ("data", "indices", "indptr"),
    "dia": ("data", "offsets"),
}


def _enc_sparse(m: Any) -> Encoded:
    fmt = m.format
    if fmt not in _FORMATS:
        return None
    kind = "matrix" if type(m).__name__.endswith("_matrix") else "array"
    meta: Meta = {
        "format": fmt,
        "kind": kind,
        "shape": [int(s) for s in m.shape],
        "dtype": str(m.dtype),
        "nnz": int(m.nnz),
    }
    if fmt == "coo":
        coords = list(m.coords) if hasattr(m, "coords") else [m.row, m.col]
        return meta, [("data", m.data), ("coords", [np.asarray(c) for c in coords])]
    return meta, [(name, getattr(m, name)) for name in _COMPONENTS[fmt]]


def _dec_sparse(meta: Meta, parts: dict[str, Any]) -> Any:
    import scipy.sparse as sp

    fmt, kind, shape = meta["format"], meta["kind"], meta["shape"]
    if fmt not in _FORMATS or kind not in ("matrix", "array"):
        raise ValueError(f"unknown sparse format {fmt!r} ({kind!r})")
    if not (type(shape) is list and all(type(s) is int and s >= 0 for s in shape)):
        raise TypeError("shape must be a list of non-negative ints")
    cls = getattr(sp, f"{fmt}_{kind}")
    data = parts["data"]
    if not isinstance(data, np.ndarray):
        raise TypeError("data must be an array")
    if fmt == "coo":
        coords = parts["coords"]
        if not (type(coords) is list and all(isinstance(c, np.ndarray) and c.dtype.kind in "iu" for c in coords)):
            raise TypeError("coords must be a list of integer arrays")
        return cls((data, tuple(coords)), shape=tuple(shape))  # the constructor checks the coordinates
    components = [parts[name] for name in _COMPONENTS[fmt]]
    if not all(isinstance(c, np.ndarray) and c.dtype.kind in "iu" for c in components[1:]):
        raise TypeError(f"{', '.join(_COMPONENTS[fmt][1:])} must be integer arrays")
    m = cls(tuple(components), shape=tuple(shape))
    if fmt != "dia":
        m.check_format(full_check=True)  # index bounds and order: nothing later reads out of bounds
    return m


def _describe(meta: Meta) -> dict[str, Any]:
    info = {
        "format": meta.get("format"),
        "nnz": meta.get("nnz"),
        "summary": f"{meta.get('format')}, nnz={meta.get('nnz')}",
    }
    return {"shape": meta.get("shape"), "dtype": meta.get("dtype"), "info": info}


_SPARSE = SafeType(
    name="scipy.sparse",
    encode=_enc_sparse,
    decode=_dec_sparse,
    package="scipy",
    describe=_describe,
    type_name="sparse",
    module="scipy.sparse",
)


def _match(cls: type) -> SafeType | None:
    if not cls.__module__.startswith("scipy.sparse"):
        return None
    sp = sys.modules.get("scipy.sparse")
    if sp is None:
        return None
    for fmt in _FORMATS:
        if cls is getattr(sp, f"{fmt}_matrix", None) or cls is getattr(sp, f"{fmt}_array", None):
            return _SPARSE
    return None


def install(add: Callable[..., None]) -> None:
    """Register the scipy.sparse formats with ``add(safe_type, classes, matcher)``."""
    add(_SPARSE, (), _match)
