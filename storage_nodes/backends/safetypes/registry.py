"""The registry of safe types: values stored natively, as data, and rebuilt by fixed constructors.

A safe type has a name (written into the file), an ``encode`` function that turns a value
into ``(meta, parts)`` and a ``decode`` function that rebuilds the value from them. ``meta``
is a small map of index-plain data (str, int, float, bool, None, lists and str-keyed maps of
these) kept in the archive's index, ``parts`` a list of ``(name, value)`` pairs that the
backend stores like any other value (arrays become heap slices or datasets; each part is an
entry of its own, loadable by key). Loading looks the name up here: nothing the file names
is imported or called, only ``decode`` runs, which imports at most the type's own
``package``.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SafeType", "by_name", "for_type", "meta_problem", "names", "register_safe_type"]

Meta = dict[str, Any]
Parts = list[tuple[str, Any]]
#: what ``encode`` returns: ``None`` leaves the value to the generic encoding
Encoded = tuple[Meta, Parts] | None


@dataclass(frozen=True)
class SafeType:
    """One safe type: its stored ``name``, how values are taken apart and rebuilt.

    ``encode(value)`` gives ``(meta, parts)`` or ``None`` (the value is then stored the
    generic way, e.g. a subclass or a state this encoding cannot carry). ``decode(meta,
    parts)`` rebuilds the value from ``meta`` and the decoded ``parts`` (a dict by name); with
    ``by_reference`` it is called as ``decode(meta, parts, cls)`` with the value's class,
    which the file names and a ``safe=True`` load takes only from modules already imported.
    ``package`` is the distribution ``decode`` imports (named when it is missing).
    ``describe(meta)`` gives what ``inspect`` shows (``shape``, ``info``) without decoding.
    """

    name: str
    encode: Callable[[Any], Encoded]
    decode: Callable[..., Any]
    package: str = ""
    describe: Callable[[Meta], dict[str, Any]] | None = None
    by_reference: bool = False
    #: the name ``inspect`` shows as the entry's type, and its module
    type_name: str = ""
    module: str = ""
    classes: tuple[type, ...] = field(default=(), compare=False)

    def owns(self, module: Any) -> bool:
        """Whether ``module`` (a class's module as a file records it) is of this type's own
        top-level package (compared as text: nothing is imported)."""
        if type(module) is not str:
            return False
        expected, top = self.module.split(".")[0], module.split(".")[0]
        return top == expected or (expected == "builtins" and top == "types")


_lock = threading.Lock()
_by_name: dict[str, SafeType] = {}
_by_class: dict[type, SafeType] = {}
#: functions ``(cls) -> SafeType | None`` for families whose classes are not imported yet
#: (pandas, ase, scipy: looked at only when such a value is met)
_matchers: list[Callable[[type], SafeType | None]] = []
_families_loaded = False


def _load_families() -> None:
    """Import the built-in families (cheap: none imports its third-party package)."""
    global _families_loaded
    if _families_loaded:
        return
    with _lock:
        if _families_loaded:
            return
        for family in ("stdlib", "pandas", "ase", "sparse"):
            importlib.import_module(f"{__package__}.{family}").install(_install)
        _families_loaded = True


def _install(
    st: SafeType, classes: tuple[type, ...] = (), matcher: Callable[[type], SafeType | None] | None = None
) -> None:
    _by_name[st.name] = st
    for cls in classes:
        _by_class[cls] = st
    if matcher is not None:
        _matchers.append(matcher)


def register_safe_type(
    cls: type,
    name: str,
    encode: Callable[[Any], Encoded],
    decode: Callable[[Meta, dict[str, Any]], Any],
    *,
    describe: Callable[[Meta], dict[str, Any]] | None = None,
    package: str = "",
) -> SafeType:
    """Store instances of exactly ``cls`` natively under ``name``, loadable with ``safe=True``.

    ``encode(obj)`` returns ``(meta, parts)`` (or ``None`` to store ``obj`` the generic
    way); ``decode(meta, parts)`` must rebuild the object from them with fixed code (the
    file chooses nothing it calls). Register at import of the library that defines ``cls``:
    a file naming an unregistered type is refused by ``safe=True`` loads. See
    ``docs/format.md`` (*Safe types*) for a worked example.

    >>> register_safe_type(Vector, "mylib.Vector", encode, decode)  # doctest: +SKIP
    """
    if not isinstance(cls, type):
        raise TypeError(f"cls must be a class, got {cls!r}")
    if not isinstance(name, str) or not name or name.startswith("_"):
        raise ValueError(f"name must be a non-empty str not starting with '_', got {name!r}")
    _load_families()
    st = SafeType(
        name=name,
        encode=encode,
        decode=decode,
        package=package,
        describe=describe,
        type_name=cls.__qualname__,
        module=cls.__module__,
        classes=(cls,),
    )
    with _lock:
        known = _by_name.get(name)
        if known is not None and known.classes != (cls,):
            raise ValueError(f"the safe type name {name!r} is taken by {known.module}.{known.type_name}")
        _install(st, (cls,))
    return st


def for_type(cls: type) -> SafeType | None:
    """The safe type that stores values of exactly ``cls``, if any."""
    _load_families()
    found = _by_class.get(cls)
    if found is not None:
        return found
    for matcher in _matchers:
        found = matcher(cls)
        if found is not None:
            return found
    return None


def by_name(name: Any) -> SafeType | None:
    """The safe type stored under ``name`` (``None`` when unknown here)."""
    _load_families()
    return _by_name.get(name) if type(name) is str else None


def names() -> list[str]:
    """The names of every registered safe type."""
    _load_families()
    return sorted(_by_name)


_INDEX_SCALARS = frozenset({str, int, float, bool, type(None), bytes})


def meta_problem(meta: Any) -> str | None:
    """What in an encoder's ``meta`` the index cannot hold (``None``: a str-keyed map of str-keyed
    maps, lists and scalars, as the index holds them)."""
    if type(meta) is not dict:
        return f"a {type(meta).__qualname__} (not a dict)"
    return _problem(meta, 0)


def _problem(value: Any, depth: int) -> str | None:
    t = type(value)
    if t in _INDEX_SCALARS:
        return None
    if depth > 32:
        return "data nested more than 32 levels deep"
    if t is list:
        return next((bad for v in value if (bad := _problem(v, depth + 1)) is not None), None)
    if t is dict:
        if not all(type(k) is str for k in value):
            return "a map with keys that are not str"
        return next((bad for v in value.values() if (bad := _problem(v, depth + 1)) is not None), None)
    return f"a {t.__qualname__}"
