"""Queries: :func:`find` (filters by node, input values, metadata, who, when), :func:`lookup`
(one call by its digest), :func:`stats`, and the :class:`Hit` objects they return.

Every query is parameterised SQLAlchemy Core and runs after the queued recordings
(:func:`~storage_nodes.catalog.queue.run`), so it never misses a save.
"""

from __future__ import annotations

import datetime
import functools
import inspect as pyinspect
import json
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..errors import InvalidArgumentError, KeyNotFoundError, StaleEntryError
from ..keys import split
from ..provenance.metadata import validate_metadata
from . import schema as S
from .digest import digest
from .engine import Database, chunks
from .identity import call_digest, from_preview, live_identity, node_name
from .queue import run
from .records import FileIdentity, Hit, file_identity

__all__ = [
    "across",
    "apply_filters",
    "file_conditions",
    "find",
    "hits",
    "lookup",
    "record_conditions",
    "stats",
    "upstream_of",
    "value_digests",
]


def find(
    db: Database,
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
    """Entries matching every given filter, newest first: :meth:`Catalog.find <storage_nodes.catalog.Catalog.find>`."""
    # files as the outer table, ordered by (created_at, id) as sn_files_created_at holds them: SQLite
    # walks that index backwards instead of sorting the whole join (docs/catalog.md, "The job table")
    q = sa.select(S.records, S.files).select_from(S.files).join(S.records, S.records.c.file_id == S.files.c.id)
    q = apply_filters(q, node=node, inputs=inputs, metadata=metadata, user=user, host=host, since=since, until=until,
                 workflow=workflow, kind=kind)  # fmt: skip
    q = q.order_by(S.files.c.created_at.desc(), S.files.c.id.desc(), S.records.c.id.desc())
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise InvalidArgumentError(f"limit must be a whole number >= 0, got {limit!r}")
        q = q.limit(limit)
    return run(db, lambda conn: hits(db, conn, conn.execute(q).mappings().all()), write=False, what="read")


def apply_filters(
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
    if kind is not None:
        if kind not in ("save", "node"):
            raise InvalidArgumentError(f"kind must be 'run', 'save' or 'node', got {kind!r}")
        q = q.where(
            (S.records.c.node.is_(None) & (S.files.c.kind == "save"))
            if kind == "save"
            else S.records.c.node.is_not(None)
        )
    for cond in record_conditions(node, inputs) + file_conditions(
        metadata=metadata, user=user, host=host, since=since, until=until, workflow=workflow
    ):
        q = q.where(cond)
    return q


def _has_nul(*texts: Any) -> bool:
    """Whether a name holds NUL: no stored name does (PostgreSQL text cannot), so nothing matches."""
    return any("\x00" in str(t) for t in texts if t is not None)


def record_conditions(node: Any, inputs: Mapping[str, Any] | None) -> list[Any]:
    """The WHERE conditions on ``sn_records`` of ``node=`` and ``inputs=`` (numbers by value)."""
    conds: list[Any] = []
    given = _mapping(inputs, "inputs")
    if _has_nul(node_name(node) if node is not None else None, *given):
        return [sa.false()]
    if node is not None:
        conds.append(S.records.c.node == node_name(node))
    for port, value in given.items():
        ds = value_digests(value)
        if not ds:
            raise InvalidArgumentError(
                f"inputs[{port!r}]: this {type(value).__name__} cannot be digested, so no entry can match it"
            )
        # the (port, digest, record_id) index yields the matching records directly
        matching = sa.select(S.inputs.c.record_id).where(S.inputs.c.port == str(port), S.inputs.c.digest.in_(ds))
        conds.append(S.records.c.id.in_(matching))
    return conds


def file_conditions(
    *, metadata: Mapping[str, Any] | None, user: str | None, host: str | None, since: Any, until: Any,
    workflow: str | None,
) -> list[Any]:  # fmt: skip
    """The WHERE conditions on ``sn_files`` of the other filters of :func:`find`."""
    meta = _mapping(metadata, "metadata")
    if _has_nul(user, host, workflow, *meta):
        return [sa.false()]
    conds: list[Any] = []
    if metadata is not None:
        for name, value in validate_metadata(meta).items():
            files = sa.select(S.metadata.c.file_id).where(
                S.metadata.c.name == name, S.metadata.c.digest.in_(value_digests(value))
            )
            conds.append(S.files.c.id.in_(files))
    if user is not None:
        conds.append(S.files.c.created_by == str(user))
    if host is not None:
        conds.append(S.files.c.host == str(host))
    start, end = _utc(since, "since"), _utc(until, "until")
    if start is not None:
        conds.append(S.files.c.created_at >= start)
    if end is not None:
        conds.append(S.files.c.created_at < end)
    if workflow is not None:
        conds.append(S.files.c.workflow == str(workflow))
    return conds


def value_digests(value: Any) -> list[str]:
    """The digests a query value matches: its own, and for a number the same number as the
    other of int and float (``600`` matches ``600.0``; ``True`` is not a number here)."""
    found = [digest(value)]
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and type(value).__name__ != "bool_":
        try:
            as_float = float(value)
            found.append(digest(as_float))
            if as_float.is_integer():
                found.append(digest(int(as_float)))
        except (OverflowError, ValueError):
            pass
    return sorted({d for d in found if d is not None})


def hits(db: Database, conn: sa.Connection, rows: Sequence[Any]) -> list[Hit]:
    """The :class:`Hit` of each row of ``sn_records`` joined with ``sn_files``, their inputs' previews
    read in one query per chunk, each file checked once for staleness."""
    record_ids = [int(r["id"]) for r in rows]
    ins: dict[int, dict[str, Any]] = {}
    for chunk in chunks(record_ids):
        for rid, port, pv in conn.execute(
            sa.select(S.inputs.c.record_id, S.inputs.c.port, S.inputs.c.preview).where(S.inputs.c.record_id.in_(chunk))
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
                call=r["call"], record_id=int(r["id"]), file_id=fid,
                kind="save" if r["node"] is None and r["kind"] == "save" else "node",
                _lineage=functools.partial(upstream_of, db), _identity=ident, _across=functools.partial(across, db),
            )
        )  # fmt: skip
    return hits


def upstream_of(db: Database, hit: Hit) -> list[Hit]:
    """The hits of the records whose outputs fed ``hit`` in its run (``sn_edges``)."""

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
        return hits(db, conn, conn.execute(q).mappings().all())

    return run(db, work, write=False, what="read")


def across(db: Database, hit: Hit, direction: str) -> list[Hit]:
    """Lineage across runs (``sn_reads``, written by :mod:`.lineage`): ``"fed_by"``, the records
    that ``hit``'s run read; ``"fed"``, the reading records of other runs that read ``hit``."""
    rd, f, rec = S.reads.c, S.files.c, S.records.c

    def work(conn: sa.Connection) -> list[Hit]:
        if direction == "fed_by":
            file_id = sa.select(rec.file_id).where(rec.id == hit.record_id).scalar_subquery()
            wanted = conn.execute(sa.select(rd.path, rd.key).where(rd.file_id == file_id)).all()
            ids: list[int] = []
            for path, key in wanted:
                held = conn.execute(
                    sa.select(rec.id, rec.key).join(S.files, f.id == rec.file_id).where(f.path == path).order_by(rec.id)
                ).all()
                chosen = _holder(held, key)
                if chosen is not None and chosen not in ids:
                    ids.append(chosen)
        else:
            mine = conn.execute(
                sa.select(f.path, f.id).join(S.records, rec.file_id == f.id).where(rec.id == hit.record_id)
            ).first()
            if mine is None:
                return []
            rows = conn.execute(
                sa.select(rd.record_id, rd.key).where(rd.path == mine[0], rd.file_id != mine[1]).order_by(rd.record_id)
            ).all()
            ids = list(dict.fromkeys(int(i) for i, key in rows if _within(key, hit.key)))
        if not ids:
            return []
        q = sa.select(S.records, S.files).join(S.files, f.id == rec.file_id).where(rec.id.in_(ids)).order_by(rec.id)
        return hits(db, conn, conn.execute(q).mappings().all())

    return run(db, work, write=False, what="read")


def _holder(held: Sequence[Any], key: str | None) -> int | None:
    """The record (of ``(id, key)`` rows of one file) holding ``key``: the one whose key is the
    longest prefix of it; the file's first record for the whole file or when none is."""
    if not held:
        return None
    if key:
        wanted = split(key)
        best = max(
            ((len(split(k)), int(i)) for i, k in held if split(k) == wanted[: len(split(k))]),
            default=None,
        )
        if best is not None:
            return best[1]
    return int(held[0][0])


def _within(read_key: str | None, key: str) -> bool:
    """Whether a read of ``read_key`` (``None``: the whole file) reads what the record at ``key`` holds."""
    if read_key is None or not key:
        return True
    got, mine = split(read_key), split(key)
    return got[: len(mine)] == mine or mine[: len(got)] == got


def lookup(db: Database, node: Any, /, **inputs: Any) -> dict[str, Any]:
    """The outputs of exactly this call: :meth:`Catalog.lookup <storage_nodes.catalog.Catalog.lookup>`."""
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
        raise KeyNotFoundError(f"lookup({name}): input(s) {', '.join(bad)} cannot be digested, so no record can match")
    call = call_digest(name, version, source, digests)
    q = (
        sa.select(S.records, S.files)
        .join(S.files, S.files.c.id == S.records.c.file_id)
        .where(S.records.c.call == call)
        .order_by(S.files.c.created_at.desc(), S.records.c.id.desc())
    )
    found = run(db, lambda conn: hits(db, conn, conn.execute(q).mappings().all()), write=False, what="read")
    stale = 0
    for hit in found:
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
    raise KeyNotFoundError(f"catalog {db.location} has no recorded call of {name} with these inputs{extra}", key=name)


def stats(db: Database) -> dict[str, Any]:
    """Per node function and per user: :meth:`Catalog.stats <storage_nodes.catalog.Catalog.stats>`."""
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
            "catalog": db.location,
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

    return run(db, work, write=False, what="read")


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


def _iso(value: datetime.datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _mapping(value: Any, name: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(f"{name}= takes a dict of port -> value, got {type(value).__name__}")
    return value
