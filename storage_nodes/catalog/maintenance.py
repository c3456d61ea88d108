"""Keeping the catalog true to the files: :func:`prune` drops entries whose files are gone or
were rewritten, :func:`index` records every storage_nodes file under a directory that the
catalog lacks or has outdated (idempotent)."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from .. import api, registry
from ..atomic import LOCK_SUFFIX, TEMP_PREFIX
from ..errors import BackendNotFoundError, CatalogError, InvalidArgumentError, StorageError, UnsafeLoadError
from ..keys import join
from . import schema as S
from .engine import Database, chunks
from .identity import recorded_identity
from .queue import flush, run
from .recording import record_save, record_workflow
from .records import Dropped, FileIdentity, IndexReport, file_identity

__all__ = ["index", "prune"]

PathLike = str | os.PathLike[str]


def prune(db: Database, *, dry_run: bool = False) -> list[Dropped]:
    """Drop entries whose files are gone or rewritten: :meth:`Catalog.prune <storage_nodes.catalog.Catalog.prune>`."""

    def scan(conn: sa.Connection) -> list[tuple[int, str, FileIdentity, int]]:
        counts = sa.select(S.records.c.file_id, sa.func.count().label("n")).group_by(S.records.c.file_id).subquery()
        q = sa.select(S.files.c.id, S.files.c.path, S.files.c.size, S.files.c.mtime_ns, S.files.c.content, counts.c.n)
        q = q.join(counts, counts.c.file_id == S.files.c.id, isouter=True)
        return [(int(i), p, FileIdentity(int(s), int(m), c), int(n or 0)) for i, p, s, m, c, n in conn.execute(q)]

    dropped: list[Dropped] = []
    doomed: list[tuple[int, FileIdentity]] = []
    for fid, path, ident, n in run(db, scan, write=False, what="read"):
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
            _delete_files(conn, ids)

        run(db, work, write=True, what="prune")
    return dropped


def index(db: Database, directory: PathLike, *, safe: bool = True, recursive: bool = True) -> IndexReport:
    """Record the files under ``directory``: :meth:`Catalog.index <storage_nodes.catalog.Catalog.index>`."""
    db.prepare(write=True)  # indexing records: it creates a catalog that does not exist yet
    root = Path(directory).expanduser().resolve()
    if not root.is_dir():
        raise InvalidArgumentError(f"index() takes a directory; {root} is not one", path=root)
    report = IndexReport()
    known = run(
        db,
        lambda conn: {
            p: FileIdentity(int(s), int(m), c)
            for p, s, m, c in conn.execute(
                sa.select(S.files.c.path, S.files.c.size, S.files.c.mtime_ns, S.files.c.content)
            )
        },
        write=False,
        what="read",
    )
    own = {str(Path(db.url.database or "").resolve())} if db.sqlite and db.url.database else set()
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
            _index_file(db, p, safe=safe)
        except CatalogError:
            raise
        except BackendNotFoundError as exc:  # another tool's file: counted, not a complaint each
            if p.suffix.lower() in _our_suffixes():  # ours by name but not by content: say why
                report.skipped.append((str(p), str(exc)))
            else:
                report.foreign.append(str(p))
            continue
        except StorageError as exc:
            report.skipped.append((str(p), str(exc)))
            continue
        report.recorded.append(str(p))
    flush(db)
    return report


@functools.cache
def _our_suffixes() -> frozenset[str]:
    """The file suffixes the registered backends save under (``.h5``, ``.pkl``, ``.json``, ...)."""
    return frozenset(s for name in registry.names() for s in registry.suffixes(name))


def _index_file(db: Database, p: Path, *, safe: bool) -> None:
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
        record_workflow(db, p, label=label, recipe=recipe, nodes=nodes, metadata=listing.metadata,
                        backend=backend, identify=recorded_identity(env), by="index")  # fmt: skip
        return
    record_save(db, p, metadata=listing.metadata, backend=backend, type_name=getattr(listing.root, "type", None),
                by="index")  # fmt: skip


def _delete_files(conn: sa.Connection, file_ids: Sequence[int]) -> None:
    """Delete files and, by ``ON DELETE CASCADE``, their records, inputs, metadata and edges.

    SQLite enforces the cascade because every catalog connection turns
    ``PRAGMA foreign_keys`` on; one statement instead of five.
    """
    for chunk in chunks(file_ids):
        conn.execute(S.files.delete().where(S.files.c.id.in_(chunk)))


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
