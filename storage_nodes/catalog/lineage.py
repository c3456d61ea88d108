"""Lineage across runs: what a run read of other stored results (``sn_reads``).

A run's ``LoadNode`` read a file (and a key in it): its recorded ``path`` input, made
absolute against the directory the run was saved from, as ``sn_files.path`` is. A run's
``FindNode`` read the newest fresh hit of its query in this catalog: the query is asked
again when the run is recorded (right after it ran), so it names the file it loaded; a
``FindNode`` of another catalog is not followed. :attr:`Hit.fed_by
<storage_nodes.catalog.Hit.fed_by>` and :attr:`Hit.fed <storage_nodes.catalog.Hit.fed>`
(in :mod:`.queries`) join these rows with the files recorded at those paths, whenever
either side was recorded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..errors import StorageError
from . import queries
from .engine import Database
from .rows import NodeRow
from .url import default_location, to_url

__all__ = ["reads_of"]

#: (index of the reading node's row, absolute path read, key read or None for the whole file)
Read = tuple[int, str, "str | None"]


def reads_of(db: Database, rows: Sequence[NodeRow], base: Path | None = None) -> list[Read]:
    """The results the nodes of ``rows`` read: one entry per ``LoadNode`` and per ``FindNode``
    whose query finds a fresh hit now; relative paths are taken from ``base`` (the current directory)."""
    out: list[Read] = []
    for i, row in enumerate(rows):
        if row.reads is None:
            continue
        read = _loaded(row.reads, base) if row.node == "storage_nodes.nodes.LoadNode" else _found(db, row.reads)
        if read is not None:
            out.append((i, *read))
    return out


def _loaded(ports: dict[str, Any], base: Path | None) -> tuple[str, str | None] | None:
    path, key = ports.get("path"), ports.get("key")
    if not isinstance(path, str | os.PathLike) or not str(path):
        return None
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = (base or Path.cwd()) / p
    return str(p.resolve()), key if isinstance(key, str) and key.strip("/") else None


def _found(db: Database, ports: dict[str, Any]) -> tuple[str, str | None] | None:
    where = ports.get("catalog")
    try:
        asked = to_url(default_location() if where is None else where)
    except (StorageError, ValueError, TypeError, sa.exc.ArgumentError):
        return None
    if asked.render_as_string(hide_password=False) != db.url.render_as_string(hide_password=False):
        return None  # a FindNode of another catalog
    node, inputs, metadata = ports.get("node"), ports.get("input_values"), ports.get("metadata")
    try:
        hits = queries.find(db, node=node, inputs=inputs or None, metadata=metadata or None,
                            kind=None if node else "save")  # fmt: skip
    except StorageError:
        return None
    fresh = next((h for h in hits if not h.stale), None)
    return None if fresh is None else (str(fresh.path), fresh.key or None)
