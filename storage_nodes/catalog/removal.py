"""Removing entries: :func:`remove` drops runs, nodes and plain saves by id, and with
``files=True`` the files that no remaining entry points at.

All or nothing, in three steps: (1) read the plan (which rows go, which files no row will
point at); (2) move each such file aside, in its own directory, under a hidden name
(``os.replace``: atomic); (3) delete the rows in one transaction that first checks that the
files' rows are still those planned. A failure in (2) or (3) moves every file back and leaves
the rows as they were; only after the commit are the moved files deleted.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..errors import CatalogError, KeyNotFoundError
from . import schema as S
from .engine import Database, chunks
from .queue import run
from .records import Removed, entry_id, parse_id, record_kind

__all__ = ["Plan", "remove"]

log = logging.getLogger("storage_nodes.catalog")


@dataclasses.dataclass
class Plan:
    """What a removal deletes: file rows, record rows, and per file id the rows it keeps."""

    ids: list[str]
    file_ids: set[int]
    record_ids: set[int]
    paths: dict[int, str]  # file id -> path, of every file touched
    record_count: dict[int, int]  # file id -> its records now
    record_files: dict[int, int] = dataclasses.field(default_factory=dict)  # record id -> its file id
    readers: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # path -> runs that read it and stay


def _plan(conn: sa.Connection, location: str, targets: list[tuple[str, int]]) -> Plan:
    f, r = S.files, S.records
    plan = Plan([], set(), set(), {}, {})
    for kind, number in targets:
        text = entry_id(kind, number)
        if kind == "run":
            found = conn.execute(sa.select(f.c.id, f.c.path).where(f.c.id == number, f.c.kind == "workflow")).first()
            if found is None:
                raise KeyNotFoundError(f"catalog {location} has no entry {text}: nothing was removed", key=text)
            plan.file_ids.add(int(found[0]))
            plan.paths[int(found[0])] = found[1]
        else:
            row = conn.execute(
                sa.select(r.c.id, r.c.file_id, f.c.path, f.c.kind).join(f, f.c.id == r.c.file_id)
                .where(r.c.id == number, record_kind(kind, r, f))
            ).first()  # fmt: skip
            if row is None:
                raise KeyNotFoundError(f"catalog {location} has no entry {text}: nothing was removed", key=text)
            plan.record_ids.add(int(row[0]))
            plan.record_files[int(row[0])] = int(row[1])
            plan.paths[int(row[1])] = row[2]
        plan.ids.append(text)
    for chunk in chunks(sorted(plan.paths)):
        for fid, n in conn.execute(
            sa.select(r.c.file_id, sa.func.count()).where(r.c.file_id.in_(chunk)).group_by(r.c.file_id)
        ):
            plan.record_count[int(fid)] = int(n)
    # a plain-save file whose last record goes: its file row goes too
    for chunk in chunks(sorted(plan.record_ids)):
        for fid, kind, n in conn.execute(
            sa.select(r.c.file_id, f.c.kind, sa.func.count()).join(f, f.c.id == r.c.file_id)
            .where(r.c.id.in_(chunk)).group_by(r.c.file_id, f.c.kind)
        ):  # fmt: skip
            if kind == "save" and int(n) == plan.record_count.get(int(fid), 0):
                plan.file_ids.add(int(fid))
    # a file another run read (its LoadNode or FindNode: ``sn_reads``) is still used by that run
    doomed = {plan.paths[fid]: fid for fid in plan.file_ids}
    for chunk_paths in _text_chunks(sorted(doomed)):
        for path, reader in conn.execute(
            sa.select(S.reads.c.path, S.reads.c.file_id).where(S.reads.c.path.in_(chunk_paths)).distinct()
        ):
            if int(reader) not in plan.file_ids:
                plan.readers.setdefault(path, []).append(entry_id("run", int(reader)))
    return plan


def _text_chunks(items: list[str]) -> list[list[str]]:
    return [items[i : i + 500] for i in range(0, len(items), 500)]


def _removed_records(plan: Plan) -> int:
    in_files = sum(plan.record_count.get(fid, 0) for fid in plan.file_ids)
    return in_files + sum(1 for fid in plan.record_files.values() if fid not in plan.file_ids)


def remove(db: Database, entries: Iterable[Any], *, files: bool = False) -> Removed:
    """Remove entries by id or hit: :meth:`Catalog.remove <storage_nodes.catalog.Catalog.remove>`."""
    targets = [parse_id(e) for e in entries]
    plan = run(db, lambda conn: _plan(conn, db.location, targets), write=False, what="read")
    report = Removed(ids=plan.ids, records=_removed_records(plan))
    doomed: list[str] = []
    for fid, path in sorted(plan.paths.items()):
        if not files:
            continue
        if fid not in plan.file_ids:
            report.kept.append((path, "other entries of the catalog still point at it"))
        elif path in plan.readers:
            report.kept.append((path, f"run(s) {', '.join(sorted(plan.readers[path]))} read it"))
        elif not os.path.lexists(path):
            report.kept.append((path, "the file was already gone"))
        else:
            doomed.append(path)
    parked: list[tuple[str, str]] = []
    try:
        for path in doomed:
            aside = _aside(path)
            try:
                os.replace(path, aside)
            except OSError as exc:
                raise CatalogError(
                    f"cannot remove {path}: {exc.strerror}; nothing was removed from catalog {db.location}",
                    path=Path(path),
                ) from None
            parked.append((path, aside))
        run(db, lambda conn: _delete(conn, db.location, plan, doomed), write=True, what="remove from")
    except BaseException:
        for path, aside in reversed(parked):
            try:
                os.replace(aside, path)
            except OSError as exc:  # pragma: no cover - the directory changed under us
                log.error("could not move %s back to %s: %s", aside, path, exc.strerror)
        raise
    for path, aside in parked:
        try:
            os.unlink(aside)
            report.deleted.append(path)
        except OSError as exc:
            log.warning("removed from the catalog, but could not delete %s (now %s): %s", path, aside, exc.strerror)
            report.kept.append((path, f"could not be deleted: {exc.strerror}; it is now {aside}"))
    return report


def _aside(path: str) -> str:
    p = Path(path)
    return str(p.with_name(f".{p.name}.sn-removing-{uuid.uuid4().hex[:12]}"))


def _delete(conn: sa.Connection, location: str, plan: Plan, deleting: list[str]) -> None:
    """Inside the write transaction: check that each touched file still has the records planned and
    that no run recorded since the plan read a file about to be deleted, then delete."""
    r = S.records
    for chunk_paths in _text_chunks(sorted(deleting)):
        rd = S.reads.c
        late = conn.execute(
            sa.select(rd.path, rd.file_id).where(rd.path.in_(chunk_paths), rd.file_id.not_in(sorted(plan.file_ids)))
        ).first()
        if late is not None:
            raise CatalogError(
                f"catalog {location} changed while removing (run {entry_id('run', int(late[1]))} read "
                f"{late[0]} meanwhile): nothing was removed; try again"
            )
    for fid in sorted(plan.paths):
        now = conn.execute(sa.select(sa.func.count()).select_from(r).where(r.c.file_id == fid)).scalar_one()
        there = conn.execute(sa.select(S.files.c.id).where(S.files.c.id == fid)).first() is not None
        if not there or int(now) != plan.record_count.get(fid, 0):
            raise CatalogError(
                f"catalog {location} changed while removing (the file {plan.paths[fid]} was recorded again): "
                "nothing was removed; try again"
            )
    for chunk in chunks(sorted(plan.record_ids)):
        conn.execute(S.edges.delete().where(S.edges.c.source_id.in_(chunk) | S.edges.c.target_id.in_(chunk)))
        conn.execute(S.inputs.delete().where(S.inputs.c.record_id.in_(chunk)))
        conn.execute(r.delete().where(r.c.id.in_(chunk)))
    for chunk in chunks(sorted(plan.file_ids)):
        # records, inputs, metadata and edges go by ON DELETE CASCADE (every catalog connection
        # turns SQLite's foreign keys on), as in prune
        conn.execute(S.files.delete().where(S.files.c.id.in_(chunk)))
