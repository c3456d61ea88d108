"""The queue's statements, compiled once per database from the Core tables and run on the DB-API cursor."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

from . import schema as S

__all__ = ["Statements"]


class Statements:
    """The recording statements, compiled once per catalog from the Core tables, run on the DB-API cursor.

    Recording a run is a handful of inserts of known shape; going through SQLAlchemy's
    execution machinery for each (cache-key lookup, parameter processing, result
    wrapping) cost more than the database work. Here the SQL text comes from the same
    ``schema`` tables compiled for the engine's dialect (named parameters: ``:name`` on
    SQLite, ``%(name)s`` on psycopg), values pass through each column type's own bind
    processor (so times are stored exactly as SQLAlchemy stores them), and rows go by
    ``executemany``. Still parameterised: no value is ever part of the SQL text.

    Only the two hot writes take this path, because there it pays (docs/catalog.md, "Write
    paths"): queueing a save (one row; :meth:`Database.raw_write`: 0.044 ms against 0.091 ms
    through a SQLAlchemy ``Connection`` and 0.144 ms through Core) and applying queued runs
    (2.2 ms a run against 7.1 ms with Core ``executemany``). Every other write (a keyed save,
    ``prune``, the schema) is SQLAlchemy Core in :meth:`Database.transact`.
    """

    def __init__(self, dialect: sa.Dialect) -> None:
        if dialect.name == "sqlite":  # the same dialect, but named parameters: rows go as dicts
            from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

            dialect = SQLiteDialect_pysqlite(paramstyle="named")
        self.sqlite = dialect.name == "sqlite"

        def insert(table: sa.Table, skip: tuple[str, ...] = (), returning: bool = False) -> tuple[str, list[Any]]:
            names = [c.name for c in table.c if c.name not in skip]
            stmt = table.insert()
            if returning:
                stmt = stmt.returning(table.c.id)
            procs = [(n, table.c[n].type._cached_bind_processor(dialect)) for n in names]
            return str(stmt.compile(dialect=dialect, column_keys=names)), [(n, f) for n, f in procs if f is not None]

        self.file, self.file_procs = insert(S.files, skip=("id",), returning=True)
        self.record, self.record_procs = insert(S.records)
        self.input, self.input_procs = insert(S.inputs)
        self.meta, self.meta_procs = insert(S.metadata)
        self.edge, self.edge_procs = insert(S.edges)
        self.read, self.read_procs = insert(S.reads)
        self.drop = str(S.files.delete().where(S.files.c.path == sa.bindparam("path")).compile(dialect=dialect))
        self.enqueue, _ = insert(S.queue, skip=("id",))
        q = S.queue.c
        self.any_queued = str(sa.select(q.id).limit(1).compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        self.last_queued = str(sa.select(sa.func.max(q.id)).compile(dialect=dialect))
        self.payload = str(sa.select(q.payload).where(q.id == sa.bindparam("id")).compile(dialect=dialect))
        self.left = str(sa.select(sa.func.min(q.id)).where(q.id <= sa.bindparam("upto")).compile(dialect=dialect))
        self._dialect = dialect
        if self.sqlite:  # under BEGIN IMMEDIATE this writer holds the lock: max(id) + 1 is what SQLite assigns
            self.ids = "SELECT coalesce(max(id), 0) FROM sn_records"
        else:
            self.ids = "SELECT nextval(pg_get_serial_sequence('sn_records', 'id')) FROM generate_series(1, %(n)s)"

    @functools.lru_cache(maxsize=8)  # noqa: B019 - one Statements per catalog, a few batch sizes
    def queued(self, limit: int | None) -> tuple[str, dict[str, Any]]:
        """Ids and payload lengths of the oldest ``limit`` (all: ``None``) queued recordings with
        ``id <= :upto``, and the statement's own parameters; PostgreSQL locks the rows (``FOR UPDATE``)."""
        q = S.queue.c
        taken = sa.select(q.id, sa.func.length(q.payload)).where(q.id <= sa.bindparam("upto")).order_by(q.id)
        if limit is not None:
            taken = taken.limit(int(limit))
        if not self.sqlite:
            taken = taken.with_for_update()
        compiled = taken.compile(dialect=self._dialect)
        return str(compiled), {k: v for k, v in compiled.params.items() if k != "upto"}

    @functools.lru_cache(maxsize=8)  # noqa: B019 - one Statements per catalog, a few chunk sizes
    def dequeue(self, n: int) -> str:
        """``DELETE FROM sn_queue WHERE id IN (:q0, ..., :q<n-1>)``."""
        stmt = S.queue.delete().where(S.queue.c.id.in_([sa.bindparam(f"q{i}") for i in range(n)]))
        return str(stmt.compile(dialect=self._dialect))

    def new_record_ids(self, cur: Any, n: int) -> list[int]:
        if self.sqlite:
            cur.execute(self.ids)
            base = int(cur.fetchone()[0])
            return list(range(base + 1, base + 1 + n))
        cur.execute(self.ids, {"n": n})
        return [int(r[0]) for r in cur.fetchall()]

    @staticmethod
    def processed(row: dict[str, Any], procs: list[Any]) -> dict[str, Any]:
        for name, proc in procs:
            row[name] = proc(row[name])
        return row

    @staticmethod
    def all_processed(rows: list[dict[str, Any]], procs: list[Any]) -> list[dict[str, Any]]:
        """The rows through their columns' bind processors, as new dicts (none, for the text and integer
        columns of both dialects: then the rows themselves)."""
        if not procs:
            return rows
        return [Statements.processed(dict(row), procs) for row in rows]
