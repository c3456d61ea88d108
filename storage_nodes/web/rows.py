"""Catalog hits as the rows the pages show: runs (one row per recorded file), one run, one record.

This is the one module of ``web/`` that queries the catalog, through its public API only
(:meth:`Catalog.find`): a run is the group of hits that share a file. A record is named in
URLs by its id and the UTC time its file was recorded (``/run/41?at=20261207T022331.730742``):
``find(since=at, until=at + 1 µs)`` returns the few records of that instant, among which the
id is looked up, so no path ever comes from a URL. When the catalog gains a table of runs and
a lookup by id (``Catalog.table(kind="run")``, ``Catalog.get(id)``), :func:`runs_page` and
:func:`record_hit` become one call each; the pages do not change.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalog.cli import parse_assignment
from ..errors import InvalidArgumentError

if TYPE_CHECKING:
    from ..catalog import Catalog, Hit

__all__ = [
    "PAGE_SIZE",
    "SORTS",
    "SORT_CAP",
    "Filters",
    "RunRow",
    "RunsPage",
    "parse_stamp",
    "record_hit",
    "run_hits",
    "runs_page",
    "stamp",
]

#: runs on one page of the runs table
PAGE_SIZE = 50
#: the columns the runs table sorts by
SORTS = ("created", "workflow", "user", "host", "path", "nodes", "size")
#: hits read at most to sort by a column other than the date; beyond it the table stays newest first
SORT_CAP = 20_000

_STAMP = "%Y%m%dT%H%M%S.%f"
_MICRO = datetime.timedelta(microseconds=1)


def stamp(when: datetime.datetime) -> str:
    """A record time (naive UTC) as it appears in URLs: ``20261207T022331.730742``."""
    return when.strftime(_STAMP)


def parse_stamp(text: str) -> datetime.datetime:
    """The inverse of :func:`stamp`; anything else raises :class:`InvalidArgumentError`."""
    try:
        return datetime.datetime.strptime(text, _STAMP)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"at={text!r} is not a record time like 20261207T022331.730742") from None


@dataclasses.dataclass(frozen=True)
class Filters:
    """The runs table's filters, as in the URL's query (``node``, ``input=PORT=VALUE``, ``meta=NAME=VALUE``,
    ``user``, ``host``, ``since``, ``until``, ``workflow``, ``kind=run|save``, ``stale=yes|no``)."""

    node: str | None = None
    inputs: tuple[tuple[str, str], ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()
    user: str | None = None
    host: str | None = None
    since: str | None = None
    until: str | None = None
    workflow: str | None = None
    kind: str | None = None
    stale: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, Sequence[str]]) -> Filters:
        """Read the filters from a parsed query (``{name: [values]}``); empty fields are no filter."""

        def one(name: str) -> str | None:
            values = [v.strip() for v in query.get(name, []) if v.strip()]
            return values[-1] if values else None

        def pairs(name: str) -> tuple[tuple[str, str], ...]:
            out = []
            for text in query.get(name, []):
                if text.strip():
                    port, _ = parse_assignment(text.strip(), name)
                    out.append((port, text.strip().partition("=")[2]))
            return tuple(out)

        kind, stale = one("kind"), one("stale")
        if kind not in (None, "run", "save"):
            raise InvalidArgumentError(f"kind={kind!r}: use 'run' (a saved workflow's nodes) or 'save' (plain saves)")
        if stale not in (None, "yes", "no"):
            raise InvalidArgumentError(f"stale={stale!r}: use 'yes' (files moved or rewritten) or 'no'")
        return cls(
            node=one("node"), inputs=pairs("input"), metadata=pairs("meta"), user=one("user"), host=one("host"),
            since=one("since"), until=one("until"), workflow=one("workflow"), kind=kind, stale=stale,
        )  # fmt: skip

    def query(self) -> list[tuple[str, str]]:
        """The filters as URL query pairs (what :meth:`from_query` reads back)."""
        out: list[tuple[str, str]] = []
        for name in ("node", "user", "host", "since", "until", "workflow", "kind", "stale"):
            value = getattr(self, name)
            if value is not None:
                out.append((name, value))
        out += [("input", f"{p}={v}") for p, v in self.inputs]
        out += [("meta", f"{n}={v}") for n, v in self.metadata]
        return out

    def find_args(self) -> dict[str, Any]:
        """Keyword arguments of :meth:`Catalog.find` (values read as JSON where they parse)."""
        inputs = dict(parse_assignment(f"{p}={v}", "input") for p, v in self.inputs)
        metadata = dict(parse_assignment(f"{n}={v}", "meta") for n, v in self.metadata)
        kind = {"run": "node", "save": "save"}.get(self.kind or "")
        return {
            "node": self.node, "inputs": inputs or None, "metadata": metadata or None, "user": self.user,
            "host": self.host, "since": self.since, "until": self.until, "workflow": self.workflow, "kind": kind,
        }  # fmt: skip


@dataclasses.dataclass
class RunRow:
    """One row of the runs table: a recorded file (a saved run or a plain save) and the records found in it."""

    id: int
    at: datetime.datetime
    path: Path
    kind: str
    workflow: str | None
    labels: list[str]
    user: str
    host: str
    metadata: dict[str, Any]
    stale: bool
    size: int | None

    @property
    def stamp(self) -> str:
        return stamp(self.at)


@dataclasses.dataclass
class RunsPage:
    """A page of the runs table; ``total`` is ``None`` when more runs match than were read."""

    rows: list[RunRow]
    page: int
    has_next: bool
    total: int | None
    sort: str
    desc: bool
    note: str | None = None


def _size(path: Path) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _group(hits: Sequence[Hit], stale: str | None) -> list[RunRow]:
    rows: dict[Path, RunRow] = {}
    for h in hits:
        row = rows.get(h.path)
        if row is None:
            rows[h.path] = RunRow(
                id=h.record_id, at=h.created_at, path=h.path, kind="save" if h.node is None else "run",
                workflow=h.workflow, labels=[], user=h.created_by, host=h.host, metadata=h.metadata,
                stale=h.stale, size=None,
            )  # fmt: skip
            row = rows[h.path]
        row.id = min(row.id, h.record_id)
        if h.label:
            row.labels.append(h.label)
    out = list(rows.values())
    for row in out:
        row.labels.reverse()  # hits come newest record first: show the run's order
    if stale is not None:
        out = [r for r in out if r.stale == (stale == "yes")]
    return out


def _key(sort: str) -> Any:
    if sort == "created":
        return lambda r: (r.at, r.id)
    if sort == "nodes":
        return lambda r: (len(r.labels), r.at)
    if sort == "size":
        return lambda r: (r.size if r.size is not None else -1, r.at)
    if sort == "path":
        return lambda r: str(r.path)
    return lambda r: (getattr(r, sort) or "", r.at)


def runs_page(cat: Catalog, filters: Filters, *, sort: str = "created", desc: bool = True, page: int = 1) -> RunsPage:
    """Page ``page`` (from 1) of the runs matching ``filters``, sorted by ``sort`` (one of :data:`SORTS`).

    Newest first reads only as many hits as the page needs; another order reads every
    matching hit up to :data:`SORT_CAP` and, beyond it, keeps the newest-first order with a note.
    """
    if sort not in SORTS:
        raise InvalidArgumentError(f"sort={sort!r}: sort by one of {', '.join(SORTS)}")
    if page < 1:
        raise InvalidArgumentError(f"page={page}: pages count from 1")
    args = filters.find_args()
    need = page * PAGE_SIZE + 1  # one more than the page: is there a next one?
    note = None
    if sort != "created" or not desc:
        hits = cat.find(**args, limit=SORT_CAP + 1)
        if len(hits) <= SORT_CAP:
            rows = _group(hits, filters.stale)
            if sort == "size":
                for r in rows:
                    r.size = _size(r.path)
            rows.sort(key=_key(sort), reverse=desc)
            return _page(rows, page, len(rows), sort, desc, None)
        note = f"more than {SORT_CAP:,} records match: shown newest first; narrow the filters to sort by {sort}"
        sort, desc = "created", True
    limit = max(4 * need, 200)
    while True:
        hits = cat.find(**args, limit=limit)
        rows = _group(hits, filters.stale)
        complete = len(hits) < limit
        if complete or len(rows) > need:  # a later run exists: the ones before it are whole
            break
        limit *= 4
    total = len(rows) if complete else None
    return _page(rows if complete else rows[:need], page, total, sort, desc, note)


def _page(rows: list[RunRow], page: int, total: int | None, sort: str, desc: bool, note: str | None) -> RunsPage:
    start = (page - 1) * PAGE_SIZE
    shown = rows[start : start + PAGE_SIZE]
    for r in shown:
        if r.size is None:
            r.size = _size(r.path)
    return RunsPage(shown, page, len(rows) > start + PAGE_SIZE, total, sort, desc, note)


def record_hit(cat: Catalog, record_id: int, at: datetime.datetime) -> Hit | None:
    """The catalog's record ``record_id`` of a file recorded at ``at``, or ``None``."""
    for h in cat.find(since=at, until=at + _MICRO):
        if h.record_id == record_id:
            return h
    return None


def run_hits(cat: Catalog, record_id: int, at: datetime.datetime) -> list[Hit]:
    """Every record of the file holding record ``record_id`` (recorded at ``at``), in record order; ``[]`` if none."""
    hits = cat.find(since=at, until=at + _MICRO)
    target = next((h for h in hits if h.record_id == record_id), None)
    if target is None:
        return []
    return sorted((h for h in hits if h.path == target.path), key=lambda h: h.record_id)
