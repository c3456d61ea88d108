"""What the catalog costs and how fast it answers (printed figures, not timed tests).

Run: ``python benchmarks/bench_catalog.py [--nodes 100000] [--files 1000] [--only overhead,floor,...]``. Prints:

1. ``save_workflow`` of the demo's relax workflow (4 compute nodes + 3 SaveNodes) to h5
   without a catalog and with an SQLite catalog, interleaved: medians, means (a mean
   includes the WAL checkpoints, which stall one commit in every few dozen) and the
   overhead (target <= 10%); then the floor: what the parts of one record cost (digests
   and previews, one bare SQLite write transaction, the same rows written by plain
   ``sqlite3`` with no Python layer above it) against the save itself;
2. ``find`` (node + one input value) and ``lookup`` (call digest; the hit's outputs loaded
   from its file, and the query alone) among ``--nodes`` recorded nodes on SQLite and
   PostgreSQL (targets <= 10 ms and <= 2 ms on SQLite);
3. ``index`` of ``--files`` small h5 files: the first pass and an idempotent second pass;
4. 6 processes recording workflows into one catalog at once: records per second, on
   SQLite and PostgreSQL (a throw-away cluster from tests/_postgres.py);
5. the write paths (``--only paths``): queueing one save and applying one queued run, each
   through the compiled statements on the raw DB-API cursor (what the catalog does), through a
   SQLAlchemy ``Connection`` and through SQLAlchemy Core, interleaved on one SQLite catalog;
6. the job table (``--only table``): ``Catalog.table()`` of ``--runs`` runs with 5 input
   ports each (target <= 1 s on SQLite, within 2x of ``pandas.read_sql`` of one plain SELECT
   giving the same wide rows), ``get(id)`` of a run and of a node (target <= 2 ms), and an
   unfiltered ``find(limit=50)`` (files as the outer table, ordered as their index holds them),
   on SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _timing import median_ms

import storage_nodes as sn
from storage_nodes.catalog import schema as S
from storage_nodes.catalog.catalog import call_digest, preview
from storage_nodes.catalog.digest import digest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def _demo_workflow(directory: Path) -> Any:
    from storage_nodes import demo

    wf = demo.build_relax_workflow(directory)
    wf.run()
    return wf


def bench_overhead(directory: Path, repeat: int) -> None:
    wf = _demo_workflow(directory)
    cat = sn.Catalog(directory / "overhead.sqlite")
    sn.save_workflow(wf, directory / "warm.h5", catalog=cat)  # warm caches and the schema
    variants: dict[str, list[float]] = {"plain": [], "same": [], "new": [], "again": []}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    for i in range(repeat):  # interleaved, so a busy machine slows all four alike
        for name, path, catalog in (
            ("plain", directory / f"plain{i}.h5", None),
            ("same", directory / "plain0.h5", None),  # replacing a file costs the save itself more than a new one
            ("new", directory / f"new{i}.h5", cat),  # a new file: the usual case
            ("again", directory / "new0.h5", cat),  # the same file saved again: its old records are replaced
        ):
            c, t = time.process_time(), time.perf_counter()
            sn.save_workflow(wf, path, catalog=catalog)
            variants[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    # what the saves queued is spread over the tables by the next query (or close/exit): its cost per run
    queued = cat._db.queued
    c, t = time.process_time(), time.perf_counter()
    cat.flush()
    flush_wall, flush_cpu = (time.perf_counter() - t) / max(1, queued), (time.process_time() - c) / max(1, queued)
    p, s, n, a = (1e3 * statistics.median(variants[k]) for k in ("plain", "same", "new", "again"))
    pm, sm, nm, am = (1e3 * statistics.mean(variants[k]) for k in ("plain", "same", "new", "again"))
    # this process's CPU time: what other work on the machine disturbs least (no I/O waits in it)
    pc, sc, nc, ac = (1e3 * statistics.mean(cpu[k]) for k in ("plain", "same", "new", "again"))
    print("1. save_workflow of the demo relax workflow (7 nodes recorded, h5), median (mean) of", repeat)
    print(f"   without a catalog, a new file      {p:7.2f} ms ({pm:6.2f})   CPU {pc:6.2f} ms")
    print(f"   with SQLite, a new file            {n:7.2f} ms ({nm:6.2f})   CPU {nc:6.2f} ms   "
          f"overhead {100 * (n - p) / p:+.1f}% (of means {100 * (nm - pm) / pm:+.1f}%, of CPU "
          f"{100 * (nc - pc) / pc:+.1f}%)  (target <= 10%)")  # fmt: skip
    print(f"   without a catalog, the same file   {s:7.2f} ms ({sm:6.2f})   CPU {sc:6.2f} ms")
    print(f"   with SQLite, the same file         {a:7.2f} ms ({am:6.2f})   CPU {ac:6.2f} ms   "
          f"overhead {100 * (a - s) / s:+.1f}% (of means {100 * (am - sm) / sm:+.1f}%, of CPU "
          f"{100 * (ac - sc) / sc:+.1f}%; its old records deleted first)")  # fmt: skip
    print(f"   deferred: the next query's flush of the queued runs, per run  {1e3 * flush_wall:5.2f} ms   CPU "
          f"{1e3 * flush_cpu:5.2f} ms ({queued} runs in one flush); save + record + flush, CPU: "
          f"{100 * (nc + 1e3 * flush_cpu - pc) / pc:+.1f}%")  # fmt: skip


def bench_floor(directory: Path, repeat: int) -> None:
    """The parts of one record against the save: what no implementation of this schema can avoid."""
    import functools
    import sqlite3

    from storage_nodes.catalog import catalog as C
    from storage_nodes.catalog import engine, queue, recording
    from storage_nodes.graph.workflows import WORKFLOW_KEY, workflow_document

    wf = _demo_workflow(directory)
    doc = workflow_document(wf)
    header, nodes = doc[WORKFLOW_KEY], {k: v for k, v in doc.items() if k != WORKFLOW_KEY}
    recipe = json.loads(header["recipe"])
    path = directory / "floor.sqlite"
    cat = sn.Catalog(path)
    first = sn.save_workflow(wf, directory / "floor0.h5", catalog=cat)
    cat.flush()
    with cat._engine.connect() as conn:  # the rows one record wrote, to write again by plain sqlite3
        rows = {t.name: [dict(r) for r in conn.execute(sa.select(t)).mappings()] for t in S.CHILDREN_FIRST}
    n_rows = sum(len(v) for v in rows.values())
    for i in range(1500):  # some history, so the indexes are trees of a few levels, not one page
        copy = directory / f"history{i}.h5"
        shutil.copy(first, copy)
        cat.record_workflow(copy, label=header["label"], recipe=header["recipe"], nodes=nodes, backend="h5")
    cat.close()
    bare = directory / "floor-noindex.sqlite"
    with sqlite3.connect(path) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(path, bare)
    with sqlite3.connect(bare) as c:  # the same tables and rows without the schema's secondary indexes
        for (name,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").fetchall():
            c.execute(f"DROP INDEX {name}")

    def connect(where: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(where, isolation_level=None)
        for pragma in ("busy_timeout = 30000", "journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON",
                       f"wal_autocheckpoint = {engine.WAL_AUTOCHECKPOINT}"):  # fmt: skip
            conn.execute(f"PRAGMA {pragma}")
        return conn

    indexed, unindexed = connect(path), connect(bare)
    os.sync()  # the 1500 copies' dirty pages would otherwise be written back during the timings

    def sql(table: sa.Table, names: list[str]) -> str:
        return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"

    counter = iter(range(1, 10**9))

    def plain_sqlite(raw: sqlite3.Connection) -> None:
        i = next(counter)
        raw.execute("BEGIN IMMEDIATE")
        f = dict(rows["sn_files"][0], path=f"/floor/{i}.h5", id=None)
        raw.execute("DELETE FROM sn_files WHERE path = ?", (f["path"],))
        fid = raw.execute(sql(S.files, list(f)) + " RETURNING id", [str(v) if k == "created_at" else v
                                                                      for k, v in f.items()]).fetchone()[0]  # fmt: skip
        (base,) = raw.execute("SELECT coalesce(max(id), 0) FROM sn_records").fetchone()
        ids = {r["id"]: base + 1 + j for j, r in enumerate(rows["sn_records"])}
        recs = [dict(r, id=ids[r["id"]], file_id=fid) for r in rows["sn_records"]]
        raw.executemany(sql(S.records, list(recs[0])), [tuple(r.values()) for r in recs])
        ins = [dict(r, record_id=ids[r["record_id"]]) for r in rows["sn_inputs"]]
        raw.executemany(sql(S.inputs, list(ins[0])), [tuple(r.values()) for r in ins])
        eds = [dict(r, file_id=fid, source_id=ids[r["source_id"]], target_id=ids[r["target_id"]])
               for r in rows["sn_edges"]]  # fmt: skip
        raw.executemany(sql(S.edges, list(eds[0])), [tuple(r.values()) for r in eds])
        raw.execute("COMMIT")

    def empty() -> None:
        indexed.execute("BEGIN IMMEDIATE")
        indexed.execute("COMMIT")

    captured: dict[str, Any] = {}
    real_enqueue = recording.enqueue
    recording.enqueue = lambda db, p, payload: captured.setdefault("payload", payload)
    cat.record_workflow(first, label=header["label"], recipe=header["recipe"], nodes=nodes, backend="h5")
    recording.enqueue = real_enqueue
    payload = captured["payload"]
    paths = [sn.save_workflow(wf, directory / f"floor{i}.h5") for i in range(repeat)]
    it = iter(paths * 3)
    new = (directory / f"floor-new{i}.h5" for i in range(10**9))
    parts = {
        "save_workflow without a catalog (a new file)": lambda: sn.save_workflow(wf, next(new)),
        "whole record_workflow (what the catalog adds)": lambda: cat.record_workflow(
            next(it), label=header["label"], recipe=header["recipe"], nodes=nodes, backend="h5"
        ),
        "  of it: queue the run (one row, one transaction)": lambda: queue.enqueue(cat._db, first, payload),
        "digests + previews of every input (workflow_rows)": lambda: C.workflow_rows(
            recipe, nodes, functools.cache(C.live_identity)
        ),
        f"the same {n_rows} rows by plain sqlite3, one transaction": lambda: plain_sqlite(indexed),
        "  the same without the schema's secondary indexes": lambda: plain_sqlite(unindexed),
        "an empty BEGIN IMMEDIATE + COMMIT (sqlite3)": empty,
        "file identity (stat + 3 samples + SHA-256)": lambda: C.file_identity(first),
    }
    times: dict[str, list[float]] = {k: [] for k in parts}
    for _ in range(repeat):  # interleaved
        for name, fn in parts.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    cat.flush()
    for _ in range(100):  # the deferred part: spreading queued runs over the tables, per run
        queue.enqueue(cat._db, first, payload)
    t = time.perf_counter()
    cat.flush()
    times[f"flush of 100 queued runs (later, in a query), per run: the {n_rows} rows"] = [
        (time.perf_counter() - t) / 100
    ]
    base = statistics.median(times["save_workflow without a catalog (a new file)"])
    print(f"   floor: the parts of one record (catalog of 1500 runs), median (mean) of {repeat}, "
          "as % of the save's median")  # fmt: skip
    for name, ts in times.items():
        med, mean = statistics.median(ts), statistics.mean(ts)
        print(f"   {name:52s} {1e3 * med:6.3f} ms ({1e3 * mean:6.3f})  {100 * med / base:5.1f}%")
    indexed.close()
    unindexed.close()


def _core_apply(conn: sa.Connection, payload: dict[str, Any]) -> None:
    """``queue.apply`` written with SQLAlchemy Core: the same rows, the same statements' order."""
    import datetime

    from storage_nodes.catalog.rows import to_json

    f = dict(payload["file"], created_at=datetime.datetime.fromisoformat(payload["file"]["created_at"]))
    conn.execute(S.files.delete().where(S.files.c.path == f["path"]))
    file_id = conn.execute(S.files.insert().returning(S.files.c.id), f).scalar_one()
    if payload["meta"]:
        conn.execute(S.metadata.insert(), [{**m, "file_id": file_id} for m in payload["meta"]])
    records = payload["records"]
    base = conn.execute(sa.select(sa.func.coalesce(sa.func.max(S.records.c.id), 0))).scalar_one()
    ids = list(range(base + 1, base + 1 + len(records)))
    digests: list[dict[str, Any]] = [{} for _ in records]
    for i, port, d, _pv in payload["inputs"]:
        digests[i][port] = d
    conn.execute(
        S.records.insert(),
        [{"id": rid, "file_id": file_id, "key": k, "label": lb, "node": n, "module": m, "qualname": q, "version": v,
          "source": src, "call": call_digest(n, v, src, ins) if n else None, "outputs": to_json(o),
          "undigested": to_json(sorted(p for p, d in ins.items() if d is None)), "type": t}
         for (k, lb, n, m, q, v, src, o, t), rid, ins in zip(records, ids, digests, strict=True)],
    )  # fmt: skip
    if payload["inputs"]:
        conn.execute(S.inputs.insert(), [{"record_id": ids[i], "port": p, "digest": d, "preview": pv}
                                         for i, p, d, pv in payload["inputs"]])  # fmt: skip
    if payload["edges"]:
        conn.execute(S.edges.insert(), [{"file_id": file_id, "source_id": ids[a], "source_port": ap,
                                         "target_id": ids[b], "target_port": bp}
                                        for a, ap, b, bp in payload["edges"]])  # fmt: skip


def bench_paths(directory: Path, repeat: int) -> None:
    """What the raw DB-API path saves over SQLAlchemy where the catalog uses it (the queue)."""
    from storage_nodes.catalog import queue, recording
    from storage_nodes.catalog.engine import cursor
    from storage_nodes.catalog.rows import encode_payload
    from storage_nodes.graph.workflows import WORKFLOW_KEY, workflow_document

    wf = _demo_workflow(directory)
    doc = workflow_document(wf)
    header, nodes = doc[WORKFLOW_KEY], {k: v for k, v in doc.items() if k != WORKFLOW_KEY}
    cat = sn.Catalog(directory / "paths.sqlite")
    first = sn.save_workflow(wf, directory / "paths0.h5")
    captured: dict[str, Any] = {}
    real_enqueue = recording.enqueue
    recording.enqueue = lambda db, p, payload: captured.setdefault("payload", payload)
    cat.record_workflow(first, label=header["label"], recipe=header["recipe"], nodes=nodes, backend="h5")
    recording.enqueue = real_enqueue
    payload, db = captured["payload"], cat._db
    for i in range(300):  # some history
        queue.enqueue(db, first, {**payload, "file": {**payload["file"], "path": f"/paths/h{i}.h5"}})
    cat.flush()
    stmts, row = db.statements(), {"path": str(first), "payload": encode_payload(payload)}
    enqueue = {
        "raw DB-API connection, compiled statement (used)": lambda: db.raw_write(
            lambda cur: cur.execute(stmts.enqueue, row), what="bench"
        ),
        "SQLAlchemy Connection, compiled statement on its cursor": lambda: db.transact(
            lambda conn: cursor(conn).execute(stmts.enqueue, row), write=True, what="bench", counts=False
        ),
        "SQLAlchemy Core insert": lambda: db.transact(
            lambda conn: conn.execute(S.queue.insert(), row), write=True, what="bench", counts=False
        ),
    }
    times: dict[str, list[float]] = {k: [] for k in enqueue}
    for _ in range(max(repeat, 100)):  # interleaved
        for name, fn in enqueue.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    with db.engine.begin() as conn:
        conn.execute(S.queue.delete())
    n_rows = 1 + len(payload["meta"]) + len(payload["records"]) + len(payload["inputs"]) + len(payload["edges"])
    print(f"5. write paths (SQLite), median (mean) of {max(repeat, 100)}: queueing one save (one row, one transaction)")
    for name, ts in times.items():
        print(f"   {name:58s} {1e3 * statistics.median(ts):6.3f} ms ({1e3 * statistics.mean(ts):6.3f})")

    def statements(conn: sa.Connection, batch: list[dict[str, Any]]) -> None:
        cur = cursor(conn)
        for p in batch:
            queue.apply(cur, stmts, p)
        cur.close()

    def core(conn: sa.Connection, batch: list[dict[str, Any]]) -> None:
        for p in batch:
            _core_apply(conn, p)

    applied: dict[str, list[float]] = {"compiled statements on the DB-API cursor (used)": [], "SQLAlchemy Core": []}
    count = iter(range(10**9))
    for _ in range(12):  # interleaved batches of 50 runs, one transaction each
        for ts, way in zip(applied.values(), (statements, core), strict=True):
            batch = [{**payload, "file": {**payload["file"], "path": f"/paths/a{next(count)}.h5"}} for _ in range(50)]
            t = time.perf_counter()
            db.transact(lambda conn, b=batch, w=way: w(conn, b), write=True, what="bench", counts=False)
            ts.append((time.perf_counter() - t) / 50)
    print(f"   applying one queued run ({n_rows} rows) in batches of 50, median (mean) of 12 batches")
    for name, ts in applied.items():
        print(f"   {name:58s} {1e3 * statistics.median(ts):6.3f} ms ({1e3 * statistics.mean(ts):6.3f})")
    cat.close()


def _insert_records(
    conn: sa.Connection, records: list[dict[str, Any]], values_of: list[tuple[dict, dict]], ports: list[str]
) -> None:
    """Insert ``records`` and, per record, its ``ports``' input rows (value preview and digest), 20,000 at a time."""
    ids: list[int] = []
    for start in range(0, len(records), 20000):
        q = S.records.insert().returning(S.records.c.id, sort_by_parameter_order=True)
        ids += [int(r[0]) for r in conn.execute(q, records[start : start + 20000])]
    inputs = [
        {"record_id": rid, "port": p, "digest": digests[p], "preview": preview(values[p])}
        for rid, (values, digests) in zip(ids, values_of)
        for p in ports
    ]
    for start in range(0, len(inputs), 20000):
        conn.execute(S.inputs.insert(), inputs[start : start + 20000])


def _populate(cat: sn.Catalog, n_nodes: int, real: Path) -> None:
    """``n_nodes`` node records (4 per run, 3 inputs each) written in bulk, rows as record_workflow writes them."""
    cat.stats()
    rng_inputs = ["structure", "T", "steps"]
    import datetime

    created = datetime.datetime(2026, 11, 1)
    runs = n_nodes // 4
    with cat._engine.begin() as conn:
        file_rows = [
            {"path": f"/nonexistent/run{i}.h5", "size": 1000, "mtime_ns": i, "content": "0" * 64, "backend": "h5",
             "kind": "workflow", "workflow": "relax", "metadata": json.dumps({"sample": f"S{i % 100}"}),
             "created_by": f"user{i % 7}", "host": "bench", "created_at": created + datetime.timedelta(seconds=i),
             "recorded_by": "save"}
            for i in range(runs)
        ]  # fmt: skip
        conn.execute(S.files.insert(), file_rows)
        first = conn.execute(sa.select(sa.func.min(S.files.c.id))).scalar_one()
        records, values_of = [], []
        for i in range(runs):
            for j, name in enumerate(["make", "relax", "energy", "report"]):
                values = {"structure": f"s{i}", "T": float(i % 500), "steps": j}
                digests = {p: digest(v) for p, v in values.items()}
                node = f"bench.{name}"
                values_of.append((values, digests))
                records.append(
                    {"file_id": first + i, "key": name, "label": name, "node": node, "module": "bench",
                     "qualname": name, "version": "1.0", "source": "0" * 64,
                     "call": call_digest(node, "1.0", "0" * 64, digests), "outputs": '["out"]', "undigested": "[]",
                     "type": "atomic"}
                )  # fmt: skip
        _insert_records(conn, records, values_of, rng_inputs)
    from _catalog_nodes import build

    sn.save_workflow(build(T=300.0), real, catalog=cat)  # one real run among them, for lookup


def bench_queries(cat: sn.Catalog, name: str, n_nodes: int, directory: Path, repeat: int) -> None:
    from _catalog_nodes import make_structure, relax

    t = time.perf_counter()
    _populate(cat, n_nodes, directory / f"real-{name}.h5")
    fill = time.perf_counter() - t
    structure = make_structure(4)
    hits = cat.find(node="bench.relax", inputs={"T": 123.0})
    assert len(hits) == n_nodes // 4 // 500, len(hits)
    find = median_ms(lambda: cat.find(node="bench.relax", inputs={"T": 123.0}), repeat)
    find_meta = median_ms(lambda: cat.find(node="bench.relax", metadata={"sample": "S5"}, limit=10), repeat)
    assert cat.lookup(relax, structure=structure, T=300.0)["energy"] > 0
    lookup = median_ms(lambda: cat.lookup(relax, structure=structure, T=300.0), repeat)
    h = cat.find(node=relax)[0]
    q = sa.select(S.records.c.id).where(S.records.c.call == h.call)
    with cat._engine.connect() as conn:
        query = median_ms(lambda: conn.execute(q).all(), repeat)
    print(f"   {name:10s} (filled {n_nodes} nodes in {fill:.1f} s): find node+input {find:6.2f} ms "
          f"({len(hits)} hits), find node+metadata (limit 10) {find_meta:6.2f} ms, lookup {lookup:6.2f} ms "
          f"(the call-digest query alone {query:6.3f} ms)")  # fmt: skip


#: the 5 input ports of each run of the job-table benchmark, and a value of each for run i
TABLE_PORTS = {"T": lambda i: float(i % 500), "steps": lambda i: i % 7, "structure": lambda i: f"s{i}",
               "pressure": lambda i: 0.5 * (i % 11), "potential": lambda i: f"pot{i % 3}"}  # fmt: skip


def _populate_runs(cat: sn.Catalog, runs: int) -> None:
    """``runs`` saved runs of one node ``calc`` with 5 inputs each, written in bulk as record_workflow writes them."""
    cat.stats()  # the tables
    import datetime

    created = datetime.datetime(2026, 11, 1)
    with cat._engine.begin() as conn:
        file_rows = [
            {"path": f"/nonexistent/run{i}.h5", "size": 1000, "mtime_ns": i, "content": "0" * 64, "backend": "h5",
             "kind": "workflow", "workflow": "eos", "metadata": json.dumps({"sample": f"S{i % 100}"}),
             "created_by": f"user{i % 7}", "host": "bench", "created_at": created + datetime.timedelta(seconds=i),
             "recorded_by": "save"}
            for i in range(runs)
        ]  # fmt: skip
        for start in range(0, runs, 20000):
            conn.execute(S.files.insert(), file_rows[start : start + 20000])
        first = conn.execute(sa.select(sa.func.min(S.files.c.id))).scalar_one()
        records, values_of = [], []
        for i in range(runs):
            values = {p: make(i) for p, make in TABLE_PORTS.items()}
            digests = {p: digest(v) for p, v in values.items()}
            values_of.append((values, digests))
            records.append(
                {"file_id": first + i, "key": "calc", "label": "calc", "node": "bench.calc", "module": "bench",
                 "qualname": "calc", "version": "1.0", "source": "0" * 64,
                 "call": call_digest("bench.calc", "1.0", "0" * 64, digests), "outputs": '["energy"]',
                 "undigested": "[]", "type": "atomic"}
            )  # fmt: skip
        _insert_records(conn, records, values_of, list(TABLE_PORTS))
    if cat._db.sqlite:
        with cat._engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")


def _plain_select() -> str:
    """One plain SELECT giving the table's wide rows (inputs as their stored preview text)."""
    ports = ", ".join(f"MAX(CASE WHEN i.port = '{p}' THEN i.preview END) AS \"in.calc__{p}\"" for p in TABLE_PORTS)
    return (
        f"SELECT f.id, f.workflow, f.created_by, f.host, f.created_at, f.path, f.size, f.metadata, {ports} "
        "FROM sn_files f JOIN sn_records r ON r.file_id = f.id JOIN sn_inputs i ON i.record_id = r.id "
        "GROUP BY f.id, f.workflow, f.created_by, f.host, f.created_at, f.path, f.size, f.metadata "
        "ORDER BY f.created_at DESC, f.id DESC"
    )


def bench_table(cat: sn.Catalog, name: str, runs: int, repeat: int) -> None:
    import pandas as pd

    t = time.perf_counter()
    _populate_runs(cat, runs)
    fill = time.perf_counter() - t
    frame = cat.table()
    assert len(frame) == runs and frame["in.calc__T"].iloc[-1] == 0.0, frame.columns
    reps = max(3, repeat // 10)
    table = median_ms(lambda: cat.table(), reps)
    filtered = median_ms(lambda: cat.table(inputs={"T": 123}), reps)
    sql = _plain_select()
    with cat._engine.connect() as conn:
        plain = pd.read_sql(sa.text(sql), conn)
        assert len(plain) == runs
        read_sql = median_ms(lambda: pd.read_sql(sa.text(sql), conn), reps)
    run_id, node_id = frame["id"].iloc[runs // 2], cat.find(node="bench.calc", limit=1)[0].id
    get_run = median_ms(lambda: cat.get(run_id), repeat)
    get_node = median_ms(lambda: cat.get(node_id), repeat)
    find50 = median_ms(lambda: cat.find(limit=50), repeat)
    runs50 = median_ms(lambda: cat.find(kind="run", limit=50), repeat)
    print(f"   {name:10s} (filled {runs} runs in {fill:.1f} s): table() {table:7.1f} ms, pandas.read_sql of one "
          f"SELECT {read_sql:7.1f} ms (ratio {table / read_sql:4.2f}), table(inputs={{'T': 123}}) {filtered:6.1f} ms; "
          f"get(run) {get_run:5.2f} ms, get(node) {get_node:5.2f} ms; find(limit=50) {find50:5.2f} ms, "
          f"find(kind='run', limit=50) {runs50:5.2f} ms")  # fmt: skip


def bench_index(directory: Path, n_files: int) -> None:
    runs = directory / "many"
    runs.mkdir()
    for i in range(n_files):
        sn.save({"energy": float(i), "step": i}, runs / f"f{i:04d}.h5", metadata={"i": i})
    cat = sn.Catalog(directory / "index.sqlite")
    cat.stats()
    t = time.perf_counter()
    report = cat.index(runs)
    first = time.perf_counter() - t
    t = time.perf_counter()
    again = cat.index(runs)
    second = time.perf_counter() - t
    assert len(report.recorded) == n_files and len(again.unchanged) == n_files
    print(f"3. index of {n_files} small h5 files: first pass {first:.2f} s ({1e3 * first / n_files:.2f} ms a file), "
          f"second (nothing to do) {second:.2f} s")  # fmt: skip


def _writer(url: str, directory: str, worker: int, count: int, barrier: Any, out: Any) -> None:
    warnings.simplefilter("ignore")
    from _catalog_nodes import build

    from storage_nodes.graph.workflows import WORKFLOW_KEY, workflow_document

    wf = build(T=float(worker))
    doc = workflow_document(wf)
    nodes = {k: v for k, v in doc.items() if k not in (WORKFLOW_KEY, "inputs", "outputs")}
    paths = [sn.save_workflow(wf, Path(directory) / f"w{worker}-{i}.h5") for i in range(count)]
    cat = sn.Catalog(url, create=True)
    cat.stats()
    barrier.wait()
    t = time.perf_counter()
    for p in paths:
        cat.record_workflow(p, label=wf.label, recipe=doc[WORKFLOW_KEY]["recipe"], nodes=nodes, backend="h5")
    queued = time.perf_counter() - t
    cat.flush()  # what a query (or the exit) would do: all six flush at once, sharing the queue
    out.put((worker, queued, time.perf_counter() - t))


def bench_writers(url: str, name: str, directory: Path, workers: int = 6, count: int = 40) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(workers + 1), ctx.Queue()
    d = directory / f"writers-{name}"
    d.mkdir()
    procs = [ctx.Process(target=_writer, args=(url, str(d), w, count, barrier, out)) for w in range(workers)]
    for p in procs:
        p.start()
    barrier.wait()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    cat = sn.Catalog(url)
    assert cat.flush() == 0  # the writers' own flushes left nothing queued
    n = len(cat.find(node="_catalog_nodes.relax"))
    assert n == workers * count, (n, workers * count)
    runs = workers * count
    wall, tables = max(r[1] for r in results), max(r[2] for r in results)  # from the common start
    print(f"   {name:10s}: {runs} runs ({3 * runs} node records) queued in {wall:.2f} s = {runs / wall:6.1f} runs/s; "
          f"all in the tables after {tables:.2f} s = {runs / tables:6.1f} runs/s, {3 * runs / tables:6.1f} node "
          "records/s; none lost")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the job-table benchmark")
    parser.add_argument("--only", default="overhead,floor,queries,index,writers,paths,table",
                        help="comma-separated sections to run (default: all)")  # fmt: skip
    args = parser.parse_args()
    only = set(args.only.split(","))
    warnings.simplefilter("ignore")
    from _postgres import cluster, create_database

    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as tmp, cluster() as server:
        directory = Path(tmp)
        os.chdir(directory)
        if "overhead" in only:
            bench_overhead(directory, args.repeat)
        if "floor" in only:
            bench_floor(directory, max(args.repeat, 100))
        if "queries" in only:
            print(f"2. queries among {args.nodes} recorded nodes, median of {args.repeat}")
            bench_queries(
                sn.Catalog(directory / "big.sqlite", create=True), "SQLite", args.nodes, directory, args.repeat
            )
            big = sn.Catalog(create_database(server, "bench_big"), create=True)
            bench_queries(big, "PostgreSQL", args.nodes, directory, args.repeat)
        if "index" in only:
            bench_index(directory, args.files)
        if "writers" in only:
            print("4. 6 processes recording workflows into one catalog at once")
            bench_writers(str(directory / "writers.sqlite"), "SQLite", directory)
            bench_writers(create_database(server, "bench_writers"), "PostgreSQL", directory)
        if "paths" in only:
            bench_paths(directory, args.repeat)
        if "table" in only:
            print(f"6. the job table of {args.runs} runs, 5 input ports each, median of {max(3, args.repeat // 10)} "
                  f"(get, find: of {args.repeat})")  # fmt: skip
            cat = sn.Catalog(directory / "table.sqlite", create=True)
            bench_table(cat, "SQLite", args.runs, args.repeat)
            bench_table(sn.Catalog(create_database(server, "bench_table"), create=True), "PostgreSQL", args.runs,
                        args.repeat)  # fmt: skip


if __name__ == "__main__":
    main()
