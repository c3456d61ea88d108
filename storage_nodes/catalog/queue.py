"""The recording queue (``sn_queue``): what a save writes, and how it reaches the tables.

A save writes one row, its whole recording as JSON (:func:`enqueue`; the payload is built
in :mod:`~storage_nodes.catalog.rows`). :func:`flush` moves queued rows into the tables,
oldest first, a batch per transaction (:func:`drain`, :func:`apply`); :func:`run` does that
before a write, and a read that finds the queue not empty flushes first, so no query misses
a save. The exit of a process that queued flushes what it queued (:func:`flush_at_exit`).
"""

from __future__ import annotations

import atexit
import datetime
import logging
import os
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from ..errors import CatalogReadOnlyError
from .engine import Database, chunks, cursor
from .identity import call_digest
from .rows import encode_payload, parse_payload, to_json
from .statements import Statements

__all__ = ["DRAIN_BATCH", "DRAIN_BYTES", "apply", "drain", "enqueue", "flush", "flush_at_exit", "last_queued", "run"]

log = logging.getLogger("storage_nodes.catalog")
T = TypeVar("T")

#: queued recordings moved per transaction by a flush
DRAIN_BATCH = 200
#: and at most this many payload characters of them (a batch takes one at least): bounded memory
DRAIN_BYTES = 32 << 20


class _Queued(Exception):
    """Inside a read: the queue holds recordings, so the query waits for a flush."""


def run(db: Database, work: Callable[[sa.Connection], T], *, write: bool, what: str) -> T:
    """Run ``work`` in one transaction after the queued recordings; retry a busy database;
    errors become CatalogError."""
    db.prepare(write=write)
    if write:
        flush(db)
        return db.transact(work, write=True, what=what)
    stmts = db.statements()

    def unless_queued(conn: sa.Connection) -> T:  # one snapshot: an empty queue means complete tables
        cur = cursor(conn)
        try:
            cur.execute(stmts.any_queued)
            if cur.fetchone() is not None:
                raise _Queued
        finally:
            cur.close()
        return work(conn)

    try:
        return db.transact(unless_queued, write=False, what=what)
    except _Queued:
        flush_for_read(db)
    return db.transact(work, write=False, what=what)


def enqueue(db: Database, p: Path, payload: dict[str, Any]) -> None:
    """Queue one recording: a single-row transaction (what a save waits for)."""
    db.prepare()
    stmts = db.statements()
    text = encode_payload(payload)
    db.raw_write(lambda cur: cur.execute(stmts.enqueue, {"path": str(p), "payload": text}), what="record into")
    db.queued += 1
    _queued_here.add(db)


def drain(db: Database, conn: sa.Connection, limit: int | None = None, upto: int | None = None) -> int:
    """Move queued recordings (oldest first, at most ``limit``, ids up to ``upto``) into the
    tables; return how many.

    Inside the caller's write transaction: a crash or error leaves the queue as it was.
    PostgreSQL locks the rows taken (``FOR UPDATE``): a second drainer waits, then finds
    them gone. SQLite's ``BEGIN IMMEDIATE`` already serialises writers.
    """
    stmts = db.statements()
    cur = cursor(conn)
    try:
        if upto is None:
            upto = last_queued(db, conn)
            if upto is None:
                return 0
        sql, params = stmts.queued(limit)
        cur.execute(sql, {**params, "upto": upto})
        listed = cur.fetchall()
        taken: list[int] = []
        size = 0
        for qid, length in listed:  # payloads one at a time, and at most DRAIN_BYTES of them a batch
            if taken and size + int(length or 0) > DRAIN_BYTES:
                break
            taken.append(int(qid))
            size += int(length or 0)
        dbapi = db.engine.dialect.loaded_dbapi
        rejected = (dbapi.DataError, dbapi.ProgrammingError, dbapi.InterfaceError, ValueError, TypeError)
        for qid in taken:
            cur.execute(stmts.payload, {"id": qid})
            text = cur.fetchone()[0]
            payload = parse_payload(text)
            why = "its payload is not one this version writes"
            if payload is not None:
                cur.execute("SAVEPOINT sn_queued")
                try:
                    apply(cur, stmts, payload)
                    cur.execute("RELEASE SAVEPOINT sn_queued")
                    continue
                except rejected as exc:  # the database refuses these rows: not a busy database
                    cur.execute("ROLLBACK TO SAVEPOINT sn_queued")
                    why = f"the database refused its rows ({type(exc).__name__})"
            # never applicable (damaged, or written by another program): dropped, and said
            log.error("catalog %s: dropped queued recording %s: %s (%.80r); record the file again with "
                      "`storage-nodes catalog index DIR`", db.location, qid, why, text)  # fmt: skip
        for chunk in chunks(taken):
            cur.execute(stmts.dequeue(len(chunk)), {f"q{i}": q for i, q in enumerate(chunk)})
        return len(taken)
    finally:
        cur.close()


def apply(cur: Any, stmts: Statements, payload: Mapping[str, Any]) -> None:
    """The rows of one queued recording: replace the file's rows (by cascade), insert file,
    metadata, records (ids taken up front), their inputs, the edges, the reads; six statements."""
    f = dict(payload["file"])
    f["created_at"] = datetime.datetime.fromisoformat(f["created_at"])
    cur.execute(stmts.drop, {"path": f["path"]})
    cur.execute(stmts.file, stmts.processed(f, stmts.file_procs))
    file_id = int(cur.fetchone()[0])
    if payload["meta"]:
        meta = [{**m, "file_id": file_id} for m in payload["meta"]]
        cur.executemany(stmts.meta, stmts.all_processed(meta, stmts.meta_procs))
    records = payload["records"]
    if not records:
        return
    ids = stmts.new_record_ids(cur, len(records))
    digests: list[dict[str, str | None]] = [{} for _ in records]
    for i, port, d, _pv in payload["inputs"]:
        digests[i][port] = d
    record_rows = []
    for (key, label, node, module, qualname, version, source, outputs, type_), rid, ins in zip(
        records, ids, digests, strict=True
    ):
        record_rows.append(
            {"id": rid, "file_id": file_id, "key": key, "label": label, "node": node, "module": module,
             "qualname": qualname, "version": version, "source": source,
             "call": call_digest(node, version, source, ins) if node else None, "outputs": to_json(outputs),
             "undigested": to_json(sorted(p for p, d in ins.items() if d is None)), "type": type_}
        )  # fmt: skip
    cur.executemany(stmts.record, stmts.all_processed(record_rows, stmts.record_procs))
    if payload["inputs"]:
        cur.executemany(
            stmts.input,
            stmts.all_processed(
                [{"record_id": ids[i], "port": port, "digest": d, "preview": pv}
                 for i, port, d, pv in payload["inputs"]],
                stmts.input_procs,
            ),
        )  # fmt: skip
    if payload["edges"]:
        cur.executemany(
            stmts.edge,
            stmts.all_processed(
                [{"file_id": file_id, "source_id": ids[s], "source_port": sp, "target_id": ids[t],
                  "target_port": tp} for s, sp, t, tp in payload["edges"]],
                stmts.edge_procs,
            ),
        )  # fmt: skip
    if payload.get("reads"):
        cur.executemany(
            stmts.read,
            stmts.all_processed(
                [{"file_id": file_id, "record_id": ids[i], "path": path, "key": key}
                 for i, path, key in payload["reads"]],
                stmts.read_procs,
            ),
        )  # fmt: skip


def flush(db: Database) -> int:
    """Move every queued recording into the tables, up to the newest queued when it began; return
    how many (:meth:`Catalog.flush <storage_nodes.catalog.Catalog.flush>`)."""
    db.prepare()
    upto = db.transact(lambda conn: last_queued(db, conn), write=False, what="read")
    total = 0
    # up to what was queued when the flush began: writers that go on queueing cannot keep it
    # going; and until none of that is left, since a batch that finds its rows taken (another
    # flusher held them, PostgreSQL) comes back short while later rows still wait
    while upto is not None:
        n = db.transact(lambda conn: drain(db, conn, DRAIN_BATCH, upto), write=True, what="record into")
        total += n
        if n == 0 and not db.transact(lambda conn: _left(db, conn, upto), write=False, what="read"):
            break
    db.queued = 0
    return total


def _left(db: Database, conn: sa.Connection, upto: int) -> bool:
    cur = cursor(conn)
    try:
        cur.execute(db.statements().left, {"upto": upto})
        return cur.fetchone()[0] is not None
    finally:
        cur.close()


def last_queued(db: Database, conn: sa.Connection) -> int | None:
    """The id of the newest queued recording, or ``None`` when the queue is empty."""
    cur = cursor(conn)
    try:
        cur.execute(db.statements().last_queued)
        found = cur.fetchone()[0]
        return None if found is None else int(found)
    finally:
        cur.close()


def flush_for_read(db: Database) -> None:
    """Before a query that found the queue not empty: flush it. A reader without write access
    (a read-only file or PostgreSQL role) queries what is already in the tables, with a warning."""
    try:
        flush(db)
    except CatalogReadOnlyError as exc:
        log.warning("catalog %s: queued recordings not visible: no write access to move them into the "
                    "tables (%s); a query by a writer will", db.location, exc)  # fmt: skip


#: catalogs this process queued recordings into: flushed at exit
_queued_here: weakref.WeakSet[Database] = weakref.WeakSet()


def flush_at_exit() -> None:
    """Flush what this process queued into each catalog; a failure is logged, never raised."""
    for db in list(_queued_here):
        if not db.queued:
            continue
        database = db.url.database if db.sqlite else None
        if database and not os.path.exists(database):
            continue  # the catalog file was deleted: nothing to flush into
        try:
            flush(db)
        except Exception as exc:  # at exit: say it, never raise
            log.warning("catalog %s: queued recordings stay queued: %s", db.location, exc)


atexit.register(flush_at_exit)
