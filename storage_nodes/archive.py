"""Lazy, read-only browsing of a stored file: ``storage_nodes.open(path)``.

``open`` lists the root alone (type, size, metadata, environment) and hands out
Mapping-like groups, in the style of h5py's groups: ``keys()``, ``arc["a/b"]``,
``"a" in arc``, ``len(arc)``. Each group is listed one level deep when first reached
(``inspect(path, key=..., depth=1)``; h5 archives parse their index once for all of
them); ``.entry`` is that listing :class:`~storage_nodes.listing.Entry` and ``.load()``
loads that entry and nothing else. Nothing is imported or rebuilt until ``.load()``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from . import api
from .errors import KeyNotFoundError, UnsupportedOperationError
from .keys import escape, split
from .listing import Entry, Listing

__all__ = ["Archive", "Group", "compact", "open"]

PathLike = str | os.PathLike[str]


class Group(Mapping[str, "Group"]):
    """One entry of an opened file; its children are reached by name or key path."""

    def __init__(self, archive: Archive, key: str) -> None:
        self._archive = archive
        self._key = key

    @property
    def key(self) -> str:
        """The entry's key in the file (``""`` for the root)."""
        return self._key

    @property
    def entry(self) -> Entry:
        """The listing entry, with its children one level down (listed on first use)."""
        return self._archive.entry_at(self._key)

    def _child_key(self, key: str) -> str:
        rel = "/".join(escape(s) for s in split(key))
        return f"{self.key}/{rel}" if self.key and rel else (rel or self.key)

    def __getitem__(self, key: str | int) -> Group:
        if isinstance(key, int) and not isinstance(key, bool):
            key = str(key)  # an item of a list or tuple
        if not isinstance(key, str):
            raise KeyNotFoundError(
                f"keys are str paths like 'outputs/energy' or int indices, got {key!r}", path=self._archive.path
            )
        child = self._child_key(key)
        self._archive.entry_at(child)  # a missing key raises here
        return Group(self._archive, child)

    def __iter__(self) -> Iterator[str]:
        return (c.name for c in self.entry.children)

    def __len__(self) -> int:
        return len(self.entry.children)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, int) and not isinstance(key, bool):
            key = str(key)
        if not isinstance(key, str):
            return False
        try:
            self._archive.entry_at(self._child_key(key))
        except (KeyNotFoundError, UnsupportedOperationError, ValueError, TypeError):
            return False  # (pickle files list their top level only)
        return True

    def load(self, **kwargs: Any) -> Any:
        """Load this entry only (``safe=``, ``version_policy=`` as for :func:`storage_nodes.load`).

        >>> sn.open("run.h5")["outputs/energy"].load()  # doctest: +SKIP
        -3.2
        """
        return api.load(self._archive.path, key=self.key or None, **kwargs)

    def __repr__(self) -> str:
        summary = self._archive.summary(self._key).describe()
        return f"<{type(self).__name__} {self.key or '/'!r} of {self._archive.path}: {summary}>"


class Archive(Group):
    """An opened file (the root group), with its ``listing`` (the root alone: metadata,
    environment, type and size), ``metadata`` and ``environment``."""

    def __init__(self, path: Path, listing: Listing) -> None:
        self.path = path
        self.listing = listing
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        super().__init__(self, "")

    @property
    def metadata(self) -> dict[str, Any]:
        return self.listing.metadata

    @property
    def environment(self) -> dict[str, Any]:
        return self.listing.environment

    def entry_at(self, key: str) -> Entry:
        """The listing entry of ``key``, one level deep (a missing key raises :class:`KeyNotFoundError`)."""
        with self._lock:
            found = self._entries.get(key)
        if found is None:
            found = api.inspect(self.path, key=key or None, depth=1).root
            with self._lock:
                found = self._entries.setdefault(key, found)
        return found

    def summary(self, key: str) -> Entry:
        """The entry of ``key`` as far as it is listed already (the root: without children)."""
        with self._lock:
            found = self._entries.get(key)
        return found if found is not None else (self.listing.root if not key else self.entry_at(key))

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        """Nothing to close: every read opens and closes the file itself."""

    def refresh(self) -> Archive:
        """Read the listing again (after the file changed) and return ``self``."""
        listing = api.inspect(self.path, depth=0)
        with self._lock:
            self.listing = listing
            self._entries = {}
        return self


def open(path: PathLike) -> Archive:
    """Open a stored file for lazy browsing and partial loads.

    >>> arc = open("run.h5")  # doctest: +SKIP
    >>> arc["outputs"].keys(), arc["outputs/energy"].load()  # doctest: +SKIP
    """
    p = Path(path).expanduser()
    return Archive(p, api.inspect(p, depth=0))


def compact(path: PathLike) -> Path:
    """Rewrite an archive with only its live data (h5: space left by partial updates).

    >>> compact("run.h5")  # doctest: +SKIP
    PosixPath('run.h5')
    """
    p = Path(path).expanduser()
    backend = api.resolve_backend(p)
    fn = getattr(backend, "compact", None)
    if fn is None:
        raise UnsupportedOperationError(
            f"the {backend.name!r} backend writes whole files; {p} has no space to reclaim", path=p
        )
    fn(p)
    return p
