"""Describe a live object as :class:`~storage_nodes.listing.Entry` data (no I/O).

Used at save time by backends that cannot be browsed later (pickle, cloudpickle, json):
they store this shallow description in their header so ``inspect`` never unpickles.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from typing import Any

from . import keys as _keys
from .listing import Entry, lazy_entry

__all__ = ["describe"]

MAX_CHILDREN = 200


def _type_info(obj: Any) -> tuple[str, str | None]:
    cls = type(obj)
    module = cls.__module__
    return cls.__qualname__, (None if module == "builtins" else module)


def _child_items(obj: Any, limit: int) -> tuple[list[tuple[str, Any]], int] | None:
    """The first ``limit`` (name, value) children of a container, and how many it has."""
    if isinstance(obj, Mapping):
        items = itertools.islice(obj.items(), limit)
        return [(k if isinstance(k, str) else repr(k), v) for k, v in items], len(obj)
    if isinstance(obj, list | tuple):
        return [(str(i), v) for i, v in enumerate(obj[:limit])], len(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = dataclasses.fields(obj)
        return [(f.name, getattr(obj, f.name, None)) for f in fields[:limit]], len(fields)
    return None


def describe(obj: Any, *, path: str = "", name: str = "", depth: int = 1) -> Entry:
    """An :class:`Entry` for ``obj`` with children down to ``depth`` levels."""
    type_name, module = _type_info(obj)
    entry = Entry(path=path, name=name, type=type_name, module=module)
    shape = getattr(obj, "shape", None)
    dtype = getattr(obj, "dtype", None)
    if isinstance(shape, tuple) and dtype is not None:
        entry.shape = tuple(int(s) for s in shape)
        entry.dtype = str(dtype)
        nbytes = getattr(obj, "nbytes", None)
        entry.size = int(nbytes) if isinstance(nbytes, int) else None
    elif isinstance(obj, str | bytes | bytearray):
        entry.length = len(obj)
        entry.size = len(obj) if not isinstance(obj, str) else len(obj.encode("utf-8", "surrogatepass"))
    elif isinstance(obj, int | float | complex | bool) or obj is None:
        pass  # scalars: the type says enough
    else:
        try:
            entry.length = len(obj)
        except Exception:
            pass
    found = _child_items(obj, MAX_CHILDREN if depth > 0 else 0)
    if found is not None:
        items, total = found
        entry.truncated = total - len(items)  # at depth 0: all of them
        if items:  # described when first reached
            fields = {f.name: getattr(entry, f.name) for f in dataclasses.fields(Entry) if f.name != "children"}
            return lazy_entry(lambda: _children(items, path, depth), **fields)
    return entry


def _children(items: list[tuple[str, Any]], path: str, depth: int) -> list[Entry]:
    out = []
    for child_name, value in items:
        child_path = f"{path}/{_keys.escape(child_name)}" if path else _keys.escape(child_name)
        out.append(describe(value, path=child_path, name=child_name, depth=depth - 1))
    return out
