"""The catalog's tables (SQLAlchemy Core), its schema version and the migration path.

Eight tables, all prefixed ``sn_`` so a catalog can share a PostgreSQL database with other
applications (docs/catalog.md describes every column for readers using ``sqlite3``/``psql``):

- ``sn_schema``   one row: the schema version, the digest version, who created the catalog;
- ``sn_files``    one row per recorded file: absolute resolved path, identity (size,
  mtime_ns, a sampled content digest), backend, kind (``save``/``workflow``), workflow label,
  user metadata (JSON text), who (user, host) and when (UTC);
- ``sn_records``  what is stored in a file: one row per plain save (``node`` NULL) or per
  node of a saved run (module, qualname, package version, source digest, call digest,
  output ports), with the key inside the file;
- ``sn_inputs``   one row per input port of a node record: port, value digest (NULL when
  the value cannot be digested), a short JSON preview;
- ``sn_metadata`` one row per user-metadata entry of a file: name, value digest, JSON value;
- ``sn_edges``    the run's edges: which record's output port fed which record's input port;
- ``sn_reads``    what a run read of other stored results: one row per ``LoadNode`` (the file
  and key it loaded) and per ``FindNode`` (the file and key of the hit it loaded), the
  lineage *across* runs (``Hit.fed_by`` / ``Hit.fed``; schema version 3);
- ``sn_queue``    recordings not yet spread over the tables above: one row per save (its path
  and, as JSON text, every row it will become). A save writes only this row; the next
  query, ``close()`` or the saving process's exit moves queued rows into the tables, in
  order, one transaction per batch (schema version 2).

Rows of a file are deleted with it (``ON DELETE CASCADE``; the catalog also deletes
explicitly, since SQLite enforces foreign keys only when asked).

Migration path: :data:`SCHEMA_VERSION` is stored in ``sn_schema``. Opening a catalog with
an older version runs :data:`MIGRATIONS` ``[v]`` (v -> v+1) in order inside one
transaction; a catalog newer than this code is refused with a :class:`CatalogError`. A
change of the digest rules (:data:`~storage_nodes.catalog.digest.DIGEST_VERSION`) cannot
be migrated in SQL: such a catalog is rebuilt from the files with ``index``.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from .._version import __version__
from ..errors import CatalogError
from .digest import DIGEST_VERSION
from .rows import host, now, user

__all__ = [
    "MIGRATIONS", "SCHEMA_VERSION", "edges", "ensure", "files", "inputs", "metadata", "meta_table", "queue", "reads",
    "records", "schema",
]  # fmt: skip

SCHEMA_VERSION = 3

meta_table = sa.MetaData()

schema = sa.Table(
    "sn_schema",
    meta_table,
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("digest_version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("storage_nodes", sa.String(64), nullable=False),
)

files = sa.Table(
    "sn_files",
    meta_table,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("content", sa.String(64), nullable=False),
    sa.Column("backend", sa.String(64), nullable=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("workflow", sa.Text, nullable=True),
    sa.Column("metadata", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("host", sa.String(256), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("recorded_by", sa.String(16), nullable=False),
    sa.UniqueConstraint("path", name="sn_files_path_key"),
)
sa.Index("sn_files_created_by", files.c.created_by, files.c.created_at)
sa.Index("sn_files_created_at", files.c.created_at)

records = sa.Table(
    "sn_records",
    meta_table,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("file_id", sa.Integer, sa.ForeignKey("sn_files.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("label", sa.Text, nullable=True),
    sa.Column("node", sa.Text, nullable=True),
    sa.Column("module", sa.Text, nullable=True),
    sa.Column("qualname", sa.Text, nullable=True),
    sa.Column("version", sa.String(128), nullable=True),
    sa.Column("source", sa.String(64), nullable=True),
    sa.Column("call", sa.String(64), nullable=True),
    sa.Column("outputs", sa.Text, nullable=False),
    sa.Column("undigested", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=True),
)
sa.Index("sn_records_node", records.c.node, records.c.id)
sa.Index("sn_records_call", records.c.call)
sa.Index("sn_records_file", records.c.file_id)

inputs = sa.Table(
    "sn_inputs",
    meta_table,
    sa.Column("record_id", sa.Integer, sa.ForeignKey("sn_records.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("port", sa.Text, primary_key=True),
    sa.Column("digest", sa.String(64), nullable=True),
    sa.Column("preview", sa.Text, nullable=True),
)
sa.Index("sn_inputs_port_digest", inputs.c.port, inputs.c.digest, inputs.c.record_id)

metadata = sa.Table(
    "sn_metadata",
    meta_table,
    sa.Column("file_id", sa.Integer, sa.ForeignKey("sn_files.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("digest", sa.String(64), nullable=True),
    sa.Column("value", sa.Text, nullable=False),
)
sa.Index("sn_metadata_name_digest", metadata.c.name, metadata.c.digest, metadata.c.file_id)

edges = sa.Table(
    "sn_edges",
    meta_table,
    sa.Column("file_id", sa.Integer, sa.ForeignKey("sn_files.id", ondelete="CASCADE"), nullable=False),
    sa.Column("source_id", sa.Integer, sa.ForeignKey("sn_records.id", ondelete="CASCADE"), nullable=False),
    sa.Column("source_port", sa.Text, nullable=False),
    sa.Column("target_id", sa.Integer, sa.ForeignKey("sn_records.id", ondelete="CASCADE"), nullable=False),
    sa.Column("target_port", sa.Text, nullable=False),
)
sa.Index("sn_edges_target", edges.c.target_id)
sa.Index("sn_edges_source", edges.c.source_id)  # deleting a record checks the edges that name it
sa.Index("sn_edges_file", edges.c.file_id)

reads = sa.Table(
    "sn_reads",
    meta_table,
    sa.Column("file_id", sa.Integer, sa.ForeignKey("sn_files.id", ondelete="CASCADE"), nullable=False),
    sa.Column("record_id", sa.Integer, sa.ForeignKey("sn_records.id", ondelete="CASCADE"), nullable=False),
    sa.Column("path", sa.Text, nullable=False),  # absolute, resolved as sn_files.path is
    sa.Column("key", sa.Text, nullable=True),  # NULL: the whole file
)
sa.Index("sn_reads_path", reads.c.path)
sa.Index("sn_reads_file", reads.c.file_id)
sa.Index("sn_reads_record", reads.c.record_id)  # deleting a record checks the reads that name it

queue = sa.Table(
    "sn_queue",
    meta_table,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
)


def _add_queue(conn: sa.Connection) -> None:
    """Version 1 -> 2: the recording queue (a new, empty table; nothing else changes)."""
    queue.create(conn)


def _add_reads(conn: sa.Connection) -> None:
    """Version 2 -> 3: the reads of other stored results (a new, empty table: runs recorded
    before have no lineage across runs until they are recorded again, e.g. by ``index``)."""
    reads.create(conn)


#: ``MIGRATIONS[v](connection)`` turns a version-``v`` catalog into version ``v + 1``
MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {1: _add_queue, 2: _add_reads}

#: the tables in the order rows must be deleted (children first)
CHILDREN_FIRST = (reads, edges, inputs, metadata, records, files)


def ensure(conn: sa.Connection, location: str) -> None:
    """Inside a write transaction: create the tables of a new catalog (``location`` names it in
    errors), or check the version of an existing one and run its :data:`MIGRATIONS`."""
    if conn.dialect.name != "sqlite":  # one creator at a time across processes
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(7243311)"))
    if not sa.inspect(conn).has_table(schema.name):
        meta_table.create_all(conn)
        conn.execute(
            schema.insert().values(
                version=SCHEMA_VERSION,
                digest_version=DIGEST_VERSION,
                created_at=now(),
                created_by=f"{user()}@{host()}",
                storage_nodes=__version__,
            )
        )
        return
    row = conn.execute(sa.select(schema.c.version, schema.c.digest_version)).first()
    if row is None:
        raise CatalogError(f"catalog {location} has an empty sn_schema table; it is damaged")
    version, digest_version = int(row[0]), int(row[1])
    if version > SCHEMA_VERSION:
        raise CatalogError(
            f"catalog {location} has schema version {version}, newer than this storage_nodes "
            f"reads ({SCHEMA_VERSION}); upgrade storage_nodes"
        )
    while version < SCHEMA_VERSION:
        migrate = MIGRATIONS.get(version)
        if migrate is None:
            raise CatalogError(f"catalog {location}: no migration from schema version {version}")
        migrate(conn)
        version += 1
        conn.execute(schema.update().values(version=version))
    if digest_version != DIGEST_VERSION:
        raise CatalogError(
            f"catalog {location} holds digests of version {digest_version}, this storage_nodes makes "
            f"version {DIGEST_VERSION}: rebuild it from the files (a new catalog, then `catalog index DIR`)"
        )
