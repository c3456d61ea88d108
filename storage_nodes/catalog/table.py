"""The catalog as a job table: :func:`table` builds a :class:`pandas.DataFrame` of runs, nodes or
plain saves with the filters of :func:`~storage_nodes.catalog.queries.find`.

One SELECT for the entries and one for their inputs (a run's: :func:`~storage_nodes.catalog.runs.run_ports`),
pivoted in Python into one ``in.<port>`` column per input port; pandas is imported only here,
when a table is built. ``stale`` compares each file's size and mtime with the recorded ones
(a stat, not the content sample :meth:`Hit.load <storage_nodes.catalog.Hit.load>` checks).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import InvalidArgumentError
from . import schema as S
from .engine import Database, chunks
from .identity import from_preview
from .queries import apply_filters
from .queue import run
from .records import ID_PREFIX
from .runs import Filters, run_ports, run_selects

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BASE_COLUMNS", "KINDS", "table"]

#: the kinds of row a table holds
KINDS = ("run", "node", "save")
#: the columns every table has, in order (``in.<port>`` after ``label``, ``meta.<key>`` at the end)
BASE_COLUMNS = ("id", "kind", "workflow", "node", "label", "outputs", "user", "host", "created_at", "path", "key",
                "size", "stale")  # fmt: skip

_FILE_COLUMNS = (S.files.c.id, S.files.c.workflow, S.files.c.path, S.files.c.size, S.files.c.mtime_ns,
                 S.files.c.created_by, S.files.c.host, S.files.c.created_at, S.files.c.metadata)  # fmt: skip


def table(
    db: Database, *, kind: str = "run", columns: Sequence[str] | None = None, limit: int | None = None,
    filters: Filters,
) -> pd.DataFrame:  # fmt: skip
    """The entries of ``kind`` matching ``filters`` as a DataFrame, newest first:
    :meth:`Catalog.table <storage_nodes.catalog.Catalog.table>`."""
    if kind not in KINDS:
        raise InvalidArgumentError(f"kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise InvalidArgumentError(f"limit must be a whole number >= 0, got {limit!r}")
    rows = run(db, lambda conn: (_runs if kind == "run" else _records)(conn, kind, filters, limit),
               write=False, what="read")  # fmt: skip
    return _frame(rows, columns)


# a row: id, kind, workflow, node, label, inputs {name: preview}, outputs, user, host, created_at,
# path, key, size, mtime_ns, metadata text; sorted by (created_at, file id, record id)
Row = tuple[Any, ...]


def _runs(conn: sa.Connection, _kind: str, filters: Filters, limit: int | None) -> list[Row]:
    workflows, saves = run_selects(filters)
    if limit is not None:
        workflows, saves = workflows.limit(limit), saves.limit(limit)
    wf_rows = conn.execute(workflows.with_only_columns(*_FILE_COLUMNS)).all()
    ports = run_ports(conn, workflows.with_only_columns(S.files.c.id).scalar_subquery()
                      if limit is not None else workflows.with_only_columns(S.files.c.id).order_by(None))  # fmt: skip
    rows: list[tuple[tuple[Any, int, int], Row]] = []
    for fid, wf, path, size, mtime, user, host, at, meta in wf_rows:
        ins, outs, node = ports.get(int(fid), ({}, [], None))
        rows.append(((at, int(fid), 0), (f"r{fid}", "run", wf, node, wf, ins, outs, user, host, at, path, "", size,
                                         mtime, meta)))  # fmt: skip
    r = S.records
    for rid, key, fid, _wf, path, size, mtime, user, host, at, meta in conn.execute(
        saves.with_only_columns(r.c.id, r.c.key, *_FILE_COLUMNS)
    ):
        rows.append(((at, int(fid), int(rid)), (f"s{rid}", "save", None, None, None, {}, [], user, host, at, path,
                                                key, size, mtime, meta)))  # fmt: skip
    rows.sort(key=lambda sr: sr[0], reverse=True)
    return [row for _, row in (rows if limit is None else rows[:limit])]


def _records(conn: sa.Connection, kind: str, filters: Filters, limit: int | None) -> list[Row]:
    r = S.records
    q = sa.select(r.c.id, r.c.key, r.c.label, r.c.node, r.c.outputs, *_FILE_COLUMNS).join(
        S.files, S.files.c.id == r.c.file_id
    )
    q = apply_filters(q, kind=kind, **{k: filters.get(k) for k in ("node", "inputs", "metadata", "user", "host",
                                                                   "since", "until", "workflow")})  # fmt: skip
    q = q.order_by(S.files.c.created_at.desc(), S.files.c.id.desc(), r.c.id.desc())
    if limit is not None:
        q = q.limit(limit)
    found = conn.execute(q).all()
    ins: dict[int, dict[str, str | None]] = {}
    if kind == "node" and found:
        i = S.inputs
        if limit is None:
            ids = q.with_only_columns(r.c.id).order_by(None)
            sel = sa.select(i.c.record_id, i.c.port, i.c.preview).where(i.c.record_id.in_(ids))
            parts = [conn.execute(sel).all()]
        else:
            parts = [conn.execute(sa.select(i.c.record_id, i.c.port, i.c.preview).where(i.c.record_id.in_(chunk))).all()
                     for chunk in chunks([int(row[0]) for row in found])]  # fmt: skip
        for part in parts:
            for rid, port, pv in part:
                ins.setdefault(int(rid), {})[port] = pv
    prefix = ID_PREFIX[kind]
    outs: dict[str, list[str]] = {}
    rows = []
    for rid, key, label, node, outputs, _fid, wf, path, size, mtime, user, host, at, meta in found:
        out = outs.get(outputs)
        if out is None:
            out = outs[outputs] = json.loads(outputs)
        rows.append((f"{prefix}{rid}", kind, wf, node, label, ins.get(int(rid), {}), list(out), user, host, at, path,
                     key, size, mtime, meta))  # fmt: skip
    return rows


def _frame(rows: list[Row], columns: Sequence[str] | None) -> pd.DataFrame:
    import pandas as pd

    values: dict[str, Any] = {}
    in_cols: dict[str, dict[int, Any]] = {}
    meta_cols: dict[str, dict[int, Any]] = {}
    decoded: dict[str | None, Any] = {}
    metas: dict[str, dict[str, Any]] = {}
    stale: dict[str, bool] = {}
    for n, row in enumerate(rows):
        for name, pv in row[5].items():
            value = decoded.get(pv, decoded)
            if value is decoded:
                value = decoded[pv] = from_preview(pv)
            in_cols.setdefault(name, {})[n] = value
        meta_text = row[14]
        if meta_text and meta_text != "{}":
            meta = metas.get(meta_text)
            if meta is None:
                meta = metas[meta_text] = json.loads(meta_text)
            for k, v in meta.items():
                meta_cols.setdefault(k, {})[n] = v
    count = len(rows)
    paths = [row[10] for row in rows]
    for path, size, mtime in {(row[10], row[12], row[13]) for row in rows}:
        stale[path] = _changed(path, size, mtime)
    values["id"] = [row[0] for row in rows]
    values["kind"] = [row[1] for row in rows]
    for name, at in (("workflow", 2), ("node", 3), ("label", 4)):
        values[name] = pd.Series([row[at] for row in rows], dtype=object)
    for name in sorted(in_cols):
        got = in_cols[name]
        values[f"in.{name}"] = pd.Series([got.get(n) for n in range(count)], dtype=object)  # 4 stays 4
    values["outputs"] = [row[6] for row in rows]
    values["user"] = [row[7] for row in rows]
    values["host"] = [row[8] for row in rows]
    values["created_at"] = pd.to_datetime([row[9] for row in rows]).tz_localize("UTC") if rows else (
        pd.DatetimeIndex([], tz="UTC"))  # fmt: skip
    values["path"] = paths
    values["key"] = [row[11] for row in rows]
    values["size"] = pd.array([row[12] for row in rows], dtype="Int64")
    values["stale"] = [stale[p] for p in paths]
    for name in sorted(meta_cols):
        got = meta_cols[name]
        values[f"meta.{name}"] = pd.Series([got.get(n) for n in range(count)], dtype=object)
    frame = pd.DataFrame(values)
    if columns is not None:
        for c in columns:  # a port or metadata key no selected row has: an empty column
            if c not in frame.columns and c.startswith(("in.", "meta.")):
                frame[c] = None
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InvalidArgumentError(
                f"no column {', '.join(map(repr, missing))} in this table; its columns: {', '.join(frame.columns)}"
            )
        frame = frame[list(columns)]
    return frame


def _changed(path: str, size: int, mtime_ns: int) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return True
    return st.st_size != size or st.st_mtime_ns != mtime_ns
