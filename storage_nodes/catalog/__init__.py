"""The catalog: one queryable index of every stored result, in SQLite or PostgreSQL.

A database beside the files, never instead of them: saves (``sn.save(..., catalog=cat)``)
and runs (``sn.save_workflow(..., catalog=cat)``) are recorded after their file is
written, and :meth:`Catalog.index` rebuilds the records from the files. Open
:mod:`storage_nodes.catalog.catalog` first (the :class:`Catalog` facade; each method says
which module does its work). One idea a module:

- :mod:`~.records`     what queries return: ``Hit`` (and entry ids), ``Found``, ``Summary``, ``Dropped``,
  ``Removed``, ``IndexReport``, ``FileIdentity``;
- :mod:`~.explain`     what came close when a query found nothing;
- :mod:`~.identity`    node names, node identity, call digests, input previews;
- :mod:`~.digest`      the canonical value digests that make the keys;
- :mod:`~.rows`        a stored run turned into rows, and their queued (JSON) form;
- :mod:`~.schema`      the tables, the schema version, creation and migration;
- :mod:`~.engine`      the database: engine, pragmas, transactions, retry, error classes;
- :mod:`~.statements`  the queue's statements compiled for the raw DB-API cursor;
- :mod:`~.queue`       the write queue: enqueue, drain, apply, flush, the flush at exit;
- :mod:`~.recording`   recording a save or a run (and a keyed save in place);
- :mod:`~.queries`     ``find``, ``lookup``, ``stats`` and building hits;
- :mod:`~.runs`        runs as entries: ``find(kind="run")``, ``get`` by id, a run's nodes;
- :mod:`~.table`       ``table``: the catalog as a pandas job table;
- :mod:`~.removal`     ``remove``: entries by id, their files with ``files=True``, all or nothing;
- :mod:`~.maintenance` ``prune`` and ``index``;
- :mod:`~.url`         locations and password redaction;
- :mod:`~.cli`         the ``storage-nodes catalog`` commands.

docs/catalog.md describes the tables for readers with ``sqlite3``/``psql`` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# SQLAlchemy is imported on first use, not by ``storage-nodes --help`` or ``import storage_nodes``
# (module names relative to this package)
_LAZY = {
    "Catalog": ".catalog",
    "Dropped": ".records",
    "Hit": ".records",
    "IndexReport": ".records",
    "Removed": ".records",
    "Summary": ".records",
    "open_catalog": ".catalog",
    "filesystem_type": ".._mounts",
    "network_filesystem": ".._mounts",
    "SCHEMA_VERSION": ".schema",
    "default_location": ".url",
    "redact": ".url",
}

if TYPE_CHECKING:
    from .._mounts import filesystem_type, network_filesystem
    from .catalog import Catalog, open_catalog
    from .records import Dropped, Hit, IndexReport, Removed, Summary
    from .schema import SCHEMA_VERSION
    from .url import default_location, redact


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'storage_nodes.catalog' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "SCHEMA_VERSION",
    "Catalog",
    "Dropped",
    "Hit",
    "IndexReport",
    "Removed",
    "Summary",
    "default_location",
    "filesystem_type",
    "network_filesystem",
    "open_catalog",
    "redact",
]
