"""The catalog's database: the engine and its pragmas, one transaction with retry, what an error means.

:class:`Database` is what every other module of the catalog works through (the
:class:`~storage_nodes.catalog.Catalog` is a facade over it, as AiiDA's ``psql_dos``
backend is over its engine and MLflow's store over ``store/db/utils.py``). On SQLite the
database runs in WAL mode (``DELETE`` with ``synchronous=FULL`` on a network file
system), write transactions start with ``BEGIN IMMEDIATE`` and a busy database is retried
with backoff for up to :data:`RETRY_SECONDS`; on PostgreSQL serialisation failures and
unique-key races are retried the same way. Errors leave as :class:`CatalogError`, or
:class:`CatalogReadOnlyError` when the database refuses this user writes.
"""

from __future__ import annotations

import difflib
import logging
import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from .._mounts import mount_of, network_filesystem, read_mounts
from ..errors import CatalogError, CatalogNotFoundError, CatalogReadOnlyError, InvalidArgumentError, StorageError
from ..locks import record_locks_refused
from . import schema as S
from .statements import Statements
from .url import default_location, redact, scrub, to_url

__all__ = [
    "BUSY_TIMEOUT_MS", "RETRY_SECONDS", "WAL_AUTOCHECKPOINT", "Database", "chunks", "cursor", "no_write_access",
    "retryable",
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
_IN_CHUNK = 500  # ids in one ``IN (...)`` list
T = TypeVar("T")

#: SQLSTATEs of a PostgreSQL write refused to this user: insufficient_privilege,
#: read_only_sql_transaction (a hot standby, default_transaction_read_only)
_READ_ONLY_SQLSTATES = frozenset({"42501", "25006"})


def no_write_access(exc: BaseException) -> bool:
    """Whether the database refused a write because this user may only read (by the driver's
    error code: SQLite's SQLITE_READONLY family, or the SQLSTATEs above), not by message text."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF == sqlite3.SQLITE_READONLY  # extended codes keep the primary in the low byte
    return getattr(orig, "sqlstate", None) in _READ_ONLY_SQLSTATES


def retryable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database was busy (locked, a serialisation failure, a deadlock,
    a unique-key race), so the same transaction may succeed when tried again."""
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


def cursor(conn: sa.Connection) -> Any:
    """The DB-API cursor of ``conn``'s connection, inside its current transaction."""
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]


def chunks(items: Sequence[int]) -> Iterator[list[int]]:
    """``items`` in lists short enough for one ``IN (...)``."""
    items = list(items)
    for i in range(0, len(items), _IN_CHUNK):
        yield items[i : i + _IN_CHUNK]


def _close_names(path: Path) -> str:
    """`` (did you mean study.sqlite?)`` for files in ``path``'s directory named like it."""
    try:
        names = [p.name for p in path.parent.iterdir() if p.is_file() and not p.name.endswith(("-wal", "-shm"))]
    except OSError:
        return f" (the directory {path.parent} does not exist)" if not path.parent.exists() else ""
    close = difflib.get_close_matches(path.name, names, n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


_live: weakref.WeakSet[Database] = weakref.WeakSet()


def _after_fork() -> None:
    """A forked child must not use its parent's database connections (it opens its own) nor its locks."""
    for db in list(_live):
        db.engine.dispose(close=False)
        db.ready_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


class Database:
    """One catalog database: ``url_or_path`` as :class:`~storage_nodes.catalog.Catalog` takes it.

    ``url`` is the SQLAlchemy URL, ``location`` its text with the password hidden,
    ``journal_mode`` SQLite's (``"wal"``, or ``"delete"`` on a network file system).
    """

    def __init__(self, url_or_path: str | os.PathLike[str] | sa.URL | None = None, *, create: bool = False) -> None:
        given = url_or_path if url_or_path is not None else default_location()
        if not isinstance(given, str | os.PathLike | sa.URL):
            raise InvalidArgumentError(f"Catalog() takes a URL or a path, got {type(given).__name__}")
        try:
            self.url = to_url(given)
        except Exception as exc:
            raise CatalogError(f"cannot read catalog URL {redact(str(given))!r}: {type(exc).__name__}") from None
        self.location = redact(self.url)
        self.create = create
        self.sqlite = self.url.get_backend_name() == "sqlite"
        self.journal_mode: str | None = None
        self.engine = self._make_engine()
        _live.add(self)
        self.ready = False
        self.ready_lock = threading.Lock()
        self.writes = 0
        self.queued = 0  # recordings this process queued since its last flush
        self._statements: Statements | None = None

    def _make_engine(self) -> sa.Engine:
        if self.sqlite:
            database = self.url.database
            busy = BUSY_TIMEOUT_MS
            if database and database != ":memory:":
                refused = record_locks_refused(Path(database).parent)
                if refused is not None:  # SQLite would wait out its busy timeout, then say "locked"
                    point, kind = mount_of(database, read_mounts())
                    where = f"{point} ({kind})" if point else "its file system"
                    raise CatalogError(
                        f"catalog {self.location} is on {where}, which has no file locks "
                        f"({os.strerror(refused.errno or 0)}): SQLite cannot lock its database there. Use a "
                        "PostgreSQL catalog (postgresql://user@host/db; the place for a group's catalog), or keep "
                        "the SQLite file on a local disk (e.g. under $HOME or /tmp); see docs/reliability.md, "
                        "'On cluster file systems'"
                    )
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
            raise CatalogError(f"cannot open catalog {self.location}: {self.message(exc)}") from None

    def message(self, exc: BaseException) -> str:
        """The first line of the driver's error, with any password of the URL scrubbed."""
        orig = getattr(exc, "orig", None) or exc
        text = f"{type(orig).__name__}: {str(orig).strip().splitlines()[0] if str(orig).strip() else ''}"
        return scrub(text, self.url)

    def statements(self) -> Statements:
        """The queue's statements, compiled once for this database's dialect."""
        if self._statements is None:
            self._statements = Statements(self.engine.dialect)
        return self._statements

    def prepare(self, *, write: bool = True) -> None:
        """Create the tables on the first write (or at once with ``create``); check (and migrate)
        the schema version. A read of a catalog that does not exist raises :class:`CatalogNotFoundError`."""
        if self.ready:
            return
        with self.ready_lock:
            if self.ready:
                return
            if not (write or self.create):
                self._check_exists()
            self._make_directory()
            self.transact(lambda conn: S.ensure(conn, self.location), write=True, what="open")
            self.writes = 0  # statistics at the first *record*: not of a catalog just created empty
            self.ready = True

    def _sqlite_file(self) -> Path | None:
        database = self.url.database if self.sqlite else None
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database)

    def _make_directory(self) -> None:
        path = self._sqlite_file()
        if path is not None and not path.parent.exists():
            try:
                path.parent.mkdir(parents=True, mode=0o700)
            except OSError as exc:
                raise CatalogError(f"cannot create the catalog directory {path.parent}: {exc.strerror}") from None

    def _check_exists(self) -> None:
        """Raise :class:`CatalogNotFoundError` unless the database exists and holds the catalog's tables."""
        path = self._sqlite_file()
        if path is not None and not path.exists():
            raise CatalogNotFoundError(
                f"no catalog {path}{_close_names(path)}; a catalog is created by its first recording "
                "(a save with catalog=...) or by Catalog(path, create=True)"
            )
        if path is None and self.sqlite:
            return  # an in-memory database: created with the connection
        found = self.transact(lambda conn: sa.inspect(conn).has_table(S.schema.name), write=False, what="open")
        if not found:
            raise CatalogNotFoundError(
                f"{self.location} holds no storage_nodes catalog (no sn_schema table); a catalog is created by its "
                "first recording or by Catalog(url, create=True)"
            )

    def transact(self, work: Callable[[sa.Connection], T], *, write: bool, what: str, counts: bool = True) -> T:
        """``work(connection)`` in one transaction (a write transaction: ``write``); a busy
        database is retried; errors become CatalogError ("cannot {what} catalog ...")."""

        def attempt() -> T:
            with self.engine.connect() as conn:
                if write:
                    conn = conn.execution_options(sn_write=True)
                with conn.begin():
                    result = work(conn)
                if write and self.sqlite and counts:
                    self.writes += 1
                    if self.ready and self.writes % _ANALYZE_EVERY == 1:
                        self._analyze(conn)
                return result

        return self._retrying(attempt, what)

    def raw_write(self, work: Callable[[Any], T], *, what: str) -> T:
        """``work(dbapi_cursor)`` in one write transaction straight on the pooled DB-API connection,
        retried like :meth:`transact`: only for the one-row queue insert a save waits for, whose
        cost through a :class:`sqlalchemy.Connection` is mostly SQLAlchemy's connection,
        transaction and event machinery (measured: half; docs/catalog.md, "Write paths")."""

        def attempt() -> T:
            dbapi = self.engine.raw_connection()
            try:
                cur = dbapi.cursor()
                try:
                    if self.sqlite:
                        cur.execute("BEGIN IMMEDIATE")
                    result = work(cur)
                    cur.execute("COMMIT") if self.sqlite else dbapi.commit()
                    return result
                except BaseException:
                    dbapi.rollback()
                    raise
                finally:
                    cur.close()
            finally:
                dbapi.close()  # back to the pool

        return self._retrying(attempt, what)

    def _retrying(self, attempt: Callable[[], T], what: str) -> T:
        deadline = time.monotonic() + RETRY_SECONDS
        delay = 0.005
        while True:
            try:
                return attempt()
            except StorageError:
                raise
            except (sa.exc.SQLAlchemyError, self.engine.dialect.loaded_dbapi.Error) as raw:
                exc = raw
                if not isinstance(exc, sa.exc.SQLAlchemyError):  # from a DB-API cursor (Statements)
                    exc = sa.exc.DBAPIError.instance(None, None, exc, self.engine.dialect.loaded_dbapi.Error)
                if retryable(exc) and time.monotonic() < deadline:
                    log.debug("catalog %s busy (%s); retrying", self.location, type(exc).__name__)
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 0.5)
                    continue
                kind = CatalogReadOnlyError if no_write_access(exc) else CatalogError
                raise kind(f"cannot {what} catalog {self.location}: {self.message(exc)}") from None

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
