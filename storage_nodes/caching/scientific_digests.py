"""Canonical fleche digests for scientific types: numpy arrays, pandas, scipy sparse, ase.Atoms.

fleche keys a call by the digests of its arguments. It cannot digest ``ase.Atoms`` or a
scipy sparse matrix at all (a node taking one runs uncached), and its array digest is
not canonical for every dtype: equal arrays of other byte order differ, and an object
array digests its floats through ``hash()`` (``-1.0`` and ``-2.0`` collide). The hook
installed here (through fleche's own :func:`fleche.digest.add_hook`, when fleche is
imported) digests these types canonically: equal values give equal digests, any change
to a value gives a different one.

- **numpy arrays** of every dtype: dtype (byte order normalised to little-endian), shape
  and the elements in C order, so memory layout (non-contiguous views, Fortran order,
  byte order) does not matter. Plain native arrays keep fleche's own keys exactly.
  Object and ``StringDType`` arrays digest element by element (floats by their IEEE
  bytes); structured arrays field by field (names and field values; padding and offsets
  do not count); masked arrays add their mask; other subclasses their class and
  attributes.
- **pandas** ``DataFrame``/``Series``/``Index``: labels, dtypes, index and column values
  (numpy columns as arrays, categoricals by categories and codes, other columns element
  by element); how a frame is held in memory does not count.
- **scipy sparse** matrices and arrays: class (format), shape, dtype and the nonzero
  entries in canonical order (duplicates summed, explicit zeros dropped).
- **ase.Atoms**: every per-atom array (positions, numbers, momenta, tags, ...), cell, pbc,
  cell displacement, ``info``, constraints (``todict()``) and the attached calculator's
  class and parameters — not its results, which change as it computes.

Floats inside these values (an object array, an ``info`` dict) are digested by their IEEE
bytes, whether or not :func:`~storage_nodes.caching.enable_exact_float_digests` is on.
pandas, scipy and ase are never imported here: the hook learns of their types when the
packages are imported (:func:`storage_nodes.caching._import_watch.when_imported`), so until then it
costs one ``isinstance`` against ``numpy.ndarray``.

>>> import numpy as np  # doctest: +SKIP
>>> from fleche.digest import digest  # doctest: +SKIP
>>> digest(np.arange(3.0)) == digest(np.arange(3.0).astype(">f8"))  # doctest: +SKIP
True
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import numpy as np

from ._import_watch import when_imported
from .digests import exact_float_digest

# fleche.digest is imported inside the functions, as in digests.py: this module is
# imported while fleche itself is being imported.

_FLOATS = (float, complex, np.floating, np.complexfloating)
_SALT = b"storage_nodes.scientific-digest/1\x00"
_lock = threading.Lock()
_hook_object: Any = None
#: exact type -> digest function (filled as types are met; subclasses resolved once)
_handlers: dict[type, Callable[[Any], str]] = {}
#: (base type, digest function), in the order they are tried for a type not yet in _handlers
_bases: list[tuple[type, Callable[[Any], str]]] = []


def _fleche_digest(value: Any) -> str:
    from fleche.digest import digest

    return str(digest(value))


def _new(kind: str) -> Any:
    m = hashlib.sha256(_SALT)
    m.update(kind.encode())
    m.update(b"\x00")
    return m


def exact_digest(value: Any) -> str:
    """The digest of a value inside a scientific one: floats by IEEE bytes, containers recursively.

    Floats and complex numbers (also numpy scalars) go by :func:`exact_float_digest`,
    arrays by :func:`array_digest`, dicts, lists and tuples element by element; anything
    else by fleche's own digest (and its hooks, these included).
    """
    if isinstance(value, _FLOATS):
        return exact_float_digest(value)
    if isinstance(value, np.ndarray):
        return array_digest(value)
    if isinstance(value, Mapping):
        m = _new(type(value).__name__)
        for kd, vd in sorted((exact_digest(k), exact_digest(v)) for k, v in value.items()):
            m.update(kd.encode())
            m.update(vd.encode())
        return m.hexdigest()
    if isinstance(value, (list, tuple)):
        m = _new(type(value).__name__)
        for item in value:
            m.update(exact_digest(item).encode())
        return m.hexdigest()
    return _fleche_digest(value)


def _little_endian(array: np.ndarray) -> np.ndarray:
    if array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and not np.little_endian):
        return array.astype(array.dtype.newbyteorder("<"))
    return array


def array_digest(array: np.ndarray) -> str:
    """The canonical digest of a numpy array of any dtype (see the module docstring).

    For a plain native-order array of a numeric, bool, string, bytes or datetime dtype it
    equals fleche's own digest, so existing cache keys of such arguments stay valid.
    """
    cls = type(array)
    if cls is not np.ndarray:
        return _subclass_digest(array)
    dtype = array.dtype
    if dtype.names is not None:
        m = _new("structured")
        m.update(_fleche_digest(array.shape).encode())
        for name in dtype.names:
            m.update(_fleche_digest(name).encode())
            m.update(array_digest(np.asarray(array[name])).encode())
        return m.hexdigest()
    if dtype.hasobject or dtype.kind == "T":  # object, numpy's StringDType: element by element
        m = _new("elements")
        m.update(_fleche_digest(dtype.str).encode())
        m.update(_fleche_digest(array.shape).encode())
        for item in array.ravel(order="C").tolist():
            m.update(exact_digest(item).encode())
        return m.hexdigest()
    array = _little_endian(array)
    # exactly fleche's format for an ndarray (digest.py, the ndarray arm)
    m = hashlib.sha256(b"ndarray")
    m.update(_fleche_digest(array.dtype.str).encode())
    m.update(_fleche_digest(array.shape).encode())
    m.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8).data)
    return m.hexdigest()


def _subclass_digest(array: np.ndarray) -> str:
    cls = type(array)
    m = _new(f"{cls.__module__}.{cls.__qualname__}")
    m.update(array_digest(np.asarray(array).view(np.ndarray)).encode())
    if isinstance(array, np.ma.MaskedArray):  # its __dict__ is numpy.ma's bookkeeping
        m.update(array_digest(np.ma.getmaskarray(array)).encode())
    elif getattr(array, "__dict__", None):  # e.g. a unit: part of the value
        m.update(exact_digest(dict(vars(array))).encode())
    return m.hexdigest()


# -- pandas --------------------------------------------------------------------------------
def _values_digest(values: Any, dtype: Any) -> str:
    """A pandas column or index's values: numpy data as an array, categoricals, else elements."""
    if isinstance(dtype, np.dtype) and not dtype.hasobject:
        return array_digest(np.asarray(values))
    m = _new("pandas-values")
    m.update(str(dtype).encode() + b"\x00")
    categories = getattr(dtype, "categories", None)
    if categories is not None and hasattr(values, "codes"):  # a Categorical
        m.update(_index_digest(categories).encode())
        m.update(_fleche_digest(bool(dtype.ordered)).encode())
        m.update(array_digest(np.asarray(values.codes)).encode())
        return m.hexdigest()
    for item in np.asarray(values, dtype=object).tolist():
        m.update(exact_digest(item).encode())
    return m.hexdigest()


def _index_digest(index: Any) -> str:
    m = _new(f"pandas.{type(index).__name__}")
    names = list(index.names)
    m.update(exact_digest(names).encode())
    if getattr(index, "nlevels", 1) > 1:
        for level in range(index.nlevels):
            values = index.get_level_values(level)
            m.update(_values_digest(values.array, values.dtype).encode())
    else:
        m.update(_values_digest(index.array, index.dtype).encode())
    return m.hexdigest()


def _series_digest(series: Any) -> str:
    m = _new("pandas.Series")
    m.update(exact_digest(series.name).encode())
    m.update(_index_digest(series.index).encode())
    m.update(_values_digest(series.array, series.dtype).encode())
    return m.hexdigest()


def _frame_digest(frame: Any) -> str:
    m = _new("pandas.DataFrame")
    m.update(_index_digest(frame.columns).encode())
    m.update(_index_digest(frame.index).encode())
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        m.update(_values_digest(column.array, column.dtype).encode())
    return m.hexdigest()


# -- scipy.sparse --------------------------------------------------------------------------
def sparse_digest(matrix: Any) -> str:
    """A scipy sparse matrix or array: class, shape, dtype and its canonical nonzero entries."""
    cls = type(matrix)
    m = _new(f"scipy.sparse.{cls.__qualname__}")
    m.update(_fleche_digest(tuple(int(n) for n in matrix.shape)).encode())
    coo = matrix.tocoo(copy=True)
    coo.sum_duplicates()
    coo.eliminate_zeros()
    coords = [np.asarray(c, dtype=np.int64) for c in getattr(coo, "coords", (coo.row, coo.col))]
    order = np.lexsort(coords[::-1]) if coords and coords[0].size else np.arange(0)
    for c in coords:
        m.update(array_digest(c[order]).encode())
    m.update(array_digest(np.asarray(coo.data)[order]).encode())
    return m.hexdigest()


# -- ase -----------------------------------------------------------------------------------
def atoms_digest(atoms: Any) -> str:
    """An ``ase.Atoms``: arrays, cell, pbc, celldisp, info, constraints, calculator class and parameters."""
    cls = type(atoms)
    m = _new(f"{cls.__module__}.{cls.__qualname__}")
    for name in sorted(atoms.arrays):
        m.update(name.encode() + b"\x00")
        m.update(array_digest(np.asarray(atoms.arrays[name])).encode())
    m.update(array_digest(np.asarray(atoms.cell, dtype=float)).encode())
    m.update(array_digest(np.asarray(atoms.pbc, dtype=bool)).encode())
    m.update(array_digest(np.asarray(atoms.get_celldisp(), dtype=float)).encode())
    m.update(exact_digest(dict(atoms.info)).encode())
    m.update(exact_digest([c.todict() for c in atoms.constraints]).encode())
    calc = atoms.calc
    if calc is None:
        m.update(b"no calculator")
    else:
        ccls = type(calc)
        m.update(f"{ccls.__module__}.{ccls.__qualname__}".encode())
        m.update(exact_digest(dict(getattr(calc, "parameters", None) or {})).encode())
    return m.hexdigest()


def scientific_digest(value: Any) -> str:
    """The canonical digest of an array, pandas object, scipy sparse matrix or ``ase.Atoms``."""
    cls = type(value)
    handler = _handlers.get(cls)
    if handler is None:
        for base, fn in _bases:
            if isinstance(value, base):
                handler = _handlers[cls] = fn
                break
        else:
            raise TypeError(f"scientific_digest takes arrays, pandas, scipy sparse and ase.Atoms, not {cls.__name__}")
    return handler(value)


def _add_types(pairs: list[tuple[type, Callable[[Any], str]]]) -> None:
    with _lock:
        _bases.extend(pairs)
        _handlers.clear()
        if _hook_object is not None:
            _hook_object.type = tuple(base for base, _ in _bases)


def _on_pandas(module: ModuleType) -> None:
    _add_types([(module.DataFrame, _frame_digest), (module.Series, _series_digest), (module.Index, _index_digest)])


def _on_scipy_sparse(module: ModuleType) -> None:
    bases = [getattr(module, name) for name in ("spmatrix", "sparray") if hasattr(module, name)]
    _add_types([(base, sparse_digest) for base in bases])


def _on_ase(module: ModuleType) -> None:
    _add_types([(module.Atoms, atoms_digest)])


def scientific_digests_enabled() -> bool:
    """Whether the hook is among fleche's digest hooks in this process."""
    from fleche.digest import get_hooks

    return _hook_object is not None and any(h is _hook_object for h in get_hooks())


def enable_scientific_digests() -> None:
    """Install the hook (idempotent); registering our storage type with fleche does this.

    pandas, scipy.sparse and ase types join the hook when those packages are imported.
    """
    global _hook_object
    from fleche.digest import Hook, add_hook

    with _lock:
        if _hook_object is not None:
            return
        _bases.insert(0, (np.ndarray, array_digest))
        _hook_object = Hook(tuple(base for base, _ in _bases), scientific_digest)
        add_hook(_hook_object)
    when_imported("pandas", _on_pandas)
    when_imported("scipy.sparse", _on_scipy_sparse)
    when_imported("ase", _on_ase)
