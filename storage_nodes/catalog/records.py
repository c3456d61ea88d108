"""What the catalog hands back: :class:`Hit` (one entry :meth:`Catalog.find` found, and how
to load it), :class:`Summary` (an input shown by type), :class:`Dropped` and
:class:`IndexReport` (what ``prune`` and ``index`` did), and :class:`FileIdentity`, which
tells a recorded file apart from a rewrite of it."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import api
from ..errors import InvalidArgumentError, KeyNotFoundError, StaleEntryError
from ..keys import join, split

__all__ = [
    "ID_PREFIX",
    "Dropped",
    "FileIdentity",
    "Found",
    "Hit",
    "IndexReport",
    "Removed",
    "Summary",
    "entry_id",
    "file_identity",
    "parse_id",
    "record_kind",
]

#: bytes of each of the three samples a file identity hashes
_SAMPLE = 4096


@dataclasses.dataclass(frozen=True)
class Summary:
    """The preview of an input value that is not short plain JSON: its type (and shape)."""

    description: str

    def __repr__(self) -> str:
        return f"<{self.description}>"


@dataclasses.dataclass(frozen=True)
class FileIdentity:
    """What tells a file apart from a rewrite of it: size, mtime (ns) and a sampled content digest."""

    size: int
    mtime_ns: int
    content: str


def file_identity(path: Path) -> FileIdentity | None:
    """The identity of ``path`` now, or ``None`` if it cannot be read.

    The content digest is SHA-256 over the size and three 4 KiB samples (start, middle,
    end): cheap for any file size, and a rewrite that kept size and mtime is still noticed
    where the format puts headers, indexes or timestamps (h5 superblock and index, pickle
    header, json text).
    """
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            h = hashlib.sha256(str(st.st_size).encode())
            for offset in sorted({0, max(0, st.st_size // 2 - _SAMPLE // 2), max(0, st.st_size - _SAMPLE)}):
                fh.seek(offset)
                h.update(fh.read(_SAMPLE))
    except OSError:
        return None
    return FileIdentity(st.st_size, st.st_mtime_ns, h.hexdigest())


@dataclasses.dataclass(eq=False)
class Hit:
    """One catalog entry found by :meth:`Catalog.find`.

    ``node`` is ``"module.qualname"`` for a node of a saved run and ``None`` for a plain
    save; ``key`` is where it sits in the file (``<node>`` for a run's node: its outputs
    are at ``<node>/outputs/<port>``). ``inputs`` maps each input port to its value when
    that is short plain JSON, else to a :class:`Summary`; ``undigested`` names the input
    ports whose values could not be digested (no query by value can match them).
    ``call`` is the call digest (node identity + every input's digest; ``None`` if an
    input was not digested) that :meth:`Catalog.lookup` matches. ``stale`` is true when
    the file is gone or was rewritten since it was recorded:
    :meth:`load` then refuses with :class:`StaleEntryError`.

    ``kind`` is ``"node"``, ``"save"`` (a plain save) or ``"run"`` (a saved workflow as a
    whole, from :meth:`Catalog.get` or ``find(kind="run")``: ``node`` is ``None``, ``inputs``
    are its free inputs named ``<node>__<port>`` as pyiron_workflow names them, and
    :attr:`nodes` gives its node hits). :attr:`id` names the entry for :meth:`Catalog.get`
    and :meth:`Catalog.remove`.
    """

    path: Path
    key: str
    node: str | None
    inputs: dict[str, Any]
    outputs: list[str]
    created_by: str
    host: str
    created_at: datetime.datetime
    workflow: str | None
    label: str | None
    metadata: dict[str, Any]
    version: str | None
    stale: bool
    undigested: list[str]
    call: str | None
    record_id: int
    kind: str = "node"
    file_id: int = 0
    _lineage: Callable[[Hit], list[Hit]] | None = dataclasses.field(default=None, repr=False)
    _members: Callable[[Hit], list[Hit]] | None = dataclasses.field(default=None, repr=False)
    _identity: FileIdentity | None = dataclasses.field(default=None, repr=False)
    _upstream: list[Hit] | None = dataclasses.field(default=None, repr=False)
    #: ``(hit, "fed_by" | "fed") -> hits``: the catalog's answer for :attr:`fed_by` / :attr:`fed`
    _across: Callable[[Hit, str], list[Hit]] | None = dataclasses.field(default=None, repr=False)

    @property
    def id(self) -> str:
        """The entry's id: ``"r<n>"`` for a run, ``"n<n>"`` for a node, ``"s<n>"`` for a plain save
        (stable while the entry is recorded; saving the file again records it anew)."""
        return entry_id(self.kind, self.file_id if self.kind == "run" else self.record_id)

    @property
    def nodes(self) -> list[Hit]:
        """A run's node hits, in the order they were recorded (``[]`` for a node or a save)."""
        return [] if self._members is None or self.kind != "run" else self._members(self)

    def load_workflow(self, **options: Any) -> Any:
        """The stored workflow of a run's file (:func:`storage_nodes.load_workflow`; ``options`` are its)."""
        if self.kind != "run":
            raise InvalidArgumentError(f"{self.id} is a {self.kind}, not a run: load it with .load()")
        self._check_fresh()
        from ..graph.workflows import load_workflow

        return load_workflow(self.path, **options)

    def __repr__(self) -> str:
        if self.kind == "run":
            stale = " STALE" if self.stale else ""
            return (f"<Hit run {self.id} {self.workflow!r} in {self.path} by {self.created_by}@{self.host} "
                    f"at {self.created_at:%Y-%m-%d %H:%M:%S}Z{stale}>")  # fmt: skip
        what = self.node or "save"
        where = f"{self.path}" + (f" key {self.key!r}" if self.key else "")
        stale = " STALE" if self.stale else ""
        return (
            f"<Hit {what} in {where} by {self.created_by}@{self.host} at {self.created_at:%Y-%m-%d %H:%M:%S}Z{stale}>"
        )

    @property
    def upstream(self) -> list[Hit]:
        """The hits of the nodes whose outputs fed this node in its run (the recipe's edges)."""
        if self._upstream is None:
            self._upstream = [] if self._lineage is None else self._lineage(self)
        return self._upstream

    @property
    def fed_by(self) -> list[Hit]:
        """The recorded results this hit's run read (its ``LoadNode``/``FindNode``s): for each,
        the record of the file read that holds the key read (the whole file's first record
        when no key was given). Asked of the catalog each time."""
        return [] if self._across is None else self._across(self, "fed_by")

    @property
    def fed(self) -> list[Hit]:
        """The ``LoadNode``/``FindNode`` records of other runs that read this hit's result (its
        file, at this hit's key or below it, or the whole file). Asked of the catalog each time."""
        return [] if self._across is None else self._across(self, "fed")

    def is_stale(self) -> bool:
        """Check the file again now: ``True`` if it is gone or differs from what was recorded."""
        return self._identity is None or file_identity(self.path) != self._identity

    def load(
        self,
        port: str | None = None,
        *,
        version_policy: Any = "warn",
        safe: bool = False,
    ) -> Any:
        """Load what this entry points at through :func:`storage_nodes.load`.

        A node hit gives its outputs (``{port: value}``), or one output with ``port``; a
        plain save gives the saved object. ``version_policy`` and ``safe`` are those of
        ``load``. A stale entry raises :class:`StaleEntryError` (checked again now). A run
        gives its stored workflow (:meth:`load_workflow`).
        """
        if self.kind == "run":
            return self.load_workflow()
        self._check_fresh()
        if self.node is None:
            if port is not None:
                raise InvalidArgumentError(f"{self.path} holds a plain save, not a node: it has no port {port!r}")
            return api.load(self.path, key=self.key or None, version_policy=version_policy, safe=safe)
        if port is not None and port not in self.outputs:
            raise KeyNotFoundError(
                f"node {self.node} in {self.path} has no output {port!r}; its outputs: {', '.join(self.outputs)}",
                path=self.path,
                key=self.key,
            )
        segments = [*split(self.key), "outputs", *([port] if port is not None else [])]
        return api.load(self.path, key=join(*segments), version_policy=version_policy, safe=safe)

    def _check_fresh(self) -> None:
        if self.is_stale():
            self.stale = True
            raise StaleEntryError(
                f"catalog entry {self.node or self.kind} in {self.path} is stale: the file was moved, deleted or "
                "rewritten since it was recorded; record it again with `storage-nodes catalog index DIR` "
                "or drop it with `catalog prune`",
                path=self.path,
                key=self.key or None,
            )


#: the letter that starts an entry id, per kind
ID_PREFIX = {"run": "r", "node": "n", "save": "s"}
_KIND_OF = {v: k for k, v in ID_PREFIX.items()}


def entry_id(kind: str, number: int) -> str:
    """The id of an entry: ``"r12"`` (the run of file row 12), ``"n345"``/``"s345"`` (record row 345)."""
    return f"{ID_PREFIX[kind]}{number}"


def record_kind(kind: str, records: Any, files: Any) -> Any:
    """The SQL condition that a ``sn_records`` row (joined with ``sn_files``) is of ``kind``: a
    plain save (no node, in a saved file) or a node (a node function, or any record of a run)."""
    save = records.c.node.is_(None) & (files.c.kind == "save")
    return save if kind == "save" else ~save


def parse_id(text: Any) -> tuple[str, int]:
    """``(kind, number)`` of an entry id (:func:`entry_id`); anything else raises :class:`InvalidArgumentError`."""
    if isinstance(text, Hit):
        return text.kind, text.file_id if text.kind == "run" else text.record_id
    s = str(text).strip() if isinstance(text, str) else ""
    kind = _KIND_OF.get(s[:1].lower())
    if kind is None or not s[1:].isdigit():
        raise InvalidArgumentError(
            f"{text!r} is not a catalog entry id: ids look like r12 (a run), n345 (a node), s345 (a plain save); "
            "see the id column of Catalog.table() or `storage-nodes catalog runs`"
        )
    return kind, int(s[1:])


@dataclasses.dataclass(frozen=True)
class Dropped:
    """An entry :meth:`Catalog.prune` removed: the file, why, and how many records it held."""

    path: str
    reason: str
    records: int


class Found(list[Hit]):
    """The hits of ``find(..., explain=True)``: a list, with :attr:`near` saying, when it is empty,
    what came close (a node name in another module, the same port holding another type, ...)."""

    near: list[str]

    def __init__(self, hits: list[Hit], near: list[str] | None = None) -> None:
        super().__init__(hits)
        self.near = near or []


@dataclasses.dataclass
class Removed:
    """What :meth:`Catalog.remove` did: the ids removed, how many records went with them, the
    files deleted, and the files kept (with why: another entry still points at it, it was gone)."""

    ids: list[str]
    records: int
    deleted: list[str] = dataclasses.field(default_factory=list)
    kept: list[tuple[str, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class IndexReport:
    """What :meth:`Catalog.index` did: files recorded, already up to date, skipped (with why), and
    ``foreign``: files no backend claims (other tools' files: images, scripts, ...), left alone."""

    recorded: list[str] = dataclasses.field(default_factory=list)
    unchanged: list[str] = dataclasses.field(default_factory=list)
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    foreign: list[str] = dataclasses.field(default_factory=list)

    def foreign_summary(self) -> str:
        """``"3 files no backend claims (.png 2, .svg 1)"``, or ``""`` when there are none."""
        if not self.foreign:
            return ""
        counts: dict[str, int] = {}
        for p in self.foreign:
            suffix = Path(p).suffix.lower() or "(no suffix)"
            counts[suffix] = counts.get(suffix, 0) + 1
        shown = ", ".join(f"{s} {n}" for s, n in sorted(counts.items(), key=lambda sn: (-sn[1], sn[0])))
        return f"{len(self.foreign)} file(s) no backend claims ({shown})"
