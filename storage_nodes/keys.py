"""Keys: ``/``-separated paths into a stored object.

A key names an entry by its dict keys, sequence indices and attribute names, e.g.
``"outputs/forces/3"``. Inside one segment ``~`` is written ``~0`` and ``/`` is written
``~1`` (the JSON-pointer rule), so any string dict key can be named. The same syntax is
used by every backend, by stored workflows (``<node>/outputs/<port>``) and collections.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .errors import InvalidArgumentError, KeyNotFoundError

__all__ = ["escape", "join", "missing_entry", "navigate", "split", "suggest", "unescape"]


def escape(segment: str) -> str:
    """Escape one segment so it can stand inside a key."""
    return segment.replace("~", "~0").replace("/", "~1")


def unescape(segment: str) -> str:
    """Undo :func:`escape`."""
    return segment.replace("~1", "/").replace("~0", "~")


def split(key: str | None) -> list[str]:
    """Split a key into unescaped segments; ``None``, ``""`` and ``"/"`` mean the root.

    >>> split("outputs/a~1b/3")
    ['outputs', 'a/b', '3']
    """
    if key is None:
        return []
    if not isinstance(key, str):
        raise InvalidArgumentError(f"a key must be a str like 'outputs/energy', got {type(key).__name__}")
    if "\x00" in key:
        raise InvalidArgumentError(f"key {key!r} contains a NUL character", key=key)
    parts = [p for p in key.strip("/").split("/")] if key.strip("/") else []
    if any(p == "" for p in parts):
        raise InvalidArgumentError(f"key {key!r} has an empty segment ('//')", key=key)
    return [unescape(p) for p in parts]


def join(*segments: str) -> str:
    """Join raw segments into a key, escaping each."""
    return "/".join(escape(s) for s in segments)


def _dict_child(obj: Mapping[Any, Any], segment: str) -> Any:
    if segment in obj:
        return obj[segment]
    for k in obj:  # non-string keys are named by their str() / repr()
        if not isinstance(k, str) and (str(k) == segment or repr(k) == segment):
            return obj[k]
    raise KeyError(segment)


def child(obj: Any, segment: str) -> Any:
    """Return the child of ``obj`` named by one segment, or raise ``KeyError``/``IndexError``."""
    if isinstance(obj, Mapping):
        return _dict_child(obj, segment)
    if isinstance(obj, Sequence) and not isinstance(obj, str | bytes | bytearray):
        try:
            index = int(segment)
        except ValueError:
            raise KeyError(segment) from None
        return obj[index]
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):  # numpy arrays: index the first axis
        try:
            return obj[int(segment)]
        except ValueError:
            raise KeyError(segment) from None
    if dataclasses.is_dataclass(obj) or hasattr(obj, "__dict__") or hasattr(obj, "__slots__"):
        try:
            return getattr(obj, segment)
        except AttributeError:
            raise KeyError(segment) from None
    raise KeyError(segment)


def suggest(segment: str, names: Iterable[str], *, limit: int = 3) -> str:
    """`` (did you mean 'x'?)`` for near misses of ``segment`` among ``names``, else ``""``.

    >>> suggest("energies", ["energy", "forces"])
    " (did you mean 'energy'?)"
    >>> suggest("outputs.forces", ["outputs"])
    " (keys are /-separated: did you mean 'outputs/forces'?)"
    """
    names = list(names)
    if "." in segment and segment.split(".", 1)[0] in names:  # 'outputs.forces' for 'outputs/forces'
        return f" (keys are /-separated: did you mean {segment.replace('.', '/')!r}?)"
    close = difflib.get_close_matches(segment, names, n=limit, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _names(obj: Any) -> list[str]:
    """The segments that name the children of a mapping or an object with attributes."""
    if isinstance(obj, Mapping):
        return [k if isinstance(k, str) else str(k) for k in obj]
    return [k for k in getattr(obj, "__dict__", {}) if isinstance(k, str)]


def navigate(obj: Any, key: str | None, *, path: Any = None, within: list[str] | None = None) -> Any:
    """Follow ``key`` through a loaded object; a missing segment raises :class:`KeyNotFoundError`.

    ``within``: the segments that lead to ``obj`` in the file, for the error message.
    """
    current = obj
    walked: list[str] = list(within or ())
    full = "/".join(escape(s) for s in [*walked, *split(key)]) if within else key
    for segment in split(key):
        try:
            current = child(current, segment)
        except (KeyError, IndexError, TypeError):
            raise missing_entry(path, full, walked, segment, type(current).__name__, _names(current)) from None
        walked.append(segment)
    return current


def missing_entry(
    path: Any, key: str | None, walked: list[str], segment: str, what: str, names: Iterable[str]
) -> KeyNotFoundError:
    """The error for a ``key`` of the file ``path`` whose ``segment`` is not among ``names``,
    the children of the ``what`` reached by ``walked``."""
    where = "/".join(escape(w) for w in walked) or "the root"
    return KeyNotFoundError(
        f"key {key!r} not found in {path!s}: {where} ({what}) "
        f"has no entry {segment!r}{suggest(segment, names)}; "
        f"use storage_nodes.inspect({str(path)!r}) to list the keys",
        path=path,
        key=key,
    )
