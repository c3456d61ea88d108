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

from typing import TYPE_CHECKING, Any

# SQLAlchemy is imported on first use, not by ``storage-nodes --help`` or ``import storage_nodes``
_LAZY = {
    "Catalog": "catalog",
    "Dropped": "catalog",
    "Hit": "catalog",
    "IndexReport": "catalog",
    "Summary": "catalog",
    "open_catalog": "catalog",
    "filesystem_type": "catalog",
    "network_filesystem": "catalog",
    "SCHEMA_VERSION": "schema",
    "default_location": "url",
    "redact": "url",
}

if TYPE_CHECKING:
    from .catalog import Catalog, Dropped, Hit, IndexReport, Summary, filesystem_type, network_filesystem, open_catalog
    from .schema import SCHEMA_VERSION
    from .url import default_location, redact


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'storage_nodes.catalog' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "SCHEMA_VERSION",
    "Catalog",
    "Dropped",
    "Hit",
    "IndexReport",
    "Summary",
    "default_location",
    "filesystem_type",
    "network_filesystem",
    "open_catalog",
    "redact",
]
