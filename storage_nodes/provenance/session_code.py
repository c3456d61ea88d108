"""Code a fresh interpreter cannot import by name: functions and classes of ``__main__``,
notebook cells, IPython sessions and modules made at run time.

Such code has no module file to hash and no distribution to look up, so the environment
record hashes its *live* source (``inspect.getsource``, which IPython and Jupyter serve
from ``linecache``) and marks the module ``"session": true``. A later session that defines
the same name is compared with that hash; one that does not define it is not a
difference (the file carries the code, or rebuilding it fails with its own error).

Nothing here imports a module: objects are looked up in ``sys.modules`` only.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import sys
import types
import weakref
from collections.abc import Iterable
from typing import Any

__all__ = ["MAIN_MODULES", "is_session_module", "live_object", "live_source", "session_hashes", "source_hash"]

#: the names a script, a notebook or an IPython session runs under
MAIN_MODULES = frozenset({"__main__", "__mp_main__"})

# function or class -> (its code object or None, its source, the source's sha256); a cell run
# again makes a new object, so an entry never goes stale for long and never keeps one alive
_cache: weakref.WeakKeyDictionary[Any, tuple[Any, str | None, str | None]] = weakref.WeakKeyDictionary()


def is_session_module(module: str) -> bool:
    """Whether a fresh interpreter could not import ``module`` by name: ``__main__`` (a script,
    a notebook, an IPython session) or a loaded module with no file on disk (made at run time).

    >>> is_session_module("__main__"), is_session_module("json")
    (True, False)
    """
    if module in MAIN_MODULES:
        return True
    mod = sys.modules.get(module)
    if mod is None or module in sys.builtin_module_names:
        return False
    file = getattr(mod, "__file__", None)
    if isinstance(file, str):
        return not os.path.exists(file)
    spec = getattr(mod, "__spec__", None)
    return spec is None or spec.origin in (None, "")  # a namespace package has locations


def live_object(module: str, qualname: str) -> Any:
    """The object ``module.qualname`` of this session (``None`` when it does not define it); imports nothing."""
    obj: Any = sys.modules.get(module)
    for part in qualname.split("."):
        if obj is None or part == "<locals>":
            return None
        obj = getattr(obj, part, None)
    return obj


def live_source(obj: Any) -> str | None:
    """The source text of a function or class (decorators included), ``None`` when unavailable.

    Kept per object (and code object) while it lives: a notebook saves the same functions
    again and again, and ``inspect.getsource`` tokenizes the whole cell or file each time."""
    code = getattr(obj, "__code__", None)
    try:
        hit = _cache.get(obj)
    except TypeError:  # not weakly referenceable
        return _read_source(obj)
    if hit is not None and hit[0] is code:
        return hit[1]
    source = _read_source(obj)
    _cache[obj] = (code, source, source_hash(source) if source is not None else None)
    return source


def _read_source(obj: Any) -> str | None:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return None


def source_hash(source: str) -> str:
    """The sha256 of a definition's text, the way source hashes are recorded."""
    return hashlib.sha256(source.encode()).hexdigest()


def _live_hash(obj: Any) -> str | None:
    source = live_source(obj)
    if source is None:
        return None
    try:
        return _cache[obj][2]
    except (KeyError, TypeError):
        return source_hash(source)


def session_hashes(module: str, qualnames: Iterable[str]) -> dict[str, str]:
    """``{qualname: sha256 of its live source}`` for the names this session defines in ``module``."""
    result = {}
    for qualname in sorted(set(qualnames)):
        obj = live_object(module, qualname)
        if isinstance(obj, type | types.FunctionType):
            digest = _live_hash(obj)
            if digest is not None:
                result[qualname] = digest
    return result
