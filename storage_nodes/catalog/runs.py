"""Runs as entries: a saved workflow as a whole (one per file) and each plain save, found with
the filters of :func:`~storage_nodes.catalog.queries.find`; one entry by its id (:func:`get`).

A run's inputs are the inputs of its top-level nodes that no edge feeds, named
``<node>__<port>`` as pyiron_workflow names a workflow's inputs (a node saved on its own:
its ports); its outputs likewise the top-level outputs no edge reads. Both come from
:func:`run_ports`, which :mod:`~storage_nodes.catalog.table` shares.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..errors import KeyNotFoundError
from . import schema as S
from .engine import Database
from .identity import from_preview
from .queries import file_conditions, hits, record_conditions, value_digests
from .queue import run
from .records import FileIdentity, Hit, entry_id, file_identity, parse_id, record_kind

__all__ = [
    "Filters", "Ports", "find_runs", "get", "members", "merged", "port_columns", "port_name", "raw_rows", "run_hits",
    "run_ports", "run_selects",
]  # fmt: skip

#: the keyword filters of ``find`` (node and inputs on records, the rest on files)
Filters = Mapping[str, Any]


def port_name(key: str, port: str) -> str:
    """A run's name of a top-level node's port: ``port`` for a node saved on its own, else ``key__port``."""
    return port if key == "" else f"{key}__{port}"


def run_selects(filters: Filters) -> tuple[Any, Any]:
    """The SELECTs of the runs (``sn_files`` rows of saved workflows) and of the plain saves
    (``sn_records`` joined with ``sn_files``) that match ``filters``, newest first.

    A run matches ``node`` when one of its nodes is that function, and each input when one of
    its nodes has that port with that value (``T``), or by the run's name of it (``relax__T``)."""
    f, r, i = S.files, S.records, S.inputs
    files = file_conditions(**{k: filters.get(k) for k in ("metadata", "user", "host", "since", "until", "workflow")})
    workflows = sa.select(f).where(f.c.kind == "workflow", *files)
    if filters.get("node") is not None:
        workflows = workflows.where(f.c.id.in_(sa.select(r.c.file_id).where(*record_conditions(filters["node"], None))))
    # each input on its own: a port of any node of the run, or a run's port ``<node>__<port>``
    for name, value in (filters.get("inputs") or {}).items():
        matching = record_conditions(None, {name: value})
        node_key, sep, port = str(name).rpartition("__")
        if sep and node_key:
            by_run_name = (
                sa.select(r.c.id)
                .join(i, i.c.record_id == r.c.id)
                .where(r.c.key == node_key, i.c.port == port, i.c.digest.in_(value_digests(value)))
            )
            matching = [sa.or_(*matching, r.c.id.in_(by_run_name))]
        workflows = workflows.where(f.c.id.in_(sa.select(r.c.file_id).where(*matching)))
    recs = record_conditions(filters.get("node"), filters.get("inputs"))
    # files as the outer table, by (created_at, id): SQLite walks sn_files_created_at backwards, no sort
    workflows = workflows.order_by(f.c.created_at.desc(), f.c.id.desc())
    saves = (
        sa.select(r, f)
        .join(f, f.c.id == r.c.file_id)
        .where(r.c.node.is_(None), f.c.kind == "save", *files, *recs)
        .order_by(f.c.created_at.desc(), f.c.id.desc(), r.c.id.desc())
    )
    return workflows, saves


def merged(workflows: Sequence[Any], saves: Sequence[Any], limit: int | None) -> list[tuple[str, Any]]:
    """The rows of both SELECTs as ``("run" | "save", row)``, newest first, at most ``limit``."""
    both = [("run", w) for w in workflows] + [("save", s) for s in saves]
    both.sort(key=lambda kr: (kr[1]["created_at"], int(kr[1]["id"] if kr[0] == "run" else kr[1]["file_id"]),
                              int(kr[1]["id"])), reverse=True)  # fmt: skip
    return both if limit is None else both[:limit]


#: per run: its free inputs ``{name: preview text}``, its free outputs, the node of a node saved on its own
Ports = tuple[dict[str, str | None], list[str], str | None]


def raw_rows(conn: sa.Connection, q: Any) -> list[Any]:
    """The rows of ``q`` as the driver returns them (no SQLAlchemy row objects or result processing:
    times come as SQLite stores them, ISO text); for the large reads of the job table."""
    return list(conn.execute(q).cursor.fetchall())


def port_columns(conn: sa.Connection, file_ids: Any, *, everything: bool = False) -> tuple[
    dict[str, dict[int, str | None]], dict[int, list[str]], dict[int, str]
]:  # fmt: skip
    """The runs' ports as columns: ``{name: {file id: preview text}}`` of the free inputs,
    ``{file id: free outputs}`` and ``{file id: node}`` of nodes saved on their own.

    ``file_ids``: a SELECT of ``sn_files.id`` or a list; ``everything``: every run of the
    catalog (no restriction: plain saves have no inputs, so none are picked up)."""
    r, i, e = S.records, S.inputs, S.edges
    top: list[Any] = [~r.c.key.contains("/")]
    # one run (``get``): ``=`` instead of ``IN``, whose list SQLAlchemy renders anew on every call
    one = file_ids[0] if isinstance(file_ids, list) and len(file_ids) == 1 else None
    if not everything:
        top.append(r.c.file_id == one if one is not None else r.c.file_id.in_(file_ids))
    edge_q = sa.select(e.c.source_id, e.c.source_port, e.c.target_id, e.c.target_port)
    if not everything:
        edge_q = edge_q.where(e.c.file_id == one if one is not None else e.c.file_id.in_(file_ids))
    edges = raw_rows(conn, edge_q)
    fed = {(int(t), tp) for _s, _sp, t, tp in edges}
    read = {(int(s), sp) for s, sp, _t, _tp in edges}
    outs: dict[int, list[str]] = {}
    nodes: dict[int, str] = {}
    parsed: dict[str, list[str]] = {}
    for rid, fid, key, outputs, node in raw_rows(conn, sa.select(r.c.id, r.c.file_id, r.c.key, r.c.outputs, r.c.node)
                                                 .where(*top).order_by(r.c.id)):  # fmt: skip
        ports = parsed.get(outputs)
        if ports is None:
            ports = parsed[outputs] = json.loads(outputs)
        outs.setdefault(fid, []).extend(port_name(key, p) for p in ports if not read or (rid, p) not in read)
        if key == "" and node is not None:
            nodes[fid] = node
    columns: dict[str, dict[int, str | None]] = {}
    names: dict[tuple[str, str], dict[int, str | None]] = {}
    q = sa.select(r.c.id, r.c.file_id, r.c.key, i.c.port, i.c.preview).join(r, r.c.id == i.c.record_id).where(*top)
    for rid, fid, key, port, pv in raw_rows(conn, q):
        if fed and (rid, port) in fed:
            continue
        column = names.get((key, port))
        if column is None:
            column = names[(key, port)] = columns.setdefault(port_name(key, port), {})
        column[fid] = pv
    return columns, outs, nodes


def run_ports(conn: sa.Connection, file_ids: Any) -> dict[int, Ports]:
    """Per run (``file_ids``: a SELECT of ``sn_files.id`` or a list): :data:`Ports`."""
    columns, outs, nodes = port_columns(conn, file_ids)
    found: dict[int, Ports] = {fid: ({}, list(o), nodes.get(fid)) for fid, o in outs.items()}
    for name, column in columns.items():
        for fid, pv in column.items():
            found.setdefault(fid, ({}, [], nodes.get(fid)))[0][name] = pv
    return found


def _run_hit(db: Database, row: Any, ports: Ports | None, fresh: bool) -> Hit:
    ins, outs, _node = ports or ({}, [], None)
    return Hit(
        path=Path(row["path"]), key="", node=None, inputs={k: from_preview(v) for k, v in ins.items()},
        outputs=list(outs), created_by=row["created_by"], host=row["host"], created_at=row["created_at"],
        workflow=row["workflow"], label=row["workflow"], metadata=json.loads(row["metadata"]), version=None,
        stale=not fresh, undigested=[], call=None, record_id=0, kind="run", file_id=int(row["id"]),
        _members=functools.partial(members, db), _identity=_identity(row),
    )  # fmt: skip


def _identity(row: Any) -> FileIdentity:
    return FileIdentity(int(row["size"]), int(row["mtime_ns"]), row["content"])


def run_hits(db: Database, conn: sa.Connection, rows: Sequence[tuple[str, Any]]) -> list[Hit]:
    """The hits of :func:`merged` rows: run hits for saved workflows, save hits for plain saves."""
    run_ids = [int(row["id"]) for kind, row in rows if kind == "run"]
    ports = run_ports(conn, run_ids) if run_ids else {}
    save_hits = iter(hits(db, conn, [row for kind, row in rows if kind == "save"]))
    found = []
    for kind, row in rows:
        if kind == "run":
            found.append(
                _run_hit(db, row, ports.get(int(row["id"])), file_identity(Path(row["path"])) == _identity(row))
            )
        else:
            found.append(next(save_hits))
    return found


def find_runs(db: Database, filters: Filters, limit: int | None) -> list[Hit]:
    """``find(kind="run")``: the runs and plain saves matching ``filters``, newest first."""
    workflows, saves = run_selects(filters)
    if limit is not None:
        workflows, saves = workflows.limit(limit), saves.limit(limit)

    def work(conn: sa.Connection) -> list[Hit]:
        rows = merged(conn.execute(workflows).mappings().all(), conn.execute(saves).mappings().all(), limit)
        return run_hits(db, conn, rows)

    return run(db, work, write=False, what="read")


def members(db: Database, hit: Hit) -> list[Hit]:
    """The node hits of a run (its file's node records), in recorded order."""
    q = (
        sa.select(S.records, S.files)
        .join(S.files, S.files.c.id == S.records.c.file_id)
        .where(S.records.c.file_id == hit.file_id, S.records.c.node.is_not(None))
        .order_by(S.records.c.id)
    )
    return run(db, lambda conn: hits(db, conn, conn.execute(q).mappings().all()), write=False, what="read")


def get(db: Database, entry: Any) -> Hit:
    """The entry with this id (``"r12"``, ``"n345"``, ``"s345"``; :attr:`Hit.id`); none raises
    :class:`KeyNotFoundError`."""
    kind, number = parse_id(entry)
    text = entry_id(kind, number)

    def work(conn: sa.Connection) -> Hit | None:
        if kind == "run":
            row = (
                conn.execute(sa.select(S.files).where(S.files.c.id == number, S.files.c.kind == "workflow"))
                .mappings()
                .first()
            )
            return None if row is None else run_hits(db, conn, [("run", row)])[0]
        q = (
            sa.select(S.records, S.files)
            .join(S.files, S.files.c.id == S.records.c.file_id)
            .where(S.records.c.id == number, record_kind(kind, S.records, S.files))
        )
        rows = conn.execute(q).mappings().all()
        return hits(db, conn, rows)[0] if rows else None

    found = run(db, work, write=False, what="read")
    if found is None:
        raise KeyNotFoundError(
            f"catalog {db.location} has no entry {text} (removed, pruned or recorded anew since the id was "
            "shown; ids of a file saved again change): list them with Catalog.table() or `storage-nodes catalog runs`",
            key=text,
        )
    return found
