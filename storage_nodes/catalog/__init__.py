"""The catalog: one queryable index of every stored result, in SQLite or PostgreSQL.

A database beside the files, never instead of them: saves (``sn.save(..., catalog=cat)``)
and runs (``sn.save_workflow(..., catalog=cat)``) are recorded after their file is
written, and :meth:`Catalog.index` rebuilds the records from the files. Open
:mod:`storage_nodes.catalog.catalog` first (the :class:`Catalog` and its :class:`Hit`);
:mod:`~storage_nodes.catalog.schema` holds the tables and the migration path,
:mod:`~storage_nodes.catalog.digest` the canonical value digests that make the keys,
:mod:`~storage_nodes.catalog.url` the locations and password redaction,
:mod:`~storage_nodes.catalog.cli` the ``storage-nodes catalog`` commands. docs/catalog.md
describes the tables for readers with ``sqlite3``/``psql`` only.
"""

from __future__ import annotations

from .catalog import Catalog, Dropped, Hit, IndexReport, Summary, open_catalog
from .digest import digest
from .schema import SCHEMA_VERSION
from .url import default_location, redact

__all__ = [
    "SCHEMA_VERSION",
    "Catalog",
    "Dropped",
    "Hit",
    "IndexReport",
    "Summary",
    "default_location",
    "digest",
    "open_catalog",
    "redact",
]
