"""The writable, dict-like handle of a stored file: ``storage_nodes.open(path, "a")``.

``open(path, mode)`` gives a :class:`WritableArchive`, a ``MutableMapping`` with h5py-style
groups (``s["a"] = 5``, ``s["grp/b"] = arr``, ``s["grp"]["c"] = x``, ``del s["k"]``,
``create_group``, ``require_group``, ``get``, ``"a/b" in s``, ``s.metadata``). Reading an
entry returns its value, or a :class:`WritableGroup` for a dict, list or tuple.

Inside ``with open(...) as s:`` the changes are kept in memory (copied when assigned) and
applied when the block exits without an error, as ONE update: an h5 archive is changed in
place in one journal transaction (:meth:`~storage_nodes.backends.base.Backend.update_many`),
a json, pickle or cloudpickle file is rewritten whole and replaced atomically. An exception
inside the block discards them and leaves the file as it was. Outside a ``with`` block
each assignment or deletion is its own update.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, overload

from . import api
from .archive import Archive
from .atomic import writer_lock
from .backends.base import DELETE
from .errors import (
    FileExistsStorageError,
    FileNotFoundStorageError,
    InvalidArgumentError,
    KeyNotFoundError,
    StorageError,
    UnsupportedOperationError,
)
from .keys import child, escape, split
from .provenance.metadata import validate_metadata

__all__ = ["WritableArchive", "WritableGroup", "open"]

PathLike = str | os.PathLike[str]
Mode = Literal["r", "a", "w"]
_GROUP_TYPES = ("dict", "list", "tuple")
_MISSING: Any = object()


def _segments(key: str | int, path: Path) -> list[str]:
    if isinstance(key, bool) or not isinstance(key, str | int):
        raise InvalidArgumentError(f"keys are str paths like 'outputs/energy' or int indices, got {key!r}", path=path)
    return [str(key)] if isinstance(key, int) else split(key)


def _join(segments: list[str]) -> str:
    return "/".join(escape(s) for s in segments)


def _frozen(value: Any) -> Any:
    """A copy of ``value`` as it is now (the object itself when it cannot be copied)."""
    try:
        return copy.deepcopy(value)
    except Exception:
        return value


def _container_key(obj: Any, segment: str) -> Any:
    """The key or index of ``obj`` that ``segment`` names (a str key first, then any key)."""
    if isinstance(obj, Mapping):
        if segment in obj:
            return segment
        return next((k for k in obj if str(k) == segment), segment)
    if isinstance(obj, list | tuple):
        return int(segment)
    return segment


def set_in(obj: Any, segments: list[str], value: Any) -> Any:
    """``obj`` with ``value`` set at ``segments`` (missing levels become dicts; a tuple is rebuilt)."""
    if not segments:
        return value
    head, rest = segments[0], segments[1:]
    if isinstance(obj, MutableMapping):
        k = _container_key(obj, head)
        obj[k] = set_in(obj.get(k, {}), rest, value)
        return obj
    if isinstance(obj, list):
        i = int(head)
        if i == len(obj):
            obj.append(set_in({}, rest, value))
        else:
            obj[i] = set_in(obj[i], rest, value)
        return obj
    if type(obj) is tuple:
        items = list(obj)
        items[int(head)] = set_in(items[int(head)], rest, value)
        return tuple(items)
    if hasattr(obj, "__dict__"):
        setattr(obj, head, set_in(getattr(obj, head) if hasattr(obj, head) else {}, rest, value))
        return obj
    raise KeyError(head)


def del_in(obj: Any, segments: list[str]) -> Any:
    """``obj`` without the entry at ``segments`` (``KeyError``/``IndexError`` when missing)."""
    head, rest = segments[0], segments[1:]
    if isinstance(obj, MutableMapping | list):
        k = _container_key(obj, head)
        if rest:
            obj[k] = del_in(obj[k], rest)
        else:
            del obj[k]
        return obj
    if type(obj) is tuple and rest:
        items = list(obj)
        items[int(head)] = del_in(items[int(head)], rest)
        return tuple(items)
    if hasattr(obj, "__dict__") and head in vars(obj):
        if rest:
            setattr(obj, head, del_in(getattr(obj, head), rest))
        else:
            delattr(obj, head)
        return obj
    raise KeyError(head)


def apply_edits(obj: Any, changes: list[tuple[str, Any]], path: Path) -> Any:
    """``obj`` with the edits ``(key, value | DELETE)`` applied in order, in memory."""
    for key, value in changes:
        segments = split(key)
        try:
            if value is DELETE:
                if not segments:
                    raise UnsupportedOperationError(f"cannot delete the root of {path}", path=path, key=key)
                obj = del_in(obj, segments)
            else:
                obj = set_in(obj, segments, value)
        except (KeyError, IndexError, ValueError, TypeError, AttributeError):
            verb = "delete" if value is DELETE else "set"
            raise KeyNotFoundError(
                f"cannot {verb} {key!r} in {path}: its parent is missing or holds no entries by that name",
                path=path,
                key=key,
            ) from None
    return obj


def _names_of(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [str(k) for k in value]
    return [str(i) for i in range(len(value))] if isinstance(value, list | tuple) else []


class WritableGroup(MutableMapping[str, Any]):
    """One container entry (a dict, list or tuple) of a writable archive, reached by key path."""

    def __init__(self, archive: WritableArchive, segments: list[str]) -> None:
        self._archive = archive
        self._segments = segments

    @property
    def key(self) -> str:
        """The entry's key in the file (``""`` for the root)."""
        return _join(self._segments)

    def _full(self, key: str | int) -> list[str]:
        return [*self._segments, *_segments(key, self._archive.path)]

    def __getitem__(self, key: str | int) -> Any:
        return self._archive.read(self._full(key))

    def __setitem__(self, key: str | int, value: Any) -> None:
        self._archive.change(self._full(key), value)

    def __delitem__(self, key: str | int) -> None:
        self._archive.change(self._full(key), DELETE)

    def __iter__(self) -> Iterator[str]:
        return iter(self._archive.names(self._segments))

    def __len__(self) -> int:
        return len(self._archive.names(self._segments))

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str | int) or isinstance(key, bool):
            return False
        try:
            return self._archive.find(self._full(key)) is not _MISSING
        except (StorageError, ValueError):
            return False

    def create_group(self, name: str) -> WritableGroup:
        """A new empty group (a dict) at ``name``; an existing entry raises :class:`FileExistsStorageError`."""
        if name in self:
            raise FileExistsStorageError(
                f"{self._archive.path} already has an entry {_join(self._full(name))!r}; "
                "use require_group to reach it, or delete it first",
                path=self._archive.path,
                key=_join(self._full(name)),
            )
        self[name] = {}
        return WritableGroup(self._archive, self._full(name))

    def require_group(self, name: str) -> WritableGroup:
        """The group at ``name``, created (empty) when missing; an entry that is no group raises."""
        if name not in self:
            return self.create_group(name)
        found = self[name]
        if not isinstance(found, WritableGroup):
            raise FileExistsStorageError(
                f"{self._archive.path} has an entry {_join(self._full(name))!r} that is a "
                f"{type(found).__name__}, not a group",
                path=self._archive.path,
                key=_join(self._full(name)),
            )
        return found

    def load(self) -> Any:
        """The whole entry as one object (pending changes included)."""
        return self._archive.value(self._segments)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key or '/'!r} of {self._archive.path} ({self._archive.mode!r})>"


class WritableArchive(WritableGroup):
    """A file opened with mode ``"a"`` or ``"w"`` (the root group); a context manager whose
    block is applied as one update."""

    def __init__(self, path: Path, mode: Mode, backend: str | list[str] | None, options: dict[str, Any]) -> None:
        self.path = path
        self.mode = mode
        self._backend = backend
        self._options = options
        #: "w": the file is not written yet (whatever is at ``path`` is not read, and replaced)
        self._fresh = mode == "w"
        self._depth = 0
        self._pending: list[tuple[str, Any]] = []
        self._meta: dict[str, Any] = {}
        self._view: Archive | None = None
        super().__init__(self, [])

    # -- the file as stored -----------------------------------------------------------
    def _stored(self) -> Archive | None:
        if self._fresh or not self.path.exists():
            return None
        if self._view is None:
            self._view = Archive(self.path, api.inspect(self.path, depth=0))
        return self._view

    def _stored_kind(self, segments: list[str]) -> Any:
        """ "group" or "value" for an entry of the file, or _MISSING."""
        view = self._stored()
        if view is None:
            return _MISSING
        try:
            entry = view.entry_at(_join(segments))
        except KeyNotFoundError:
            return _MISSING
        except UnsupportedOperationError:  # listed to the top level only (pickle): look at the value
            try:
                value = api.load(self.path, key=_join(segments))
            except KeyNotFoundError:
                return _MISSING
            return "group" if type(value) in (dict, list, tuple) else "value"
        return "group" if entry.type in _GROUP_TYPES and entry.module is None else "value"

    # -- the file with the pending changes ---------------------------------------------
    def _last_cover(self, segments: list[str]) -> int:
        """The position of the last pending change of ``segments`` or of an entry above it (-1: none)."""
        n = len(segments)
        for i in range(len(self._pending) - 1, -1, -1):
            s = split(self._pending[i][0])
            if len(s) <= n and s == segments[: len(s)]:
                return i
        return -1

    def _below(self, segments: list[str], start: int) -> list[tuple[list[str], Any]]:
        """Pending changes below ``segments`` from position ``start``: (relative segments, value)."""
        n = len(segments)
        out = []
        for key, value in self._pending[start:]:
            s = split(key)
            if len(s) > n and s[:n] == segments:
                out.append((s[n:], value))
        return out

    def _memory(self, segments: list[str]) -> tuple[Any] | None:
        """``(value,)`` at ``segments`` when a pending change covers it (``(_MISSING,)`` when it
        deleted it), else ``None``: the file tells."""
        i = self._last_cover(segments)
        if i < 0:
            return None
        key, value = self._pending[i]
        if value is DELETE:
            return (_MISSING,)
        rest = segments[len(split(key)) :]
        below = self._below(segments, i + 1)
        try:
            for segment in rest:
                value = child(value, segment)
        except (KeyError, IndexError, TypeError, AttributeError, StorageError):
            value = _MISSING
        if below:
            value = apply_edits(
                _frozen({} if value is _MISSING else value), [(_join(r), v) for r, v in below], self.path
            )
        return (value,)

    def find(self, segments: list[str]) -> Any:
        """ "group", "value" or _MISSING for the entry at ``segments`` (pending changes included)."""
        found = self._memory(segments)
        if found is not None:
            value = found[0]
            if value is _MISSING:
                return _MISSING
            return "group" if type(value) in (dict, list, tuple) else "value"
        kind = self._stored_kind(segments)
        if kind is _MISSING and (self._below(segments, 0) or not segments):
            return "group"  # made by changes below it (or the root of a file not written yet)
        return kind

    def read(self, segments: list[str]) -> Any:
        kind = self.find(segments)
        if kind is _MISSING:
            raise KeyNotFoundError(
                f"{self.path} has no entry {_join(segments)!r}; see storage_nodes.inspect({str(self.path)!r})",
                path=self.path,
                key=_join(segments),
            )
        return WritableGroup(self, segments) if kind == "group" else self.value(segments)

    def value(self, segments: list[str]) -> Any:
        """The object stored at ``segments`` with the pending changes applied."""
        found = self._memory(segments)
        if found is not None:
            return found[0]
        below = self._below(segments, 0)
        stored: Any = {}
        if self._stored_kind(segments) is not _MISSING:
            stored = api.load(self.path, key=_join(segments) or None)
        return apply_edits(stored, [(_join(r), v) for r, v in below], self.path) if below else stored

    def names(self, segments: list[str]) -> list[str]:
        """The names of the entries of the group at ``segments`` (pending changes included)."""
        found = self._memory(segments)
        if found is not None:
            return _names_of(found[0])
        names: list[str] = []
        if self._stored_kind(segments) is not _MISSING:
            view = self._stored()
            assert view is not None
            try:
                entry = view.entry_at(_join(segments))
                names = [c.name for c in entry.children]
                if not names and entry.length:  # listed to the top level only (pickle)
                    raise UnsupportedOperationError("not listed")
            except UnsupportedOperationError:
                names = _names_of(api.load(self.path, key=_join(segments) or None))
        for rel, value in self._below(segments, 0):
            if value is DELETE and len(rel) == 1:
                if rel[0] in names:
                    names.remove(rel[0])
            elif value is not DELETE and rel[0] not in names:
                names.append(rel[0])
        return names

    # -- changes ---------------------------------------------------------------------
    def change(self, segments: list[str], value: Any) -> None:
        """Set (or, with DELETE, remove) the entry at ``segments``: now, or when the block exits."""
        key = _join(segments)
        if value is DELETE:
            if not segments:
                raise UnsupportedOperationError(
                    f"cannot delete the root of {self.path}; open it with mode 'w' to start anew", path=self.path
                )
            if self.find(segments) is _MISSING:
                raise KeyNotFoundError(f"{self.path} has no entry {key!r} to delete", path=self.path, key=key)
        if self._depth:
            self._pending.append((key, value if value is DELETE else _frozen(value)))
        else:
            self._commit([(key, value)], {})

    @property
    def metadata(self) -> MutableMapping[str, Any]:
        """The user metadata (stored beside the data); setting an item changes it like an entry."""
        return _Metadata(self)

    @metadata.setter
    def metadata(self, values: Mapping[str, Any]) -> None:
        meta = _Metadata(self)
        for name, value in values.items():
            meta[name] = value

    def stored_metadata(self) -> dict[str, Any]:
        view = self._stored()
        return {**(view.metadata if view is not None else {}), **self._meta}

    def set_metadata(self, name: str, value: Any) -> None:
        validate_metadata({name: value}, path=self.path)
        if self._depth:
            self._meta[name] = value
        else:
            self._commit([], {name: value})

    # -- commit ----------------------------------------------------------------------
    def __enter__(self) -> WritableArchive:
        if not self._depth:
            self._view = None  # the block reads the file as it is now (another program may have changed it)
        self._depth += 1
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._depth -= 1
        if self._depth:
            return
        changes, meta = self._pending, self._meta
        self._pending, self._meta = [], {}
        if exc_type is None and (changes or meta or self._fresh or not self.path.exists()):
            self._commit(changes, meta)

    def _commit(self, changes: list[tuple[str, Any]], meta: dict[str, Any]) -> None:
        """Apply ``changes`` and the metadata ``meta`` to the file as one update."""
        p = self.path
        self._view = None
        if self._fresh or not p.exists():
            value = apply_edits({}, changes, p)
            api.save(value, p, self._backend, metadata=meta, **self._options)
            self._fresh = False
            return
        chosen = api.resolve_backend(p)
        if chosen.supports_partial_write:
            try:
                chosen.update_many(changes, p, metadata=meta, options=dict(self._options))
            except UnsupportedOperationError as exc:
                if exc.capability != "supports_partial_write":
                    raise
            else:
                return
        with writer_lock(p):  # whole-file backends: read, change, replace (atomic)
            stored = api.inspect(p, depth=0).metadata
            value = apply_edits(api.load(p), changes, p)
            api.save(value, p, chosen.name, metadata={**stored, **meta}, **self._options)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {str(self.path)!r} ({self.mode!r})>"


class _Metadata(MutableMapping[str, Any]):
    """The writable user metadata of a :class:`WritableArchive`."""

    def __init__(self, archive: WritableArchive) -> None:
        self._archive = archive

    def __getitem__(self, name: str) -> Any:
        return self._archive.stored_metadata()[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._archive.set_metadata(name, value)

    def __delitem__(self, name: str) -> None:
        raise UnsupportedOperationError(
            f"metadata of {self._archive.path} is merged by updates, not removed; set {name!r} to None instead",
            path=self._archive.path,
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._archive.stored_metadata())

    def __len__(self) -> int:
        return len(self._archive.stored_metadata())

    def __repr__(self) -> str:
        return repr(self._archive.stored_metadata())


@overload
def open(path: PathLike, mode: Literal["r"] = "r") -> Archive: ...


@overload
def open(
    path: PathLike, mode: Literal["a", "w"], *, backend: str | list[str] | None = None, **options: Any
) -> WritableArchive: ...


def open(
    path: PathLike, mode: Mode = "r", *, backend: str | list[str] | None = None, **options: Any
) -> Archive | WritableArchive:
    """Open a stored file: ``"r"`` (default) lazy and read-only, ``"a"`` read and change (the
    file is created when missing), ``"w"`` a new file (any file there is replaced when the
    first change is applied: at the end of a ``with`` block, or at once outside one).

    ``backend`` (a name, a list tried in order, or ``None``: by suffix) is used for a new
    file; ``options`` (e.g. ``compression="gzip"``, ``durable=True``) go to its saves.

    >>> with open("run.h5", "a") as s:  # doctest: +SKIP
    ...     s["outputs/energy"] = -3.2
    """
    p = Path(path).expanduser()
    if mode == "r":
        if backend is not None or options:
            raise InvalidArgumentError(f"open({str(p)!r}, 'r') takes no backend or options; they are for 'a' and 'w'")
        return Archive(p, api.inspect(p, depth=0))
    if mode not in ("a", "w"):
        raise InvalidArgumentError(f"mode must be 'r', 'a' or 'w', got {mode!r}", path=p)
    if mode == "a" and p.exists():
        api.resolve_backend(p)  # a file of no known backend raises here, not at the first change
    elif not p.parent.is_dir():
        raise FileNotFoundStorageError(
            f"cannot open {p} with mode {mode!r}: directory {p.parent} does not exist; create it first", path=p
        )
    return WritableArchive(p, mode, backend, options)
