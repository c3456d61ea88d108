"""Whether a class or function can be found again by ``module`` + ``qualname``, the name
the encoder records for it (and the decoder imports), without importing anything.
"""

from __future__ import annotations

import sys
import threading
import types
import weakref
from typing import Any

__all__ = ["TYPES_NAMES", "class_name", "importable"]

#: builtin classes not reachable as ``builtins.<name>``, by their name in ``types``
TYPES_NAMES: dict[Any, str] = {
    value: name
    for name, value in vars(types).items()
    if isinstance(value, type) and value.__module__ == "builtins" and not name.startswith("_")
}


def class_name(cls: type) -> tuple[str, str]:
    """``(module, qualname)`` of ``cls``, the name a stored class is recorded under."""
    return cls.__module__, cls.__qualname__


_importable_cache: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
_importable_lock = threading.Lock()


def importable(obj: Any) -> bool:
    """Whether ``obj`` can be found again as ``module.qualname`` (without importing)."""
    if isinstance(obj, type):
        with _importable_lock:
            found = _importable_cache.get(obj)
            if found is None:
                found = _importable_cache[obj] = _importable(obj)
        return found
    return _importable(obj)


def _importable(obj: Any) -> bool:
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    qualname = getattr(obj, "__qualname__", None)
    if module is None or not qualname or "<locals>" in qualname:
        return False
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
        if found is None:
            return False
    return found is obj
