"""The catalog as a job table: :func:`table` builds a :class:`pandas.DataFrame` of runs, nodes or
plain saves with the filters of :func:`~storage_nodes.catalog.queries.find`.

One SELECT for the entries and one for their inputs (a run's: :func:`~storage_nodes.catalog.runs.port_columns`),
read as the driver returns them and pivoted in Python into one ``in.<port>`` column per input
port; pandas is imported only here, when a table is built. ``stale`` compares each file's size
and mtime with the recorded ones (a stat, not the content sample :meth:`Hit.load
<storage_nodes.catalog.Hit.load>` checks). docs/catalog.md, "Figures", has its cost.
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
from .queries import apply_filters
from .queue import run
from .records import ID_PREFIX, Summary
from .runs import Filters, port_columns, raw_rows, run_selects

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BASE_COLUMNS", "KINDS", "decode_preview", "table"]

#: the kinds of row a table holds
KINDS = ("run", "node", "save")
#: the columns every table has, in order (``in.<port>`` after ``label``, ``meta.<key>`` at the end)
BASE_COLUMNS = ("id", "kind", "workflow", "node", "label", "outputs", "user", "host", "created_at", "path", "key",
                "size", "stale")  # fmt: skip

_FILE_COLUMNS = (S.files.c.id, S.files.c.workflow, S.files.c.path, S.files.c.size, S.files.c.mtime_ns,
                 S.files.c.created_by, S.files.c.host, S.files.c.created_at, S.files.c.metadata)  # fmt: skip
_VALUE = '{"v": '
_WORDS = {"true": True, "false": False, "null": None}


def decode_preview(text: str | None) -> Any:
    """The value a stored input preview shows (``{"v": value}``), or a :class:`Summary` of it
    (``{"t": description}``); the common numbers, words and plain strings without ``json.loads``."""
    if text is None:
        return Summary("unknown")
    if text.startswith(_VALUE) and text.endswith("}"):
        body = text[len(_VALUE) : -1]
        if body in _WORDS:
            return _WORDS[body]
        first = body[:1]
        if first == '"' and "\\" not in body and body.count('"') == 2:
            return body[1:-1]
        if first.isdigit() or first == "-":
            try:
                return int(body)
            except ValueError:
                try:
                    return float(body)
                except ValueError:
                    pass
    doc = json.loads(text)
    return doc["v"] if "v" in doc else Summary(doc.get("t", "unknown"))


class _Rows:
    """The table's columns as lists, filled row by row; ``entity`` keys a row's inputs."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit  # runs and saves come from two SELECTs: cut after they are merged
        self.merge = False  # whether rows of both came: sort them by time
        self.base: dict[str, list[Any]] = {c: [] for c in (*BASE_COLUMNS[:-1], "mtime_ns", "metadata", "order")}
        self.entity: list[int | None] = []
        self.inputs: dict[str, dict[int, str | None]] = {}

    def extend(self, order: list[tuple[Any, int, int]], entity: Sequence[int | None], **values: Sequence[Any]) -> None:
        """Rows given as columns (each of the same length), already newest first."""
        if self.base["order"] and order:
            self.merge = True
        for name, column in values.items():
            self.base[name].extend(column)
        self.base["order"].extend(order)
        self.entity.extend(entity)


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


def _unfiltered(filters: Filters) -> bool:
    return all(v is None for v in filters.values())


def _runs(conn: sa.Connection, _kind: str, filters: Filters, limit: int | None) -> _Rows:
    workflows, saves = run_selects(filters)
    if limit is not None:
        workflows, saves = workflows.limit(limit), saves.limit(limit)
    found = _Rows(limit)
    wf_rows = raw_rows(conn, workflows.with_only_columns(*_FILE_COLUMNS))
    ids = workflows.with_only_columns(S.files.c.id)
    ins, outs, nodes = port_columns(conn, ids.scalar_subquery() if limit is not None else ids.order_by(None),
                                    everything=_unfiltered(filters) and limit is None)  # fmt: skip
    found.inputs = ins
    if wf_rows:
        fids, wfs, paths, sizes, mtimes, users, hosts, ats, metas = map(list, zip(*wf_rows, strict=True))
        found.extend([(at, fid, 0) for at, fid in zip(ats, fids, strict=True)], fids, id=[f"r{f}" for f in fids],
                     kind=["run"] * len(fids), workflow=wfs, node=[nodes.get(f) for f in fids], label=wfs,
                     outputs=[outs.get(f, []) for f in fids], user=users, host=hosts, created_at=ats, path=paths,
                     key=[""] * len(fids), size=sizes, mtime_ns=mtimes, metadata=metas)  # fmt: skip
    r = S.records
    save_rows = raw_rows(conn, saves.with_only_columns(r.c.id, r.c.key, *_FILE_COLUMNS))
    if save_rows:
        rids, keys, fids, _wfs, paths, sizes, mtimes, users, hosts, ats, metas = map(list, zip(*save_rows, strict=True))
        n = len(rids)
        found.extend([(at, f, rid) for at, f, rid in zip(ats, fids, rids, strict=True)], [None] * n,
                     id=[f"s{rid}" for rid in rids], kind=["save"] * n, workflow=[None] * n, node=[None] * n,
                     label=[None] * n, outputs=[[] for _ in range(n)], user=users, host=hosts, created_at=ats,
                     path=paths, key=keys, size=sizes, mtime_ns=mtimes, metadata=metas)  # fmt: skip
    return found


def _records(conn: sa.Connection, kind: str, filters: Filters, limit: int | None) -> _Rows:
    r, i = S.records, S.inputs
    q = sa.select(r.c.id, r.c.key, r.c.label, r.c.node, r.c.outputs, *_FILE_COLUMNS).join(
        S.files, S.files.c.id == r.c.file_id
    )
    q = apply_filters(q, kind=kind, **filters)
    q = q.order_by(S.files.c.created_at.desc(), S.files.c.id.desc(), r.c.id.desc())
    if limit is not None:
        q = q.limit(limit)
    selected = raw_rows(conn, q)
    found = _Rows()
    if kind == "node" and selected:
        sel = sa.select(i.c.record_id, i.c.port, i.c.preview)
        if limit is None:
            parts = [raw_rows(conn, sel.where(i.c.record_id.in_(q.with_only_columns(r.c.id).order_by(None))))]
        else:
            parts = [
                raw_rows(conn, sel.where(i.c.record_id.in_(chunk))) for chunk in chunks([row[0] for row in selected])
            ]
        for part in parts:
            for rid, port, pv in part:
                found.inputs.setdefault(port, {})[rid] = pv
    prefix = ID_PREFIX[kind]
    parsed: dict[str, list[str]] = {}
    for outputs in {row[4] for row in selected}:
        parsed[outputs] = json.loads(outputs)
    if selected:
        rids, keys, labels, nodes, outputs, fids, wfs, paths, sizes, mtimes, users, hosts, ats, metas = map(
            list, zip(*selected, strict=True)
        )
        found.extend([(at, f, rid) for at, f, rid in zip(ats, fids, rids, strict=True)], rids,
                     id=[f"{prefix}{rid}" for rid in rids], kind=[kind] * len(rids), workflow=wfs, node=nodes,
                     label=labels, outputs=[list(parsed[o]) for o in outputs], user=users, host=hosts,
                     created_at=ats, path=paths, key=keys, size=sizes, mtime_ns=mtimes, metadata=metas)  # fmt: skip
    return found


def _frame(rows: _Rows, columns: Sequence[str] | None) -> pd.DataFrame:
    import pandas as pd

    base = rows.base
    count = len(base["order"])
    order = sorted(range(count), key=base["order"].__getitem__, reverse=True) if rows.merge else list(range(count))
    if rows.merge or (rows.limit is not None and rows.limit < count):  # runs and saves interleave by time
        order = order[: rows.limit]
        base = {name: [values[n] for n in order] for name, values in base.items()}
        rows.entity = [rows.entity[n] for n in order]
    values: dict[str, Any] = {}
    for name in ("id", "kind", "workflow", "node", "label"):
        values[name] = pd.Series(base[name], dtype=object)
    decoded: dict[str | None, Any] = {}
    for name in sorted(rows.inputs):
        got = rows.inputs[name]
        cells: list[Any] = []
        for entity in rows.entity:
            if entity is None or entity not in got:
                cells.append(None)
                continue
            pv = got[entity]
            value = decoded.get(pv, decoded)
            if value is decoded:
                value = decoded[pv] = decode_preview(pv)
            cells.append(value)
        values[f"in.{name}"] = pd.Series(cells, dtype=object)  # 4 stays 4, next to 4.5
    values["outputs"] = pd.Series(base["outputs"], dtype=object)
    values["user"] = pd.Series(base["user"], dtype=object)
    values["host"] = pd.Series(base["host"], dtype=object)
    values["created_at"] = pd.to_datetime(pd.Series(base["created_at"], dtype=object), utc=True, format="ISO8601")
    values["path"] = pd.Series(base["path"], dtype=object)
    values["key"] = pd.Series(base["key"], dtype=object)
    values["size"] = pd.array(base["size"], dtype="Int64")
    files = list(zip(base["path"], base["size"], base["mtime_ns"], strict=True))
    changed = {f: _changed(*f) for f in set(files)}
    values["stale"] = pd.array([changed[f] for f in files], dtype=bool)
    metas: dict[str, dict[str, Any]] = {}
    meta_cols: dict[str, dict[int, Any]] = {}
    for n, text in enumerate(base["metadata"]):
        if not text or text == "{}":
            continue
        meta = metas.get(text)
        if meta is None:
            meta = metas[text] = json.loads(text)
        for k, v in meta.items():
            meta_cols.setdefault(k, {})[n] = v
    count = len(base["id"])
    for name in sorted(meta_cols):
        got_meta = meta_cols[name]
        values[f"meta.{name}"] = pd.Series([got_meta.get(n) for n in range(count)], dtype=object)
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
