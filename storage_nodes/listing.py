"""What :func:`storage_nodes.inspect` returns: plain data describing a stored file.

A :class:`Listing` holds the file's user metadata, its environment record and a tree of
:class:`Entry` objects. ``str(listing)`` prints the tree, ``listing.to_dict()`` gives
JSON-able data, ``listing["outputs/energy"]`` finds one entry; Jupyter shows
``listing._repr_html_()``, a collapsible HTML tree.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

from . import keys as _keys
from .errors import KeyNotFoundError

__all__ = ["Entry", "Listing", "LISTING_VERSION", "prune"]

LISTING_VERSION = 1


@dataclasses.dataclass
class Entry:
    """One stored entry: where it is, what it is, how big it is.

    ``name`` is the last key segment (raw, unescaped); ``path`` the full key.
    ``opaque`` marks entries stored as a blob that only pickle/cloudpickle can read.
    ``truncated`` counts children left out of the listing.
    """

    path: str
    type: str
    module: str | None = None
    name: str = ""
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    length: int | None = None
    size: int | None = None
    opaque: bool = False
    children: list[Entry] = dataclasses.field(default_factory=list)
    truncated: int = 0
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def walk(self) -> Iterator[Entry]:
        """This entry and all below it, depth first."""
        yield self
        for c in self.children:
            yield from c.walk()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "name": self.name, "type": self.type}
        for field in ("module", "dtype", "length", "size"):
            value = getattr(self, field)
            if value is not None:
                d[field] = value
        if self.shape is not None:
            d["shape"] = list(self.shape)
        if self.opaque:
            d["opaque"] = True
        if self.info:
            d["info"] = self.info
        if self.truncated:
            d["truncated"] = self.truncated
        if self.children:
            d["children"] = [c.to_dict() for c in self.children]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Entry:
        return cls(
            path=d["path"],
            name=d.get("name", ""),
            type=d["type"],
            module=d.get("module"),
            shape=tuple(d["shape"]) if d.get("shape") is not None else None,
            dtype=d.get("dtype"),
            length=d.get("length"),
            size=d.get("size"),
            opaque=d.get("opaque", False),
            children=[cls.from_dict(c) for c in d.get("children", [])],
            truncated=d.get("truncated", 0),
            info=d.get("info", {}),
        )

    def __repr__(self) -> str:  # the dataclass repr would spell out every field of every child
        return f"<Entry {self.path or '/'!r}: {self.describe()}>"

    def _repr_html_(self) -> str:  # Jupyter: this entry's subtree as a collapsible HTML tree
        from ._listing_html import entry_html

        return entry_html(self, style=True)

    def describe(self) -> str:
        """A one-line description: type, shape/dtype or length, size."""
        parts = [self.type if not self.module else f"{self.type} ({self.module})"]
        if self.shape is not None:
            parts.append(f"shape={tuple(self.shape)}")
        if self.dtype is not None:
            parts.append(f"dtype={self.dtype}")
        if self.length is not None and self.shape is None:
            parts.append(f"len={self.length}")
        if self.size is not None:
            parts.append(_human(self.size))
        if self.opaque:
            parts.append("opaque: needs safe=False")
        if self.info.get("shared_with"):
            parts.append(f"the object at {self.info['shared_with']}")
        return ", ".join(parts)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _module_summary(name: str, rec: Any) -> str:
    """``name==version`` plus the git commit and dirty state when recorded."""
    if not isinstance(rec, dict):
        return name
    text = f"{name}=={rec['version']}" if rec.get("version") else name
    git = rec.get("git")
    if isinstance(git, dict) and git.get("commit"):
        state = git.get("dirty")
        dirty = ", dirty" if state is True else "" if state is False else ", dirty state unknown"
        text += f" (git {str(git['commit'])[:10]}{dirty})"
    return text


@dataclasses.dataclass
class Listing:
    """The description of a stored file: metadata, environment record and entry tree."""

    path: str
    backend: str
    format_version: int
    root: Entry
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    environment: dict[str, Any] = dataclasses.field(default_factory=dict)
    key: str | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __getitem__(self, key: str) -> Entry:
        wanted = "/".join(_keys.escape(s) for s in _keys.split(key))
        paths = []
        for entry in self.root.walk():
            if entry.path == wanted:
                return entry
            paths.append(entry.path)
        hint = _keys.suggest(wanted, paths, limit=1)  # whole paths: the best match only
        raise KeyNotFoundError(f"no entry {key!r} in the listing of {self.path}{hint}", path=self.path, key=key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        try:
            self[key]
        except KeyNotFoundError:
            return False
        return True

    def keys(self) -> list[str]:
        """The keys of all listed entries below the root."""
        return [e.path for e in self.root.walk() if e is not self.root]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (the same content as ``str(listing)``)."""
        return {
            "listing_version": LISTING_VERSION,
            "path": self.path,
            "backend": self.backend,
            "format_version": self.format_version,
            "key": self.key,
            "metadata": self.metadata,
            "environment": self.environment,
            "info": self.info,
            "root": self.root.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Listing:
        return cls(
            path=d["path"],
            backend=d["backend"],
            format_version=d["format_version"],
            root=Entry.from_dict(d["root"]),
            metadata=d.get("metadata", {}),
            environment=d.get("environment", {}),
            key=d.get("key"),
            info=d.get("info", {}),
        )

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def __repr__(self) -> str:  # print() shows the tree; the dataclass repr would spell out every entry
        where = f", key {self.key!r}" if self.key else ""
        return f"<Listing of {self.path} [{self.backend}{where}]: {self.root.describe()}; print() it for the tree>"

    def __str__(self) -> str:
        lines = [f"{self.path} [{self.backend}, format {self.format_version}]"]
        if self.metadata:
            lines.append("metadata: " + json.dumps(self.metadata, default=str, sort_keys=True))
        env = self.environment
        if env:
            created = env.get("timestamp", "?")
            sn = env.get("storage_nodes", "?")
            py = env.get("python", {}).get("version", "?") if isinstance(env.get("python"), dict) else "?"
            lines.append(f"saved {created} with storage_nodes {sn}, Python {py}")
            mods = env.get("modules") or {}
            if mods:
                shown = []
                for name, rec in sorted(mods.items()):
                    shown.append(_module_summary(name, rec))
                lines.append("modules: " + ", ".join(shown))
        root_label = self.root.path or "/"
        lines.append(f"{root_label}: {self.root.describe()}")
        self._render(self.root, "", lines)
        return "\n".join(lines)

    def _render(self, entry: Entry, prefix: str, lines: list[str]) -> None:
        items = list(entry.children)
        for i, c in enumerate(items):
            last = i == len(items) - 1 and not entry.truncated
            lines.append(f"{prefix}{'└── ' if last else '├── '}{c.name or c.path}: {c.describe()}")
            self._render(c, prefix + ("    " if last else "│   "), lines)
        if entry.truncated:
            lines.append(f"{prefix}└── ... {entry.truncated} more")

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # IPython
        p.text(str(self))

    def _repr_html_(self) -> str:
        """Jupyter shows a collapsible HTML tree (``<details>``, no JavaScript): a header with
        file, metadata and environment, then the entries with type, shape, dtype, size and
        opaque / refused-by-safe-load marks; long runs of same-shaped entries summarised."""
        from ._listing_html import listing_html

        return listing_html(self)


def prune(entry: Entry, depth: int) -> Entry:
    """A copy of ``entry`` listing children down to ``depth`` levels (0: none); the children
    left out are counted in ``truncated``.

    >>> e = Entry(path="", type="dict", children=[Entry(path="a", name="a", type="int")])
    >>> prune(e, 0).children, prune(e, 0).truncated
    ([], 1)
    """
    if depth <= 0:
        return dataclasses.replace(entry, children=[], truncated=entry.truncated + len(entry.children))
    return dataclasses.replace(entry, children=[prune(c, depth - 1) for c in entry.children])
