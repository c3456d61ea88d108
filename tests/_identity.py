"""Pickle as the oracle: the shape of an object graph, identity included.

:func:`graph_shape` walks an object graph (containers, instance dicts and slots, numpy
object arrays, reduce state) and numbers every object by first visit, so two graphs have
the same shape exactly when they hold the same types and values with the same sharing and
cycles. An h5 round trip must give the shape a pickle (protocol 5) round trip gives.
"""

from __future__ import annotations

import copyreg
import math
import pickle
import types
from typing import Any

import numpy as np

_ATOMS = (str, bytes, int, float, complex, bool, type(None))


def _atom(obj: Any) -> Any:
    if type(obj) is float and math.isnan(obj):
        return ("nan",)
    if type(obj) is float and obj == 0.0:
        return ("float0", math.copysign(1.0, obj))
    if type(obj) is complex:
        return ("complex", _atom(obj.real), _atom(obj.imag))
    return obj


def graph_shape(root: Any) -> list[Any]:
    """A list describing ``root``'s graph: one record per object, in first-visit order.

    Atoms (str, bytes, numbers, numpy scalars, None: immutable values) are compared by
    value, not identity (pickle keeps a repeated str or numpy scalar as one object, the
    archive may not; no program can tell but by ``is``); globals (classes, functions) by
    identity with the live object; every other object by its number.
    """
    numbers: dict[int, int] = {}
    keep: list[Any] = []
    records: list[Any] = []

    def ref(obj: Any) -> Any:
        t = type(obj)
        if t in _ATOMS:
            return ("atom", t.__name__, _atom(obj))
        if isinstance(obj, np.generic):  # immutable values: identity not compared (see below)
            return ("atom", obj.dtype.str, obj.tobytes())
        if t is types.MethodType:  # made anew on each attribute access: compared by owner and name
            return ("method", ref(obj.__self__), obj.__func__.__qualname__)
        if isinstance(obj, type) or t in (types.FunctionType, types.BuiltinFunctionType):
            # classes and functions are globals: both round trips must give the very object
            return ("global", id(obj))
        n = numbers.get(id(obj))
        if n is None:
            n = numbers[id(obj)] = len(numbers)
            keep.append(obj)
            todo.append(obj)
        return ("obj", n)

    todo: list[Any] = []
    first = ref(root)
    records.append(("root", first))
    while todo:
        obj = todo.pop(0)
        records.append(_record(obj, ref))
    return records


def _record(obj: Any, ref: Any) -> Any:
    t = type(obj)
    name = f"{t.__module__}.{t.__qualname__}"
    if t is list or t is tuple:
        return (name, [ref(x) for x in obj])
    if t is dict:
        return (name, [(ref(k), ref(v)) for k, v in obj.items()])
    if t is set or t is frozenset:
        # sets are unordered: describe them by the sorted reprs of their atoms and by count
        return (name, len(obj), sorted(repr(ref(x)) for x in obj if type(x) in _ATOMS))
    if t is np.ndarray:
        if obj.dtype == object:
            return (name, obj.shape, [ref(x) for x in obj.ravel()])
        return (name, obj.dtype.str, obj.shape, obj.tobytes(), obj.flags.f_contiguous)
    if isinstance(obj, np.generic):
        return (name, obj.dtype.str, obj.tobytes())
    try:
        reduced = obj.__reduce_ex__(5)
    except Exception as exc:  # not reducible: only its type
        return (name, "unreducible", type(exc).__name__)
    if isinstance(reduced, str):
        return (name, "global", reduced)
    func, args, state, listitems, dictitems = (*reduced, None, None, None)[:5]
    if func is copyreg.__newobj__:  # type: ignore[attr-defined]
        args = args[1:]
    parts = [name, [ref(a) for a in args]]
    if isinstance(state, dict):
        parts.append([(k, ref(v)) for k, v in state.items()])
    elif isinstance(state, tuple) and len(state) == 2 and all(s is None or isinstance(s, dict) for s in state):
        parts.append([[(k, ref(v)) for k, v in (s or {}).items()] for s in state])
    elif state is not None:
        parts.append(ref(state))
    if listitems is not None:
        parts.append([ref(x) for x in listitems])
    if dictitems is not None:
        parts.append([(ref(k), ref(v)) for k, v in dictitems])
    return tuple(parts)


def pickle_roundtrip(obj: Any) -> Any:
    return pickle.loads(pickle.dumps(obj, protocol=5))
