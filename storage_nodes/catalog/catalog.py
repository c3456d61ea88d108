"""The :class:`Catalog`: record saves and runs, find them again, load what was found.

A catalog is an index beside the files, never instead of them: every row can be rebuilt
from the files with :meth:`Catalog.index`. Writes are short transactions that either
record a whole file (its records, inputs, metadata and edges) or nothing. On SQLite the
database runs in WAL mode, write transactions start with ``BEGIN IMMEDIATE`` and a busy
database is retried (with backoff, up to :data:`RETRY_SECONDS`), so many processes can
record into one file; on PostgreSQL serialisation failures and unique-key races are
retried the same way.
"""

from __future__ import annotations

import atexit
import datetime
import functools
import inspect as pyinspect
import json
import logging
import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from .. import api, registry
from .._mounts import NETWORK_FILESYSTEMS, filesystem_type, network_filesystem
from ..atomic import LOCK_SUFFIX, TEMP_PREFIX
from ..errors import (
    CatalogError,
    CatalogReadOnlyError,
    InvalidArgumentError,
    KeyNotFoundError,
    StaleEntryError,
    StorageError,
    UnsafeLoadError,
)
from ..keys import join, split
from ..provenance.metadata import validate_metadata
from . import schema as S
from .digest import DIGEST_VERSION, digest
from .identity import (
    Identify,
    call_digest,
    describe_value,
    from_preview,
    live_identity,
    node_name,
    preview,
    recorded_identity,
)
from .records import Dropped, FileIdentity, Hit, IndexReport, Summary, file_identity
from .rows import (
    encode_payload,
    file_entry,
    host,
    metadata_rows,
    now,
    parse_payload,
    to_json,
    user,
    workflow_rows,
)
from .url import default_location, redact, scrub, to_url

__all__ = [
    "NETWORK_FILESYSTEMS", "RETRY_SECONDS", "Catalog", "Dropped", "FileIdentity", "Hit", "Identify", "IndexReport",
    "Summary", "call_digest", "file_identity", "filesystem_type", "live_identity", "network_filesystem", "node_name",
    "open_catalog", "preview", "recorded_identity", "workflow_rows",
]  # fmt: skip

log = logging.getLogger("storage_nodes.catalog")

#: how long a write keeps retrying a busy (locked) database before a CatalogError
RETRY_SECONDS = 120.0
#: SQLite's own wait for a lock (ms) before the retry loop takes over
BUSY_TIMEOUT_MS = 30000
#: SQLite WAL pages before a commit copies them into the database (and fsyncs): 4000 pages
#: (16 MB) instead of SQLite's 1000 makes that stall a quarter as frequent per record
WAL_AUTOCHECKPOINT = 4000
_ANALYZE_EVERY = 1000  # SQLite statistics: at a catalog's first write in a process, then every N writes
_IN_CHUNK = 500
T = TypeVar("T")
PathLike = str | os.PathLike[str]


# ---------------------------------------------------------------------------- small records


# ---------------------------------------------------------------------------- helpers


def _utc(value: str | datetime.date | datetime.datetime | None, name: str) -> datetime.datetime | None:
    """``since``/``until`` as naive UTC: ISO text or a date (midnight UTC) or a datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidArgumentError(f"{name}={value!r} is not an ISO date or time like '2026-11-01'") from None
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, datetime.date):
        return datetime.datetime(value.year, value.month, value.day)
    raise InvalidArgumentError(f"{name} must be an ISO date string, a date or a datetime, got {type(value).__name__}")


#: SQLSTATEs of a PostgreSQL write refused to this user: insufficient_privilege,
#: read_only_sql_transaction (a hot standby, default_transaction_read_only)
_READ_ONLY_SQLSTATES = frozenset({"42501", "25006"})


def _no_write_access(exc: BaseException) -> bool:
    """Whether the database refused a write because this user may only read (by the driver's
    error code: SQLite's SQLITE_READONLY family, or the SQLSTATEs above), not by message text."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF == sqlite3.SQLITE_READONLY  # extended codes keep the primary in the low byte
    return getattr(orig, "sqlstate", None) in _READ_ONLY_SQLSTATES


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, sa.exc.IntegrityError):
        return True  # two writers recording the same path at once: the retry replaces the other's row
    if not isinstance(exc, sa.exc.OperationalError | sa.exc.DBAPIError):
        return False
    text = str(getattr(exc, "orig", exc)).lower()
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return (
        "database is locked" in text
        or "database table is locked" in text
        or "busy" in text
        or code in ("40001", "40P01", "55P03")
        or "deadlock" in text
        or "could not serialize" in text
    )


class _Statements:
    """The recording statements, compiled once per catalog from the Core tables, run on the DB-API cursor.

    Recording a run is a handful of inserts of known shape; going through SQLAlchemy's
    execution machinery for each (cache-key lookup, parameter processing, result
    wrapping) cost more than the database work. Here the SQL text comes from the same
    ``schema`` tables compiled for the engine's dialect (named parameters: ``:name`` on
    SQLite, ``%(name)s`` on psycopg), values pass through each column type's own bind
    processor (so times are stored exactly as SQLAlchemy stores them), and rows go by
    ``executemany``. Still parameterised: no value is ever part of the SQL text.
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

    @functools.lru_cache(maxsize=8)  # noqa: B019 - one _Statements per catalog, a few batch sizes
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

    @functools.lru_cache(maxsize=8)  # noqa: B019 - one _Statements per catalog, a few chunk sizes
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
        return [_Statements.processed(dict(row), procs) for row in rows]


def _cursor(conn: sa.Connection) -> Any:
    """The DB-API cursor of ``conn``'s connection, inside its current transaction."""
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]


_live: weakref.WeakSet[Catalog] = weakref.WeakSet()


def _after_fork() -> None:
    """A forked child must not use its parent's database connections (it opens its own) nor its locks."""
    global _catalogs_lock
    _catalogs_lock = threading.Lock()  # another thread of the parent may have held it at the fork
    for cat in list(_live):
        cat._engine.dispose(close=False)
        cat._ready_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)

_catalogs: dict[tuple[int, str], Catalog] = {}
_catalogs_lock = threading.Lock()


def open_catalog(url_or_path: str | os.PathLike[str] | None = None) -> Catalog:
    """A :class:`Catalog` for ``url_or_path``, shared per process (the upper layers' string catalogs)."""
    text = os.fspath(url_or_path) if url_or_path is not None else default_location()
    key = (os.getpid(), to_url(text).render_as_string(hide_password=False))
    with _catalogs_lock:
        cat = _catalogs.get(key)
        if cat is None:
            cat = _catalogs[key] = Catalog(text)
        return cat


# ---------------------------------------------------------------------------- the catalog


class Catalog:
    """One queryable index of stored results, in SQLite (default) or PostgreSQL.

    ``url_or_path``: a SQLAlchemy URL (``postgresql://user@host/db``; any form SQLAlchemy
    takes) or a file path (an SQLite file, created on first use); ``None``:
    ``$STORAGE_NODES_CATALOG``, else ``catalog.sqlite`` in the user's data directory.

    >>> cat = Catalog("results.sqlite")  # doctest: +SKIP
    >>> sn.save_workflow(wf, "runs/relax.h5", catalog=cat)  # doctest: +SKIP
    >>> cat.find(node="storage_nodes.demo.relax", inputs={"steps": 40})[0].load("energies")  # doctest: +SKIP
    """

    def __init__(self, url_or_path: str | os.PathLike[str] | sa.URL | None = None) -> None:
        given = url_or_path if url_or_path is not None else default_location()
        if not isinstance(given, str | os.PathLike | sa.URL):
            raise InvalidArgumentError(f"Catalog() takes a URL or a path, got {type(given).__name__}")
        try:
            self.url = to_url(given)
        except Exception as exc:
            raise CatalogError(f"cannot read catalog URL {redact(str(given))!r}: {type(exc).__name__}") from None
        self.location = redact(self.url)
        self._sqlite = self.url.get_backend_name() == "sqlite"
        self.journal_mode: str | None = None  # SQLite: "wal", or "delete" on a network file system
        self._engine = self._make_engine()
        _live.add(self)
        self._ready = False
        self._ready_lock = threading.Lock()
        self._writes = 0
        self._queued = 0  # recordings this process queued since its last flush
        self._stmts: _Statements | None = None

    def __repr__(self) -> str:
        return f"<Catalog {self.location}>"

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Move what this process queued into the tables (:meth:`flush`), then close the database
        connections (the catalog reopens them when used again). A flush that fails is logged: the
        queue stays for the next query."""
        if self._queued:
            try:
                self.flush()
            except CatalogError as exc:
                log.warning("catalog %s: queued recordings stay queued: %s", self.location, exc)
        self._engine.dispose()

    def __reduce__(self) -> tuple[Any, ...]:  # picklable to worker processes: by URL
        return (Catalog, (self.url,))

    # ------------------------------------------------------------------ engine and transactions

    def _make_engine(self) -> sa.Engine:
        if self._sqlite:
            database = self.url.database
            if database and database != ":memory:":
                parent = Path(database).parent
                if not parent.exists():
                    try:
                        parent.mkdir(parents=True, mode=0o700)
                    except OSError as exc:
                        raise CatalogError(f"cannot create the catalog directory {parent}: {exc.strerror}") from None
            busy = BUSY_TIMEOUT_MS
            network = network_filesystem(database) if database and database != ":memory:" else None
            if network is not None:
                log.warning(
                    "catalog %s is on a %s network file system, where SQLite's WAL mode is unsafe: using "
                    "journal_mode=DELETE with synchronous=FULL (slower; one machine at a time). For a catalog "
                    "shared between machines use a PostgreSQL URL (postgresql://user@host/db)",
                    self.location,
                    network,
                )
            journal, synchronous = ("DELETE", "FULL") if network is not None else ("WAL", "NORMAL")
            self.journal_mode = journal.lower()
            engine = sa.create_engine(self.url, connect_args={"timeout": busy / 1000, "check_same_thread": False})

            @sa.event.listens_for(engine, "connect")
            def _connect(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
                cur = dbapi_connection.cursor()
                try:
                    cur.execute(f"PRAGMA busy_timeout = {int(busy)}")
                    cur.execute(f"PRAGMA journal_mode = {journal}")
                    # WAL + NORMAL: a commit writes the WAL but does not fsync it (only checkpoints
                    # do): durable against a crash of the process, not against power loss or an OS
                    # crash, which may lose the last records (never corrupt the file); `index` restores them
                    cur.execute(f"PRAGMA synchronous = {synchronous}")
                    cur.execute(f"PRAGMA wal_autocheckpoint = {int(WAL_AUTOCHECKPOINT)}")
                    cur.execute("PRAGMA foreign_keys = ON")
                finally:
                    cur.close()

            @sa.event.listens_for(engine, "begin")
            def _begin(conn: sa.Connection) -> None:
                # a writer takes the write lock up front: a deferred transaction that later
                # needs it fails at once with "database is locked" (no busy wait in SQLite)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("sn_write") else "BEGIN")

            return engine
        try:
            return sa.create_engine(self.url, pool_pre_ping=True)
        except Exception as exc:
            raise CatalogError(f"cannot open catalog {self.location}: {self._message(exc)}") from None

    def _message(self, exc: BaseException) -> str:
        orig = getattr(exc, "orig", None) or exc
        text = f"{type(orig).__name__}: {str(orig).strip().splitlines()[0] if str(orig).strip() else ''}"
        return scrub(text, self.url)

    def _run(self, work: Callable[[sa.Connection], T], *, write: bool, what: str) -> T:
        """Run ``work`` in one transaction after the queued recordings; retry a busy database;
        errors become CatalogError."""
        self._prepare()
        if write:
            self.flush()
            return self._transact(work, write=True, what=what)
        stmts = self._statements()

        def unless_queued(conn: sa.Connection) -> T:  # one snapshot: an empty queue means complete tables
            cur = _cursor(conn)
            try:
                cur.execute(stmts.any_queued)
                if cur.fetchone() is not None:
                    raise _Queued
            finally:
                cur.close()
            return work(conn)

        try:
            return self._transact(unless_queued, write=False, what=what)
        except _Queued:
            self._flush_for_read()
        return self._transact(work, write=False, what=what)

    def _transact(
        self,
        work: Callable[[sa.Connection], T] | None,
        *,
        write: bool,
        what: str,
        counts: bool = True,
        direct: Callable[[Any], T] | None = None,
    ) -> T:
        """``work(connection)`` in one transaction (or ``direct(dbapi_cursor)`` in one write
        transaction on the pooled DB-API connection); a busy database is retried."""
        deadline = time.monotonic() + RETRY_SECONDS
        delay = 0.005
        while True:
            try:
                if direct is not None:
                    return self._raw_write(direct)
                assert work is not None
                with self._engine.connect() as conn:
                    if write:
                        conn = conn.execution_options(sn_write=True)
                    with conn.begin():
                        result = work(conn)
                    if write and self._sqlite and counts:
                        self._writes += 1
                        if self._ready and self._writes % _ANALYZE_EVERY == 1:
                            self._analyze(conn)
                    return result
            except StorageError:
                raise
            except (sa.exc.SQLAlchemyError, self._engine.dialect.loaded_dbapi.Error) as raw:
                exc = raw
                if not isinstance(exc, sa.exc.SQLAlchemyError):  # from a DB-API cursor (_Statements)
                    exc = sa.exc.DBAPIError.instance(None, None, exc, self._engine.dialect.loaded_dbapi.Error)
                if _retryable(exc) and time.monotonic() < deadline:
                    log.debug("catalog %s busy (%s); retrying", self.location, type(exc).__name__)
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 0.5)
                    continue
                kind = CatalogReadOnlyError if _no_write_access(exc) else CatalogError
                raise kind(f"cannot {what} catalog {self.location}: {self._message(exc)}") from None

    def _raw_write(self, work: Callable[[Any], T]) -> T:
        """One write transaction straight on the pooled DB-API connection: for the one-row queue
        insert, whose cost was mostly SQLAlchemy's connection, transaction and event machinery."""
        dbapi = self._engine.raw_connection()
        try:
            cur = dbapi.cursor()
            try:
                if self._sqlite:
                    cur.execute("BEGIN IMMEDIATE")
                result = work(cur)
                cur.execute("COMMIT") if self._sqlite else dbapi.commit()
                return result
            except BaseException:
                dbapi.rollback()
                raise
            finally:
                cur.close()
        finally:
            dbapi.close()  # back to the pool

    def _analyze(self, conn: sa.Connection) -> None:
        """Refresh SQLite's planner statistics (sampled: about a millisecond at any size).

        Without them SQLite may drive ``find(node=, metadata=)`` from the node index
        instead of the far more selective metadata index. PostgreSQL's autovacuum does this
        itself. A busy database just skips it.
        """
        try:
            with conn.begin():
                conn.exec_driver_sql("PRAGMA analysis_limit = 400")
                conn.exec_driver_sql("ANALYZE")
        except sa.exc.OperationalError:
            pass

    def _prepare(self) -> None:
        """Create the tables on first use; check (and migrate) the schema version."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            self._transact(self._ensure_schema, write=True, what="open")
            self._writes = 0  # statistics at the first *record*: not of a catalog just created empty
            self._ready = True

    def _ensure_schema(self, conn: sa.Connection) -> None:
        if not self._sqlite:  # one creator at a time across processes
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7243311)"))
        has = sa.inspect(conn).has_table(S.schema.name)
        if not has:
            S.meta_table.create_all(conn)
            from .._version import __version__

            conn.execute(
                S.schema.insert().values(
                    version=S.SCHEMA_VERSION,
                    digest_version=DIGEST_VERSION,
                    created_at=now(),
                    created_by=f"{user()}@{host()}",
                    storage_nodes=__version__,
                )
            )
            return
        row = conn.execute(sa.select(S.schema.c.version, S.schema.c.digest_version)).first()
        if row is None:
            raise CatalogError(f"catalog {self.location} has an empty sn_schema table; it is damaged")
        version, digest_version = int(row[0]), int(row[1])
        if version > S.SCHEMA_VERSION:
            raise CatalogError(
                f"catalog {self.location} has schema version {version}, newer than this storage_nodes "
                f"reads ({S.SCHEMA_VERSION}); upgrade storage_nodes"
            )
        while version < S.SCHEMA_VERSION:
            migrate = S.MIGRATIONS.get(version)
            if migrate is None:
                raise CatalogError(f"catalog {self.location}: no migration from schema version {version}")
            migrate(conn)
            version += 1
            conn.execute(S.schema.update().values(version=version))
        if digest_version != DIGEST_VERSION:
            raise CatalogError(
                f"catalog {self.location} holds digests of version {digest_version}, this storage_nodes makes "
                f"version {DIGEST_VERSION}: rebuild it from the files (a new catalog, then `catalog index DIR`)"
            )

    # ------------------------------------------------------------------ recording (the Recorder protocol)

    def record_save(
        self,
        path: PathLike,
        *,
        obj: Any = None,
        key: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        backend: str | None = None,
        type_name: str | None = None,
        _by: str = "save",
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
            raise CatalogError(f"cannot record {p} in catalog {self.location}: the file cannot be read", path=p)
        user_metadata = validate_metadata(metadata, path=p)
        tname = type_name or (
            describe_value(obj).split(" ", 1)[0] if obj is not None or key is not None else "NoneType"
        )
        segments = split(key)
        rec_key = join(*segments)
        if not segments:  # a whole file: its rows replace the file's old ones, queued like a run's
            self._enqueue(
                p,
                {"file": file_entry(p, ident, kind="save", backend=backend, workflow=None, metadata=user_metadata,
                                     by=_by),
                 "meta": metadata_rows(user_metadata),
                 "records": [["", None, None, None, None, None, None, [], tname]],
                 "inputs": [], "edges": []},
            )  # fmt: skip
            return

        def work(conn: sa.Connection) -> None:
            # a keyed save changes the file's rows in place: in order after every queued recording
            # (the flush before this transaction took most; this takes what came since)
            upto = self._last_queued(conn)
            while upto is not None and self._drain(conn, None, upto):
                pass
            q = sa.select(S.files.c.id, S.files.c.metadata).where(S.files.c.path == str(p))
            row = conn.execute(q.with_for_update()).first()
            if row is not None:
                file_id = int(row[0])
                # now, under the lock: a concurrent keyed save that wrote after our first look
                # and recorded before us must not be undone by our older identity
                now = file_identity(p)
                if now is None:
                    raise CatalogError(f"cannot record {p} in catalog {self.location}: the file cannot be read",
                                       path=p)  # fmt: skip
                merged = {**json.loads(row[1] or "{}"), **user_metadata}
                conn.execute(
                    S.files.update()
                    .where(S.files.c.id == file_id)
                    .values(size=now.size, mtime_ns=now.mtime_ns, content=now.content, metadata=to_json(merged))
                )
                self._delete_overlapping(conn, file_id, rec_key)
                self._write_metadata(conn, file_id, merged, replace=True)
            else:
                file_id = self._insert_file(conn, p, ident, kind="save", backend=backend, workflow=None,
                                            metadata=user_metadata, by=_by)  # fmt: skip
                self._write_metadata(conn, file_id, user_metadata)
            conn.execute(
                S.records.insert(),
                {"file_id": file_id, "key": rec_key, "label": None, "node": None, "module": None, "qualname": None,
                 "version": None, "source": None, "call": None, "outputs": "[]", "undigested": "[]", "type": tname},
            )  # fmt: skip

        self._run(work, write=True, what="record into")

    def record_workflow(
        self,
        path: PathLike,
        *,
        label: str,
        recipe: str | Mapping[str, Any],
        nodes: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        backend: str | None = None,
        identify: Identify | None = None,
        _by: str = "save",
    ) -> None:
        """Record a saved run: the file, every node (identity, input digests, call digest, outputs), the edges.

        ``identify`` gives each node function's package version and source digest; the
        default asks the current environment (right after a save), :meth:`index` passes
        the file's stored environment record.
        """
        p = Path(path).expanduser().resolve()
        ident = file_identity(p)
        if ident is None:
            raise CatalogError(f"cannot record {p} in catalog {self.location}: the file cannot be read", path=p)
        user_metadata = validate_metadata(metadata, path=p)
        parsed = json.loads(recipe) if isinstance(recipe, str | bytes) else recipe
        rows, edges = workflow_rows(parsed, nodes, functools.cache(identify or live_identity))

        # the call digests and JSON columns are made at flush time, from these
        record_rows = [[r.key, r.label, r.node, r.module, r.qualname, r.version, r.source, r.outputs, r.type]
                       for r in rows]  # fmt: skip
        input_rows = [[i, port, d, pv] for i, r in enumerate(rows) for port, (d, pv) in r.inputs.items()]
        position = {r.key: i for i, r in enumerate(rows)}
        self._enqueue(
            p,
            {"file": file_entry(p, ident, kind="workflow", backend=backend, workflow=label,
                                 metadata=user_metadata, by=_by),
             "meta": metadata_rows(user_metadata), "records": record_rows, "inputs": input_rows,
             "edges": [[position[s], sp, position[t], tp] for s, sp, t, tp in edges]},
        )  # fmt: skip

    # ------------------------------------------------------------------ the queue

    def _enqueue(self, p: Path, payload: dict[str, Any]) -> None:
        """Queue one recording: a single-row transaction (what a save waits for)."""
        self._prepare()
        stmts = self._statements()
        text = encode_payload(payload)

        self._transact(
            None,
            write=True,
            what="record into",
            direct=lambda cur: cur.execute(stmts.enqueue, {"path": str(p), "payload": text}),
        )
        self._queued += 1
        _queued_here.add(self)

    def _drain(self, conn: sa.Connection, limit: int | None = None, upto: int | None = None) -> int:
        """Move queued recordings (oldest first, at most ``limit``, ids up to ``upto``) into the
        tables; return how many.

        Inside the caller's write transaction: a crash or error leaves the queue as it was.
        PostgreSQL locks the rows taken (``FOR UPDATE``): a second drainer waits, then finds
        them gone. SQLite's ``BEGIN IMMEDIATE`` already serialises writers.
        """
        stmts = self._statements()
        cur = _cursor(conn)
        try:
            if upto is None:
                upto = self._last_queued(conn)
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
            dbapi = self._engine.dialect.loaded_dbapi
            rejected = (dbapi.DataError, dbapi.ProgrammingError, dbapi.InterfaceError, ValueError, TypeError)
            for qid in taken:
                cur.execute(stmts.payload, {"id": qid})
                text = cur.fetchone()[0]
                payload = parse_payload(text)
                why = "its payload is not one this version writes"
                if payload is not None:
                    cur.execute("SAVEPOINT sn_queued")
                    try:
                        self._apply(cur, stmts, payload)
                        cur.execute("RELEASE SAVEPOINT sn_queued")
                        continue
                    except rejected as exc:  # the database refuses these rows: not a busy database
                        cur.execute("ROLLBACK TO SAVEPOINT sn_queued")
                        why = f"the database refused its rows ({type(exc).__name__})"
                # never applicable (damaged, or written by another program): dropped, and said
                log.error("catalog %s: dropped queued recording %s: %s (%.80r); record the file again with "
                          "`storage-nodes catalog index DIR`", self.location, qid, why, text)  # fmt: skip
            for chunk in _chunks(taken):
                cur.execute(stmts.dequeue(len(chunk)), {f"q{i}": q for i, q in enumerate(chunk)})
            return len(taken)
        finally:
            cur.close()

    def _apply(self, cur: Any, stmts: _Statements, payload: Mapping[str, Any]) -> None:
        """The rows of one queued recording: replace the file's rows (by cascade), insert file,
        metadata, records (ids taken up front), their inputs, the edges; five statements."""
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

    def flush(self) -> int:
        """Move every queued recording into the tables now; return how many.

        Saves only queue their recording (one row); every query, :meth:`index`,
        :meth:`close` and the exit of a process that saved do this first, so a query
        never misses a save. Call it to make the tables complete for readers that use
        ``sqlite3``/``psql`` directly while this process keeps running.

        >>> cat.flush()  # doctest: +SKIP
        3
        """
        self._prepare()
        upto = self._transact(self._last_queued, write=False, what="read")
        total = 0
        # up to what was queued when the flush began: writers that go on queueing cannot keep it
        # going; and until none of that is left, since a batch that finds its rows taken (another
        # flusher held them, PostgreSQL) comes back short while later rows still wait
        while upto is not None:
            n = self._transact(lambda conn: self._drain(conn, _DRAIN_BATCH, upto), write=True, what="record into")
            total += n
            if n == 0 and not self._transact(lambda conn: self._left(conn, upto), write=False, what="read"):
                break
        self._queued = 0
        return total

    def _left(self, conn: sa.Connection, upto: int) -> bool:
        cur = _cursor(conn)
        try:
            cur.execute(self._statements().left, {"upto": upto})
            return cur.fetchone()[0] is not None
        finally:
            cur.close()

    def _last_queued(self, conn: sa.Connection) -> int | None:
        cur = _cursor(conn)
        try:
            cur.execute(self._statements().last_queued)
            found = cur.fetchone()[0]
            return None if found is None else int(found)
        finally:
            cur.close()

    def _flush_for_read(self) -> None:
        """Before a query that found the queue not empty: flush it. A reader without write access
        (a read-only file or PostgreSQL role) queries what is already in the tables, with a warning."""
        try:
            self.flush()
        except CatalogReadOnlyError as exc:
            log.warning("catalog %s: queued recordings not visible: no write access to move them into the "
                        "tables (%s); a query by a writer will", self.location, exc)  # fmt: skip

    def _insert_file(
        self,
        conn: sa.Connection,
        p: Path,
        ident: FileIdentity,
        *,
        kind: str,
        backend: str | None,
        workflow: str | None,
        metadata: Mapping[str, Any],
        by: str,
    ) -> int:
        result = conn.execute(
            S.files.insert(),
            {"path": str(p), "size": ident.size, "mtime_ns": ident.mtime_ns, "content": ident.content,
             "backend": backend, "kind": kind, "workflow": workflow, "metadata": to_json(metadata),
             "created_by": user(), "host": host(), "created_at": now(), "recorded_by": by},
        )  # fmt: skip
        return _pk(result)

    def _statements(self) -> _Statements:
        if self._stmts is None:
            self._stmts = _Statements(self._engine.dialect)
        return self._stmts

    def _write_metadata(
        self, conn: sa.Connection, file_id: int, metadata: Mapping[str, Any], *, replace: bool = False
    ) -> None:
        if replace:
            conn.execute(S.metadata.delete().where(S.metadata.c.file_id == file_id))
        rows = metadata_rows(metadata)
        if rows:
            conn.execute(S.metadata.insert(), [{**m, "file_id": file_id} for m in rows])

    def _delete_files(self, conn: sa.Connection, file_ids: Sequence[int]) -> None:
        """Delete files and, by ``ON DELETE CASCADE``, their records, inputs, metadata and edges.

        SQLite enforces the cascade because every catalog connection turns
        ``PRAGMA foreign_keys`` on; one statement instead of five.
        """
        for chunk in _chunks(file_ids):
            conn.execute(S.files.delete().where(S.files.c.id.in_(chunk)))

    def _delete_overlapping(self, conn: sa.Connection, file_id: int, key: str) -> None:
        """Drop the records of ``file_id`` at ``key``, above it (a prefix) or below it."""
        rows = conn.execute(sa.select(S.records.c.id, S.records.c.key).where(S.records.c.file_id == file_id)).all()
        doomed = [int(i) for i, k in rows if k == key or k == "" or k.startswith(key + "/") or key.startswith(k + "/")]
        for chunk in _chunks(doomed):
            conn.execute(S.edges.delete().where(S.edges.c.source_id.in_(chunk) | S.edges.c.target_id.in_(chunk)))
            conn.execute(S.inputs.delete().where(S.inputs.c.record_id.in_(chunk)))
            conn.execute(S.records.delete().where(S.records.c.id.in_(chunk)))

    # ------------------------------------------------------------------ queries

    def find(
        self,
        node: Any = None,
        inputs: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        user: str | None = None,
        host: str | None = None,
        since: str | datetime.date | None = None,
        until: str | datetime.date | None = None,
        workflow: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
    ) -> list[Hit]:
        """Entries matching every given filter, newest first.

        ``node``: a function or ``"module.qualname"`` (runs' nodes only); ``inputs``: ports
        that must hold these values (by digest; other ports free); ``metadata``: user
        metadata entries of the file; ``user``/``host``: who recorded; ``since``/``until``:
        UTC dates or times; ``workflow``: the run's label; ``kind``: ``"save"`` (plain
        saves) or ``"node"``. Stale hits are included with ``stale=True``.

        >>> cat.find(node="storage_nodes.demo.relax", inputs={"steps": 40}, user="alice")  # doctest: +SKIP
        """
        q = sa.select(S.records, S.files).join(S.files, S.files.c.id == S.records.c.file_id)
        q = self._filters(q, node=node, inputs=inputs, metadata=metadata, user=user, host=host, since=since,
                          until=until, workflow=workflow, kind=kind)  # fmt: skip
        q = q.order_by(S.files.c.created_at.desc(), S.records.c.id.desc())
        if limit is not None:
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
                raise InvalidArgumentError(f"limit must be a whole number >= 0, got {limit!r}")
            q = q.limit(limit)
        return self._run(lambda conn: self._hits(conn, conn.execute(q).mappings().all()), write=False, what="read")

    def _filters(
        self,
        q: Any,
        *,
        node: Any,
        inputs: Mapping[str, Any] | None,
        metadata: Mapping[str, Any] | None,
        user: str | None,
        host: str | None,
        since: Any,
        until: Any,
        workflow: str | None,
        kind: str | None,
    ) -> Any:
        texts = [node_name(node) if node is not None else "", user or "", host or "", workflow or ""]
        texts += [str(k) for k in _mapping(inputs, "inputs")] + [str(k) for k in _mapping(metadata, "metadata")]
        if any("\x00" in t for t in texts):  # no stored name holds NUL (PostgreSQL text cannot): no match
            return q.where(sa.false())
        if node is not None:
            q = q.where(S.records.c.node == node_name(node))
        if kind is not None:
            if kind not in ("save", "node"):
                raise InvalidArgumentError(f"kind must be 'save' or 'node', got {kind!r}")
            q = q.where(S.records.c.node.is_(None) if kind == "save" else S.records.c.node.is_not(None))
        for port, value in _mapping(inputs, "inputs").items():
            d = digest(value)
            if d is None:
                raise InvalidArgumentError(
                    f"inputs[{port!r}]: this {type(value).__name__} cannot be digested, so no entry can match it"
                )
            # the (port, digest, record_id) index yields the matching records directly
            matching = sa.select(S.inputs.c.record_id).where(S.inputs.c.port == str(port), S.inputs.c.digest == d)
            q = q.where(S.records.c.id.in_(matching))
        if metadata is not None:
            for name, value in validate_metadata(_mapping(metadata, "metadata")).items():
                files = sa.select(S.metadata.c.file_id).where(
                    S.metadata.c.name == name, S.metadata.c.digest == digest(value)
                )
                q = q.where(S.records.c.file_id.in_(files))
        if user is not None:
            q = q.where(S.files.c.created_by == str(user))
        if host is not None:
            q = q.where(S.files.c.host == str(host))
        start, end = _utc(since, "since"), _utc(until, "until")
        if start is not None:
            q = q.where(S.files.c.created_at >= start)
        if end is not None:
            q = q.where(S.files.c.created_at < end)
        if workflow is not None:
            q = q.where(S.files.c.workflow == str(workflow))
        return q

    def _hits(self, conn: sa.Connection, rows: Sequence[Any]) -> list[Hit]:
        record_ids = [int(r["id"]) for r in rows]
        ins: dict[int, dict[str, Any]] = {}
        for chunk in _chunks(record_ids):
            for rid, port, pv in conn.execute(
                sa.select(S.inputs.c.record_id, S.inputs.c.port, S.inputs.c.preview).where(
                    S.inputs.c.record_id.in_(chunk)
                )
            ):
                ins.setdefault(int(rid), {})[port] = from_preview(pv)
        fresh: dict[int, bool] = {}
        hits = []
        for r in rows:
            ident = FileIdentity(int(r["size"]), int(r["mtime_ns"]), r["content"])
            fid = int(r["file_id"])
            if fid not in fresh:
                fresh[fid] = file_identity(Path(r["path"])) == ident
            hits.append(
                Hit(
                    path=Path(r["path"]), key=r["key"], node=r["node"], inputs=ins.get(int(r["id"]), {}),
                    outputs=json.loads(r["outputs"]), created_by=r["created_by"], host=r["host"],
                    created_at=r["created_at"], workflow=r["workflow"], label=r["label"],
                    metadata=json.loads(r["metadata"]), version=r["version"], stale=not fresh[fid],
                    undigested=json.loads(r["undigested"]),
                    call=r["call"], record_id=int(r["id"]), _lineage=self._upstream_of, _identity=ident,
                )
            )  # fmt: skip
        return hits

    def _upstream_of(self, hit: Hit) -> list[Hit]:
        def work(conn: sa.Connection) -> list[Hit]:
            source_ids = (
                sa.select(S.edges.c.source_id).where(S.edges.c.target_id == hit.record_id).distinct().scalar_subquery()
            )
            q = (
                sa.select(S.records, S.files)
                .join(S.files, S.files.c.id == S.records.c.file_id)
                .where(S.records.c.id.in_(source_ids))
                .order_by(S.records.c.id)
            )
            return self._hits(conn, conn.execute(q).mappings().all())

        return self._run(work, write=False, what="read")

    def lookup(self, node: Any, /, **inputs: Any) -> dict[str, Any]:
        """The outputs of exactly this call (``node`` with these inputs) if anyone recorded it.

        With a function, its defaults fill the inputs not given (as a run does); with a
        ``"module.qualname"`` string every input must be given. The node's identity is its
        name, its package version and the digest of its source now, so a recorded call of
        an edited function does not match. The newest fresh entry is loaded; none raises
        :class:`KeyNotFoundError`.

        >>> cat.lookup(relax, positions=x, steps=40)["energies"]  # doctest: +SKIP
        """
        name = node_name(node)
        values = dict(inputs)
        if callable(node) and not isinstance(node, str):
            try:
                bound = pyinspect.signature(node).bind_partial(**inputs)
                bound.apply_defaults()
                values = dict(bound.arguments)
            except (TypeError, ValueError) as exc:
                raise InvalidArgumentError(f"lookup({name}): {exc}") from None
        module, _, qualname = name.rpartition(".")
        if callable(node) and not isinstance(node, str):
            module, qualname = node.__module__, node.__qualname__
        version, source = live_identity(module, qualname)
        digests = {p: digest(v) for p, v in values.items()}
        bad = sorted(p for p, d in digests.items() if d is None)
        if bad:
            raise KeyNotFoundError(
                f"lookup({name}): input(s) {', '.join(bad)} cannot be digested, so no record can match"
            )
        call = call_digest(name, version, source, digests)
        q = (
            sa.select(S.records, S.files)
            .join(S.files, S.files.c.id == S.records.c.file_id)
            .where(S.records.c.call == call)
            .order_by(S.files.c.created_at.desc(), S.records.c.id.desc())
        )
        hits = self._run(lambda conn: self._hits(conn, conn.execute(q).mappings().all()), write=False, what="read")
        stale = 0
        for hit in hits:
            if hit.stale:
                stale += 1
                continue
            try:
                outputs: dict[str, Any] = hit.load()
            except StaleEntryError:
                stale += 1
                continue
            return outputs
        extra = (
            f" ({stale} stale entr{'y' if stale == 1 else 'ies'}: files moved or rewritten; "
            "run `catalog index` or `catalog prune`)"
            if stale
            else ""
        )
        raise KeyNotFoundError(
            f"catalog {self.location} has no recorded call of {name} with these inputs{extra}", key=name
        )

    def stats(self) -> dict[str, Any]:
        """Per node function: records, distinct inputs (call digests), users; per user: files, records, last save.

        >>> cat.stats()["nodes"][0]  # doctest: +SKIP
        {'node': 'storage_nodes.demo.relax', 'records': 12, 'distinct_inputs': 3, 'users': ['alice', 'bob'], ...}
        """
        r, f = S.records, S.files

        def work(conn: sa.Connection) -> dict[str, Any]:
            nodes = conn.execute(
                sa.select(r.c.node, sa.func.count(), sa.func.count(sa.distinct(r.c.call)), sa.func.max(f.c.created_at))
                .join(f, f.c.id == r.c.file_id)
                .where(r.c.node.is_not(None))
                .group_by(r.c.node)
                .order_by(sa.func.count().desc(), r.c.node)
            ).all()
            node_users: dict[str, list[str]] = {}
            for node, u in conn.execute(
                sa.select(r.c.node, f.c.created_by).join(f, f.c.id == r.c.file_id).where(r.c.node.is_not(None))
                .group_by(r.c.node, f.c.created_by).order_by(f.c.created_by)
            ):  # fmt: skip
                node_users.setdefault(node, []).append(u)
            users = conn.execute(
                sa.select(f.c.created_by, sa.func.count(sa.distinct(f.c.id)), sa.func.count(r.c.id),
                          sa.func.min(f.c.created_at), sa.func.max(f.c.created_at))
                .join(r, r.c.file_id == f.c.id, isouter=True)
                .group_by(f.c.created_by).order_by(f.c.created_by)
            ).all()  # fmt: skip
            n_files = conn.execute(sa.select(sa.func.count()).select_from(f)).scalar_one()
            n_records = conn.execute(sa.select(sa.func.count()).select_from(r)).scalar_one()
            return {
                "catalog": self.location,
                "files": int(n_files),
                "records": int(n_records),
                "nodes": [
                    {"node": n, "records": int(c), "distinct_inputs": int(d), "users": node_users.get(n, []),
                     "last": _iso(last)}
                    for n, c, d, last in nodes
                ],
                "users": [
                    {"user": u, "files": int(nf), "records": int(nr), "first": _iso(a), "last": _iso(b)}
                    for u, nf, nr, a, b in users
                ],
            }  # fmt: skip

        return self._run(work, write=False, what="read")

    def prune(self, *, dry_run: bool = False) -> list[Dropped]:
        """Drop the entries whose files are gone or were rewritten since recorded; return what was dropped.

        ``dry_run=True`` only reports. A rewritten file is recorded again by :meth:`index`.
        """

        def scan(conn: sa.Connection) -> list[tuple[int, str, FileIdentity, int]]:
            counts = sa.select(S.records.c.file_id, sa.func.count().label("n")).group_by(S.records.c.file_id).subquery()
            q = sa.select(
                S.files.c.id, S.files.c.path, S.files.c.size, S.files.c.mtime_ns, S.files.c.content, counts.c.n
            )
            q = q.join(counts, counts.c.file_id == S.files.c.id, isouter=True)
            return [(int(i), p, FileIdentity(int(s), int(m), c), int(n or 0)) for i, p, s, m, c, n in conn.execute(q)]

        dropped: list[Dropped] = []
        doomed: list[tuple[int, FileIdentity]] = []
        for fid, path, ident, n in self._run(scan, write=False, what="read"):
            now = file_identity(Path(path))
            if now == ident:
                continue
            reason = "file is gone" if not os.path.exists(path) else "file was rewritten"
            dropped.append(Dropped(path, reason, n))
            doomed.append((fid, ident))
        if dropped and not dry_run:

            def work(conn: sa.Connection) -> None:  # only rows still as scanned: a concurrent re-record stays
                ids = []
                for fid, ident in doomed:
                    same = conn.execute(
                        sa.select(S.files.c.id).where(
                            S.files.c.id == fid, S.files.c.size == ident.size, S.files.c.mtime_ns == ident.mtime_ns,
                            S.files.c.content == ident.content,
                        )
                    ).first()  # fmt: skip
                    if same is not None:
                        ids.append(fid)
                self._delete_files(conn, ids)

            self._run(work, write=True, what="prune")
        return dropped

    def index(self, directory: PathLike, *, safe: bool = True, recursive: bool = True) -> IndexReport:
        """Record every storage_nodes file under ``directory`` that the catalog lacks or has outdated.

        Idempotent: a file recorded with its current identity is left alone. Workflow files
        (``save_workflow``) get a record per node, other files one plain-save record.
        ``safe=True`` (default) never runs code from a file: pickle/cloudpickle files are
        recorded from their header (a pickled workflow's nodes only with ``safe=False``),
        h5 values that need code count as undigested.
        """
        root = Path(directory).expanduser().resolve()
        if not root.is_dir():
            raise InvalidArgumentError(f"index() takes a directory; {root} is not one", path=root)
        report = IndexReport()
        known = self._run(
            lambda conn: {
                p: FileIdentity(int(s), int(m), c)
                for p, s, m, c in conn.execute(
                    sa.select(S.files.c.path, S.files.c.size, S.files.c.mtime_ns, S.files.c.content)
                )
            },
            write=False,
            what="read",
        )
        own = {str(Path(self.url.database or "").resolve())} if self._sqlite and self.url.database else set()
        own |= {p + suffix for p in own for suffix in ("-wal", "-shm", "-journal")}
        for p in _walk(root, recursive):
            name = p.name
            if name.startswith(TEMP_PREFIX) or name.endswith(LOCK_SUFFIX) or str(p) in own:
                continue
            ident = file_identity(p)
            if ident is None:
                report.skipped.append((str(p), "cannot be read"))
                continue
            if known.get(str(p)) == ident:
                report.unchanged.append(str(p))
                continue
            try:
                self._index_file(p, safe=safe)
            except CatalogError:
                raise
            except StorageError as exc:
                report.skipped.append((str(p), str(exc)))
                continue
            report.recorded.append(str(p))
        self.flush()
        return report

    def _index_file(self, p: Path, *, safe: bool) -> None:
        from ..graph.workflows import WORKFLOW_KEY, load_workflow

        chosen = registry.detect(p)
        if chosen is None:
            raise StorageError(f"{p} is not a file storage_nodes wrote")
        listing = api.inspect(p, depth=1)
        children = {c.name for c in getattr(listing.root, "children", None) or []}
        env = listing.environment or {}
        backend = api.resolve_backend(p).name
        if WORKFLOW_KEY in children and (api.resolve_backend(p).supports_safe_load or not safe):
            try:
                stored = load_workflow(p, safe=safe, version_policy="ignore")
                nodes = {**stored.nodes, "inputs": stored.inputs, "outputs": stored.outputs}
            except UnsafeLoadError:
                stored = None
                nodes = _nodes_one_by_one(p, children)
            recipe = stored.recipe_json if stored is not None else api.load(p, key=f"{WORKFLOW_KEY}/recipe", safe=True)
            label = stored.label if stored is not None else str(api.load(p, key=f"{WORKFLOW_KEY}/label", safe=True))
            self.record_workflow(p, label=label, recipe=recipe, nodes=nodes, metadata=listing.metadata,
                                 backend=backend, identify=recorded_identity(env), _by="index")  # fmt: skip
            return
        self.record_save(p, metadata=listing.metadata, backend=backend, type_name=getattr(listing.root, "type", None),
                         _by="index")  # fmt: skip


class _Queued(Exception):
    """Inside a read: the queue holds recordings, so the query waits for a flush."""


class _Undigested:
    """A port value an index with ``safe=True`` could not load (it needs code): no digest."""

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("not loaded")


def _nodes_one_by_one(p: Path, children: Iterable[str]) -> dict[str, Any]:
    from ..graph.workflows import WORKFLOW_KEY

    out: dict[str, Any] = {}
    for child in children:
        if child in (WORKFLOW_KEY, "inputs", "outputs"):
            continue
        entry: dict[str, Any] = {}
        for part in ("inputs", "outputs"):
            try:
                listing = api.inspect(p, key=join(child, part), depth=1)
            except StorageError:
                continue
            values = {}
            for c in getattr(listing.root, "children", None) or []:
                try:
                    values[c.name] = api.load(p, key=join(child, part, c.name), safe=True)
                except UnsafeLoadError:
                    values[c.name] = _Undigested()
            entry[part] = values
        out[child] = entry
    return out


def _walk(root: Path, recursive: bool) -> Iterator[Path]:
    items = sorted(root.rglob("*") if recursive else root.iterdir())
    for p in items:
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts[:-1]):
            yield p


def _chunks(items: Sequence[int]) -> Iterator[list[int]]:
    items = list(items)
    for i in range(0, len(items), _IN_CHUNK):
        yield items[i : i + _IN_CHUNK]


#: queued recordings moved per transaction by a flush
_DRAIN_BATCH = 200
#: and at most this many payload characters of them (a batch takes one at least): bounded memory
DRAIN_BYTES = 32 << 20


#: catalogs this process queued recordings into: flushed at exit
_queued_here: weakref.WeakSet[Catalog] = weakref.WeakSet()


def _flush_at_exit() -> None:
    for cat in list(_queued_here):
        if not cat._queued:
            continue
        database = cat.url.database if cat._sqlite else None
        if database and not os.path.exists(database):
            continue  # the catalog file was deleted: nothing to flush into
        try:
            cat.flush()
        except Exception as exc:  # at exit: say it, never raise
            log.warning("catalog %s: queued recordings stay queued: %s", cat.location, exc)


atexit.register(_flush_at_exit)


def _iso(value: datetime.datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _mapping(value: Any, name: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(f"{name}= takes a dict of port -> value, got {type(value).__name__}")
    return value


def _pk(result: Any) -> int:
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - every insert here has an integer primary key
        raise CatalogError("the database returned no primary key for an insert")
    return int(key[0])
