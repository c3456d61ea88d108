"""What :func:`storage_nodes.inspect` returns: plain data describing a stored file.

A :class:`Listing` holds the file's user metadata, its environment record and a tree of
:class:`Entry` objects. ``str(listing)`` prints the tree, ``listing.to_dict()`` gives
JSON-able data, ``listing["outputs/energy"]`` finds one entry; Jupyter shows
``listing._repr_html_()``, a collapsible HTML tree.

Listings of big files stay cheap: backends hand out entries whose children are built when
first asked for (:func:`lazy_entry`), and ``str(listing)`` summarises (:func:`summarise`):
a long run of same-shaped siblings is one line (``0..4999: dict(id, name, e, tags) x 5000``)
and at most :data:`SUMMARY_LIMIT` lines are printed per level. ``listing.text(full=True)``
prints every entry; ``to_dict()``, ``keys()``, ``walk()`` and ``listing[key]`` are complete.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from . import keys as _keys
from ._listing_html import entry_html, listing_html
from ._listing_text import human_size, module_summary
from .errors import KeyNotFoundError
from .shapes import RUN_THRESHOLD, runs, signature

__all__ = [
    "Entry",
    "LISTING_VERSION",
    "LazyEntry",
    "Listing",
    "RUN_THRESHOLD",
    "SUMMARY_LIMIT",
    "lazy_entry",
    "prune",
    "runs",
    "signature",
    "summarise",
]

LISTING_VERSION = 1
#: lines (entries or runs) a summary shows per level; the rest are counted in one line
SUMMARY_LIMIT = 50


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

    def __eq__(self, other: object) -> bool:  # an entry built lazily equals the same entry built eagerly
        if not isinstance(other, Entry):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in dataclasses.fields(Entry))

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass default

    def walk(self) -> Iterator[Entry]:
        """This entry and all below it, depth first."""
        yield self
        for c in self.children:
            yield from c.walk()

    def to_dict(self) -> dict[str, Any]:
        d = self._own_dict()
        if self.children:
            d["children"] = [c.to_dict() for c in self.children]
        return d

    def _own_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` without the children."""
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
            parts.append(human_size(self.size))
        if self.info.get("summary"):  # what a safe type's meta says (a DataFrame's columns, an Atoms' formula)
            parts.append(str(self.info["summary"]))
        if self.opaque:
            parts.append("opaque: needs safe=False")
        if self.info.get("shared_with"):
            parts.append(f"the object at {self.info['shared_with']}")
        return ", ".join(parts)


class Peek(Protocol):
    """What a :class:`LazyEntry` may tell about its children without building them:
    their ``names`` (in order), and by index the :func:`signature` and ``size`` each would
    have, and the child itself."""

    names: Sequence[str]

    def signature(self, i: int) -> Hashable: ...

    def size(self, i: int) -> int | None: ...

    def child(self, i: int) -> Entry: ...


class LazyEntry(Entry):
    """An :class:`Entry` whose children are built on first use: subclasses define
    :meth:`_build`, and may define :meth:`_fast_signature` and :meth:`_fast_dict` (the
    :func:`signature` and ``to_dict()`` the built children would give, without building them).

    A subclass instance is made as an :class:`Entry` and then :meth:`pending`. It is no
    dataclass of its own: :class:`Entry`'s ``__init__`` assigns ``children`` through the
    property below, and ``dataclasses.replace`` builds a plain copy of it.
    """

    _pending = False

    def pending(self) -> LazyEntry:
        """Mark the children as not built yet; returns ``self``."""
        self._pending = True
        return self

    @property
    def children(self) -> list[Entry]:
        if self._pending:
            self._children = self._build()
            self._pending = False
        return self._children

    @children.setter
    def children(self, value: list[Entry]) -> None:
        self._children = value
        self._pending = False

    def _build(self) -> list[Entry]:
        raise NotImplementedError

    def _fast_signature(self) -> Hashable | None:
        return None

    def _fast_dict(self) -> dict[str, Any] | None:
        return None

    def _peek(self) -> Peek | None:
        """The children's names, signatures and sizes without building them (for summaries)."""
        return None

    def _build_head(self, want: int) -> tuple[list[Entry], int] | None:
        """The first ``want`` or more children, not kept, and how many :meth:`_build` gives."""
        return None

    def to_dict(self) -> dict[str, Any]:
        fast = self._fast_dict() if self._pending else None
        return fast if fast is not None else super().to_dict()

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and deepcopy: a plain Entry, children built
        return (_plain_entry, ({f.name: getattr(self, f.name) for f in dataclasses.fields(Entry)},))


def _plain_entry(fields: dict[str, Any]) -> Entry:
    return Entry(**fields)


class _ClosureEntry(LazyEntry):
    _expand: Callable[[], list[Entry]]
    _shape: Callable[[], Hashable] | None

    def _build(self) -> list[Entry]:
        return self._expand()

    def _fast_signature(self) -> Hashable | None:
        return self._shape() if self._shape is not None else None


def lazy_entry(
    expand: Callable[[], list[Entry]], *, shape: Callable[[], Hashable] | None = None, **fields: Any
) -> Entry:
    """An :class:`Entry` with ``fields`` whose ``children`` are ``expand()``, called on first use.

    ``shape()``, when given, returns what :func:`signature` would compute from the
    children, without building them.

    >>> e = lazy_entry(lambda: [Entry(path="a", name="a", type="int")], path="", type="dict", length=1)
    >>> [c.name for c in e.children]
    ['a']
    """
    entry = _ClosureEntry(**fields)
    entry._expand = expand
    entry._shape = shape
    return entry.pending()


def _run_entry(run: Sequence[Entry]) -> Entry:
    """One entry standing for a run: the first one's type, ``info["run"]`` says how many."""
    return _run_of(run[0], run[-1].name, len(run), _total(c.size for c in run))


def _total(sizes: Iterable[int | None]) -> int | None:
    """The sum of ``sizes``, or ``None`` when one is unknown."""
    total = 0
    for size in sizes:
        if size is None:
            return None
        total += size
    return total


def _run_of(first: Entry, last: str, count: int, size: int | None) -> Entry:
    info: dict[str, Any] = {"count": count, "first": first.name, "last": last}
    names = [c.name for c in first.children]
    if names:
        info["children"] = names
    if size is not None:
        info["size"] = size
    return Entry(
        path=first.path,
        name=first.name,
        type=first.type,
        module=first.module,
        shape=first.shape,
        dtype=first.dtype,
        length=first.length,
        opaque=first.opaque,
        truncated=len(names) + first.truncated,
        info={"run": info},
    )


def summarise(entry: Entry, *, limit: int = SUMMARY_LIMIT, threshold: int = RUN_THRESHOLD) -> Entry:
    """A copy of ``entry`` for reading: each run of ``threshold`` or more consecutive
    same-shaped children (:func:`signature`) is one entry with ``info["run"]`` (``count``,
    ``first``, ``last``, the first one's ``children`` names, the total ``size``), and at most
    ``limit`` children are kept per level (the rest are counted in ``truncated``).

    >>> e = Entry(path="", type="list", children=[Entry(path=str(i), name=str(i), type="int") for i in range(9)])
    >>> summarise(e).children[0].info["run"]
    {'count': 9, 'first': '0', 'last': '8'}
    """
    return _Summariser(limit, threshold).entry(entry)


class _Summariser:
    """One summary: signatures memoised by ``id`` (every entry looked at is kept alive, so
    no id is reused), and whether anything was merged or left out."""

    def __init__(self, limit: int, threshold: int) -> None:
        self.limit, self.threshold = limit, threshold
        self.memo: dict[int, Hashable] = {}
        self.keep: list[list[Entry]] = []
        self.changed = False

    def entry(self, entry: Entry) -> Entry:
        peek = entry._peek() if isinstance(entry, LazyEntry) and entry._pending else None
        if peek is not None:
            return self.peeked(entry, peek)
        want = 4 * self.limit
        while True:  # a lazy entry builds the first children only, more if a run goes on
            items, total = _head(entry, want)
            self.keep.append(items)
            found = self.level(items, total)
            if found is not None:
                out, left = found
                break
            want = 1 << 62  # a run reached the end of the first children: build them all
        if left:
            self.changed = True
        return dataclasses.replace(entry, children=out, truncated=entry.truncated + left)

    def level(self, items: list[Entry], total: int) -> tuple[list[Entry], int] | None:
        """The summarised children and how many are left out; ``None``: need more than ``items``."""
        out: list[Entry] = []
        complete = len(items) >= total
        for start, end in runs(items, self.memo):
            if len(out) >= self.limit:
                return out, total - start
            if end == len(items) and not complete:
                return None
            if end - start >= self.threshold:
                out.append(_run_entry(items[start:end]))
                self.changed = True
                continue
            for i in range(start, end):
                if len(out) >= self.limit:
                    return out, total - i
                c = items[i]
                out.append(self.entry(c) if c.children else c)
        return out, 0

    def peeked(self, entry: Entry, peek: Peek) -> Entry:
        """:meth:`entry` from signatures of children not built: only the shown ones are."""
        n, left = len(peek.names), 0
        out: list[Entry] = []
        sigs: dict[int, Hashable] = {}

        def sig(i: int) -> Hashable:
            found = sigs.get(i)
            if found is None:
                found = sigs[i] = peek.signature(i)
            return found

        i = 0
        while i < n and not left:
            if len(out) >= self.limit:
                left = n - i
                break
            first, j = sig(i), i + 1
            while j < n and sig(j) == first:
                j += 1
            if j - i >= self.threshold:
                total = _total(peek.size(k) for k in range(i, j))  # stops at the first unknown
                out.append(_run_of(peek.child(i), peek.names[j - 1], j - i, total))
                self.changed = True
            else:
                for k in range(i, j):
                    if len(out) >= self.limit:
                        left = n - k
                        break
                    c = peek.child(k)
                    out.append(self.entry(c) if c.children else c)
            i = j
        if left:
            self.changed = True
        return dataclasses.replace(entry, children=out, truncated=entry.truncated + left)


def _head(entry: Entry, want: int) -> tuple[list[Entry], int]:
    """The first ``want`` or more children of ``entry`` and how many it has."""
    if isinstance(entry, LazyEntry) and entry._pending:
        found = entry._build_head(want)
        if found is not None:
            return found
    items = entry.children
    return items, len(items)


def _run_line(entry: Entry) -> str:
    """``0..4999: dict(id, name, e, tags) x 5000``: a run of a summary in one line."""
    run = entry.info["run"]
    kind = entry.type if not entry.module else f"{entry.type} ({entry.module})"
    names = run.get("children") or []
    if names and names != [str(i) for i in range(len(names))]:
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        kind += f"({shown})"
    elif names or (entry.truncated and entry.length is not None):  # a container (not its children)
        kind += f", len={len(names) or entry.length}"
    if entry.shape is not None:
        kind += f", shape={tuple(entry.shape)}"
    if entry.dtype is not None:
        kind += f", dtype={entry.dtype}"
    if entry.opaque:
        kind += ", opaque: needs safe=False"
    size = f", {human_size(run['size'])} in all" if run.get("size") is not None else ""
    return f"{run['first']}..{run['last']}: {kind} x {run['count']}{size}"


@dataclasses.dataclass
class Listing:
    """The description of a stored file: metadata, environment record and entry tree.

    ``str(listing)`` summarises long runs of same-shaped entries unless ``full`` (see
    :meth:`text`); everything else (``listing[key]``, ``keys()``, ``to_dict()``) is complete.
    """

    path: str
    backend: str
    format_version: int
    root: Entry
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    environment: dict[str, Any] = dataclasses.field(default_factory=dict)
    key: str | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: ``str()`` prints every entry instead of a summary
    full: bool = False

    def __getitem__(self, key: str) -> Entry:
        wanted = "/".join(_keys.escape(s) for s in _keys.split(key))
        found = self._find(wanted)
        if found is not None:
            return found
        paths = []
        for entry in self.root.walk():
            if entry.path == wanted:
                return entry
            paths.append(entry.path)
        hint = _keys.suggest(wanted, paths, limit=1)  # whole paths: the best match only
        raise KeyNotFoundError(f"no entry {key!r} in the listing of {self.path}{hint}", path=self.path, key=key)

    def _find(self, wanted: str) -> Entry | None:
        """The first entry at path ``wanted`` in walk order, looking only below the entries
        whose path leads there (a lazily built listing builds only those levels)."""
        stack = [self.root]
        while stack:
            entry = stack.pop()
            if entry.path == wanted:
                return entry
            if entry is self.root or wanted.startswith(entry.path + "/"):
                below = [c for c in entry.children if c.path == wanted or wanted.startswith(c.path + "/")]
                stack.extend(reversed(below))
        return None

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

    def to_dict(self, *, full: bool = True) -> dict[str, Any]:
        """Plain JSON-able data: every listed entry, or with ``full=False`` the summary that
        ``str(listing)`` prints (runs as one entry with ``info["run"]``, see :func:`summarise`)."""
        root = self.root if full else summarise(self.root)
        return {
            "listing_version": LISTING_VERSION,
            "path": self.path,
            "backend": self.backend,
            "format_version": self.format_version,
            "key": self.key,
            "metadata": self.metadata,
            "environment": self.environment,
            "info": self.info,
            "root": root.to_dict(),
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
        """:meth:`to_dict` (complete) as JSON; ``kwargs`` go to ``json.dumps``."""
        return json.dumps(self.to_dict(), **kwargs)

    def __repr__(self) -> str:  # print() shows the tree; the dataclass repr would spell out every entry
        where = f", key {self.key!r}" if self.key else ""
        return f"<Listing of {self.path} [{self.backend}{where}]: {self.root.describe()}; print() it for the tree>"

    def __str__(self) -> str:
        return self.text()

    def text(self, *, full: bool | None = None) -> str:
        """The printed tree: header, metadata, environment, entries. Unless ``full``
        (default: the listing's ``full``), a run of :data:`RUN_THRESHOLD` or more
        same-shaped siblings is one line ``first..last: type(children) x N`` and at most
        :data:`SUMMARY_LIMIT` lines are printed per level."""
        full = self.full if full is None else full
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
                    shown.append(module_summary(name, rec))
                lines.append("modules: " + ", ".join(shown))
        summary = None if full else _Summariser(SUMMARY_LIMIT, RUN_THRESHOLD)
        root = self.root if summary is None else summary.entry(self.root)
        root_label = root.path or "/"
        lines.append(f"{root_label}: {root.describe()}")
        self._render(root, "", lines)
        if summary is not None and summary.changed:
            lines.append("(summarised; every entry: inspect(path, full=True) or `storage-nodes inspect --all`)")
        return "\n".join(lines)

    def _render(self, entry: Entry, prefix: str, lines: list[str]) -> None:
        items = list(entry.children)
        for i, c in enumerate(items):
            last = i == len(items) - 1 and not entry.truncated
            branch = "└── " if last else "├── "
            if "run" in c.info:
                lines.append(f"{prefix}{branch}{_run_line(c)}")
                continue
            lines.append(f"{prefix}{branch}{c.name or c.path}: {c.describe()}")
            self._render(c, prefix + ("    " if last else "│   "), lines)
        if entry.truncated:
            lines.append(f"{prefix}└── ... {entry.truncated} more")

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # IPython
        p.text(str(self))

    def _repr_html_(self) -> str:
        """Jupyter shows a collapsible HTML tree (``<details>``, no JavaScript): a header with
        file, metadata and environment, then the entries with type, shape, dtype, size and
        opaque / refused-by-safe-load marks; long runs of same-shaped entries summarised."""
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
