"""The :class:`Catalog`: record saves and runs, find them again, load what was found.

A catalog is an index beside the files, never instead of them: every row can be rebuilt
from the files with :meth:`Catalog.index`. This module is the facade: each method hands
its work to the module named for it: the database, its transactions and retries in
:mod:`~storage_nodes.catalog.engine`, recording in :mod:`~storage_nodes.catalog.recording`
and :mod:`~storage_nodes.catalog.queue`, :meth:`~Catalog.find`, :meth:`~Catalog.lookup`
and :meth:`~Catalog.stats` in :mod:`~storage_nodes.catalog.queries`, :meth:`~Catalog.prune`
and :meth:`~Catalog.index` in :mod:`~storage_nodes.catalog.maintenance`, the returned
records in :mod:`~storage_nodes.catalog.records`. :func:`open_catalog` shares one catalog
per location and process.
"""

from __future__ import annotations

import datetime
import functools
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._mounts import NETWORK_FILESYSTEMS, filesystem_type, network_filesystem
from ..errors import CatalogError, InvalidArgumentError
from . import explain as explaining
from . import lineage, maintenance, queries, queue, recording, removal, runs
from . import table as tables
from .engine import RETRY_SECONDS, Database
from .identity import Identify, call_digest, live_identity, node_name, preview, recorded_identity
from .records import Dropped, FileIdentity, Found, Hit, IndexReport, Removed, Summary, file_identity
from .rows import workflow_rows
from .url import default_location, to_url

__all__ = [
    "NETWORK_FILESYSTEMS",
    "RETRY_SECONDS",
    "Catalog",
    "Dropped",
    "FileIdentity",
    "Found",
    "Hit",
    "Identify",
    "IndexReport",
    "Removed",
    "Summary",
    "call_digest",
    "file_identity",
    "filesystem_type",
    "live_identity",
    "network_filesystem",
    "node_name",
    "open_catalog",
    "preview",
    "recorded_identity",
    "workflow_rows",
]

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("storage_nodes.catalog")
PathLike = str | os.PathLike[str]


class Catalog:
    """One queryable index of stored results, in SQLite (default) or PostgreSQL.

    ``url_or_path``: a SQLAlchemy URL (``postgresql://user@host/db``; any form SQLAlchemy
    takes) or a file path (an SQLite file, created on first use); ``None``:
    ``$STORAGE_NODES_CATALOG``, else ``catalog.sqlite`` in the user's data directory.

    >>> cat = Catalog("results.sqlite")  # doctest: +SKIP
    >>> sn.save_workflow(wf, "runs/relax.h5", catalog=cat)  # doctest: +SKIP
    >>> cat.find(node="storage_nodes.demo.relax", inputs={"steps": 40})[0].load("energies")  # doctest: +SKIP
    """

    def __init__(self, url_or_path: str | os.PathLike[str] | sa.URL | None = None, *, create: bool = False) -> None:
        self._db = Database(url_or_path, create=create)

    @property
    def url(self) -> sa.URL:
        """The database's SQLAlchemy URL (it may hold a password: print :attr:`location` instead)."""
        return self._db.url

    @property
    def location(self) -> str:
        """The database's location with the password hidden."""
        return self._db.location

    @property
    def journal_mode(self) -> str | None:
        """SQLite's journal mode: ``"wal"``, or ``"delete"`` on a network file system; ``None`` on PostgreSQL."""
        return self._db.journal_mode

    @property
    def _engine(self) -> sa.Engine:
        return self._db.engine

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
        if self._db.queued:
            try:
                self.flush()
            except CatalogError as exc:
                log.warning("catalog %s: queued recordings stay queued: %s", self.location, exc)
        self._db.engine.dispose()

    def __reduce__(self) -> tuple[Any, ...]:  # picklable to worker processes: by URL
        return (Catalog, (self.url,))

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
        file's identity and replaces the records at, above or below that key, under a lock
        that keeps two processes saving different keys of one file from marking each
        other's record stale (:func:`storage_nodes.catalog.recording.record_save`).
        """
        recording.record_save(self._db, path, obj=obj, key=key, metadata=metadata, backend=backend,
                              type_name=type_name, by=_by)  # fmt: skip

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
        recording.record_workflow(self._db, path, label=label, recipe=recipe, nodes=nodes, metadata=metadata,
                                  backend=backend, identify=identify, by=_by,
                                  reads=functools.partial(lineage.reads_of, self._db))  # fmt: skip

    def flush(self) -> int:
        """Move every queued recording into the tables now; return how many.

        Saves only queue their recording (one row); every query, :meth:`index`,
        :meth:`close` and the exit of a process that saved do this first, so a query
        never misses a save. Call it to make the tables complete for readers that use
        ``sqlite3``/``psql`` directly while this process keeps running.

        >>> cat.flush()  # doctest: +SKIP
        3
        """
        return queue.flush(self._db)

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
        explain: bool = False,
    ) -> list[Hit]:
        """Entries matching every given filter, newest first.

        ``node``: a function or ``"module.qualname"`` (runs' nodes only); ``inputs``: ports
        that must hold these values (by value: other ports free; a number matches the same
        number as int or float, ``600`` finds ``600.0``, a bool only a bool); ``metadata``:
        user metadata entries of the file (values as inputs); ``user``/``host``: who
        recorded; ``since``/``until``: UTC dates or times; ``workflow``: the run's label;
        ``kind``: ``"node"``, ``"save"`` (plain saves), ``"run"`` (a hit per saved workflow
        as a whole and per plain save: the rows of :meth:`table`), or ``None`` (nodes and
        saves). Stale hits are included with ``stale=True``. ``explain=True`` returns a
        :class:`Found` list whose ``near`` says, when nothing matched, what came close.

        >>> cat.find(node="storage_nodes.demo.relax", inputs={"steps": 40}, user="alice")  # doctest: +SKIP
        >>> cat.find(node="md_run", explain=True).near  # doctest: +SKIP
        ["no node 'md_run'; recorded: __main__.md_run"]
        """
        filters = dict(node=node, inputs=inputs, metadata=metadata, user=user, host=host, since=since, until=until,
                       workflow=workflow)  # fmt: skip
        explaining.check_node(self._db, node)
        if kind == "run":
            found = runs.find_runs(self._db, filters, _limit(limit))
        else:
            found = queries.find(self._db, kind=kind, limit=limit, **filters)
        if not explain:
            return found
        return Found(found, explaining.near_misses(self._db, filters) if not found else [])

    def table(
        self,
        node: Any = None,
        inputs: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        kind: str = "run",
        columns: Sequence[str] | None = None,
        user: str | None = None,
        host: str | None = None,
        since: str | datetime.date | None = None,
        until: str | datetime.date | None = None,
        workflow: str | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """The catalog as a job table: a :class:`pandas.DataFrame`, one row per entry of ``kind``, newest first.

        ``kind``: ``"run"`` (default: each saved workflow as a whole and each plain save),
        ``"node"`` (each node of every run) or ``"save"``. The filters are :meth:`find`'s.
        Columns: ``id`` (for :meth:`get` and :meth:`remove`), ``kind``, ``workflow``, ``node``,
        ``label``, ``in.<port>`` per input port (a run's: its free inputs, ``<node>__<port>``;
        arrays and objects shown by type and shape), ``outputs``, ``user``, ``host``,
        ``created_at`` (UTC, timezone-aware), ``path``, ``key``, ``size``, ``stale`` (the file
        is gone or its size or mtime changed) and ``meta.<key>`` per metadata key; ``columns``
        selects and orders them. pandas is imported when a table is built.

        >>> cat.table(workflow="eos", columns=["id", "in.relax__T", "created_at"])  # doctest: +SKIP
              id  in.relax__T                       created_at
        0  r12        600.0 2026-12-07 03:12:44.123456+00:00
        """
        filters = dict(node=node, inputs=inputs, metadata=metadata, user=user, host=host, since=since, until=until,
                       workflow=workflow)  # fmt: skip
        explaining.check_node(self._db, node)
        return tables.table(self._db, kind=kind, columns=columns, limit=limit, filters=filters)

    def get(self, id: str | Hit) -> Hit:
        """The entry with this id (:attr:`Hit.id`, the ``id`` column of :meth:`table`): ``"r12"`` a run,
        ``"n345"`` a node, ``"s345"`` a plain save. None raises :class:`KeyNotFoundError`.

        >>> run = cat.get("r12"); run.nodes[0].inputs, run.load_workflow()  # doctest: +SKIP
        """
        return runs.get(self._db, id)

    def lookup(self, node: Any, /, **inputs: Any) -> dict[str, Any]:
        """The outputs of exactly this call (``node`` with these inputs) if anyone recorded it.

        With a function, its defaults fill the inputs not given (as a run does); with a
        ``"module.qualname"`` string every input must be given. The node's identity is its
        name, its package version and the digest of its source now, so a recorded call of
        an edited function does not match. The newest fresh entry is loaded; none raises
        :class:`KeyNotFoundError`.

        >>> cat.lookup(relax, positions=x, steps=40)["energies"]  # doctest: +SKIP
        """
        return queries.lookup(self._db, node, **inputs)

    def stats(self) -> dict[str, Any]:
        """Per node function: records, distinct inputs (call digests), users; per user: files, records, last save.

        >>> cat.stats()["nodes"][0]  # doctest: +SKIP
        {'node': 'storage_nodes.demo.relax', 'records': 12, 'distinct_inputs': 3, 'users': ['alice', 'bob'], ...}
        """
        return queries.stats(self._db)

    # ------------------------------------------------------------------ maintenance

    def remove(self, id_or_hit: str | Hit | Sequence[str | Hit], *, files: bool = False) -> Removed:
        """Drop entries (an id, a :class:`Hit`, or a list of them) from the catalog; return what was done.

        A run goes with all its node records, a plain save with its record (and its file's row
        when it was the file's last), a node alone. ``files=True`` also deletes each file no
        remaining entry points at; a file another entry still uses is kept, and the report's
        ``kept`` says so. All or nothing: an unknown id or a failure midway leaves every row
        and file as it was. Nothing else changes.

        >>> cat.remove("r12", files=True)  # doctest: +SKIP
        Removed(ids=['r12'], records=3, deleted=['/home/alice/runs/relax.h5'], kept=[])
        """
        many = id_or_hit if isinstance(id_or_hit, list | tuple) else [id_or_hit]
        return removal.remove(self._db, many, files=files)

    def prune(self, *, dry_run: bool = False) -> list[Dropped]:
        """Drop the entries whose files are gone or were rewritten since recorded; return what was dropped.

        ``dry_run=True`` only reports. A rewritten file is recorded again by :meth:`index`.
        """
        return maintenance.prune(self._db, dry_run=dry_run)

    def index(self, directory: PathLike, *, safe: bool = True, recursive: bool = True) -> IndexReport:
        """Record every storage_nodes file under ``directory`` that the catalog lacks or has outdated.

        Idempotent: a file recorded with its current identity is left alone. Workflow files
        (``save_workflow``) get a record per node, other files one plain-save record.
        ``safe=True`` (default) never runs code from a file: pickle/cloudpickle files are
        recorded from their header (a pickled workflow's nodes only with ``safe=False``),
        h5 values that need code count as undigested.
        """
        return maintenance.index(self._db, directory, safe=safe, recursive=recursive)


def _limit(limit: int | None) -> int | None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise InvalidArgumentError(f"limit must be a whole number >= 0, got {limit!r}")
    return limit


_catalogs: dict[tuple[int, str], Catalog] = {}
_catalogs_lock = threading.Lock()


def _after_fork() -> None:
    global _catalogs_lock
    _catalogs_lock = threading.Lock()  # another thread of the parent may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def open_catalog(url_or_path: str | os.PathLike[str] | None = None) -> Catalog:
    """A :class:`Catalog` for ``url_or_path``, shared per process (the upper layers' string catalogs)."""
    text = os.fspath(url_or_path) if url_or_path is not None else default_location()
    key = (os.getpid(), to_url(text).render_as_string(hide_password=False))
    with _catalogs_lock:
        cat = _catalogs.get(key)
        if cat is None:
            cat = _catalogs[key] = Catalog(text)
        return cat
