"""Recording a save or a run: check the file and the metadata, then queue the recording.

A whole-file save and a run are queued as one row each (:mod:`~storage_nodes.catalog.queue`).
A keyed save (``sn.save(x, path, key=...)``) changes the rows of a file already recorded,
so it is written in place, in one transaction after the queue, with SQLAlchemy Core: it
is rare, and its rows depend on what the tables hold.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..errors import CatalogError
from ..keys import join, split
from ..provenance.metadata import validate_metadata
from . import schema as S
from .engine import Database, chunks
from .identity import Identify, describe_value, live_identity
from .queue import drain, enqueue, last_queued, run
from .records import FileIdentity, file_identity
from .rows import NodeRow, file_entry, metadata_rows, now, save_payload, to_json, workflow_payload, workflow_rows

__all__ = ["record_save", "record_workflow"]

PathLike = str | os.PathLike[str]


def record_save(
    db: Database,
    path: PathLike,
    *,
    obj: Any = None,
    key: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    backend: str | None = None,
    type_name: str | None = None,
    by: str = "save",
) -> None:
    """Record one plain save of ``obj`` to ``path`` (at ``key``), after the file was written.

    A whole-file save replaces every record of the file; a keyed save updates the
    file's identity and replaces the records at, above or below that key. A keyed
    save reads the file's identity inside the transaction, after locking the file's
    row (SQLite: the write lock of ``BEGIN IMMEDIATE``; PostgreSQL: ``FOR UPDATE``):
    two processes saving different keys of one file at once then leave the identity
    of the file as the last of them found it, so neither marks the other's record stale.
    """
    p = Path(path).expanduser().resolve()
    ident = file_identity(p)
    if ident is None:
        raise CatalogError(f"cannot record {p} in catalog {db.location}: the file cannot be read", path=p)
    user_metadata = validate_metadata(metadata, path=p)
    tname = type_name or (describe_value(obj).split(" ", 1)[0] if obj is not None or key is not None else "NoneType")
    segments = split(key)
    rec_key = join(*segments)
    if not segments:  # a whole file: its rows replace the file's old ones, queued like a run's
        enqueue(db, p, save_payload(p, ident, backend=backend, metadata=user_metadata, type_name=tname, by=by))
        return

    def work(conn: sa.Connection) -> None:
        # a keyed save changes the file's rows in place: in order after every queued recording
        # (the flush before this transaction took most; this takes what came since)
        upto = last_queued(db, conn)
        while upto is not None and drain(db, conn, None, upto):
            pass
        q = sa.select(S.files.c.id, S.files.c.metadata).where(S.files.c.path == str(p))
        row = conn.execute(q.with_for_update()).first()
        if row is not None:
            file_id = int(row[0])
            # now, under the lock: a concurrent keyed save that wrote after our first look
            # and recorded before us must not be undone by our older identity
            current = file_identity(p)
            if current is None:
                raise CatalogError(f"cannot record {p} in catalog {db.location}: the file cannot be read",
                                   path=p)  # fmt: skip
            merged = {**json.loads(row[1] or "{}"), **user_metadata}
            conn.execute(
                S.files.update()
                .where(S.files.c.id == file_id)
                .values(size=current.size, mtime_ns=current.mtime_ns, content=current.content, metadata=to_json(merged))
            )
            _delete_overlapping(conn, file_id, rec_key)
            _write_metadata(conn, file_id, merged, replace=True)
        else:
            file_id = _insert_file(conn, p, ident, backend=backend, metadata=user_metadata, by=by)
            _write_metadata(conn, file_id, user_metadata)
        conn.execute(
            S.records.insert(),
            {"file_id": file_id, "key": rec_key, "label": None, "node": None, "module": None, "qualname": None,
             "version": None, "source": None, "call": None, "outputs": "[]", "undigested": "[]", "type": tname},
        )  # fmt: skip

    run(db, work, write=True, what="record into")


def record_workflow(
    db: Database,
    path: PathLike,
    *,
    label: str,
    recipe: str | Mapping[str, Any],
    nodes: Mapping[str, Any],
    metadata: Mapping[str, Any] | None = None,
    backend: str | None = None,
    identify: Identify | None = None,
    by: str = "save",
    reads: Callable[[list[NodeRow]], Sequence[tuple[int, str, str | None]]] | None = None,
) -> None:
    """Queue the recording of a saved run (:meth:`Catalog.record_workflow
    <storage_nodes.catalog.Catalog.record_workflow>`): every node's identity and input digests,
    its outputs, the edges; ``identify`` gives a node function's version and source digest,
    ``reads`` what its nodes read of other results (:func:`.lineage.reads_of`)."""
    p = Path(path).expanduser().resolve()
    ident = file_identity(p)
    if ident is None:
        raise CatalogError(f"cannot record {p} in catalog {db.location}: the file cannot be read", path=p)
    user_metadata = validate_metadata(metadata, path=p)
    parsed = json.loads(recipe) if isinstance(recipe, str | bytes) else recipe
    rows, edges = workflow_rows(parsed, nodes, functools.cache(identify or live_identity))
    read = reads(rows) if reads is not None and any(r.reads is not None for r in rows) else ()
    enqueue(db, p, workflow_payload(p, ident, rows, edges, label=label, backend=backend, metadata=user_metadata,
                                     by=by, reads=read))  # fmt: skip


def _insert_file(
    conn: sa.Connection, p: Path, ident: FileIdentity, *, backend: str | None, metadata: Mapping[str, Any], by: str
) -> int:
    """Insert the ``sn_files`` row of a plain save; return its id."""
    row = file_entry(p, ident, kind="save", backend=backend, workflow=None, metadata=metadata, by=by)
    result = conn.execute(S.files.insert(), {**row, "created_at": now()})
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - every insert here has an integer primary key
        raise CatalogError("the database returned no primary key for an insert")
    return int(key[0])


def _write_metadata(conn: sa.Connection, file_id: int, metadata: Mapping[str, Any], *, replace: bool = False) -> None:
    if replace:
        conn.execute(S.metadata.delete().where(S.metadata.c.file_id == file_id))
    rows = metadata_rows(metadata)
    if rows:
        conn.execute(S.metadata.insert(), [{**m, "file_id": file_id} for m in rows])


def _delete_overlapping(conn: sa.Connection, file_id: int, key: str) -> None:
    """Drop the records of ``file_id`` at ``key``, above it (a prefix) or below it."""
    rows = conn.execute(sa.select(S.records.c.id, S.records.c.key).where(S.records.c.file_id == file_id)).all()
    doomed = [int(i) for i, k in rows if k == key or k == "" or k.startswith(key + "/") or key.startswith(k + "/")]
    for chunk in chunks(doomed):
        conn.execute(S.edges.delete().where(S.edges.c.source_id.in_(chunk) | S.edges.c.target_id.in_(chunk)))
        conn.execute(S.reads.delete().where(S.reads.c.record_id.in_(chunk)))
        conn.execute(S.inputs.delete().where(S.inputs.c.record_id.in_(chunk)))
        conn.execute(S.records.delete().where(S.records.c.id.in_(chunk)))
