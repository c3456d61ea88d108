"""What the catalog costs and how fast it answers (printed figures, not timed tests).

Run: ``python benchmarks/bench_catalog.py [--nodes 100000] [--files 1000]``. Prints:

1. ``save_workflow`` of the demo's relax workflow (4 compute nodes + 3 SaveNodes) to h5
   without a catalog and with an SQLite catalog: medians and the overhead (target <= 10%);
2. ``find`` (node + one input value) and ``lookup`` (call digest; the hit's outputs loaded
   from its file, and the query alone) among ``--nodes`` recorded nodes on SQLite and
   PostgreSQL (targets <= 10 ms and <= 2 ms on SQLite);
3. ``index`` of ``--files`` small h5 files: the first pass and an idempotent second pass;
4. 6 processes recording workflows into one catalog at once: records per second, on
   SQLite and PostgreSQL (a throw-away cluster from tests/_postgres.py).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import storage_nodes as sn
from storage_nodes.catalog import schema as S
from storage_nodes.catalog.catalog import call_digest, preview
from storage_nodes.catalog.digest import digest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def _demo_workflow(directory: Path) -> Any:
    from storage_nodes import demo

    wf = demo.build_relax_workflow(directory)
    wf.run()
    return wf


def bench_overhead(directory: Path, repeat: int) -> None:
    wf = _demo_workflow(directory)
    cat = sn.Catalog(directory / "overhead.sqlite")
    sn.save_workflow(wf, directory / "warm.h5", catalog=cat)  # warm caches and the schema
    plain, new, again = [], [], []
    for i in range(repeat):  # interleaved, so a busy machine slows all three alike
        for times, path, catalog in (
            (plain, directory / f"plain{i}.h5", None),
            (new, directory / f"new{i}.h5", cat),  # a new file: the usual case
            (again, directory / "new0.h5", cat),  # the same file saved again: its old records are replaced
        ):
            t = time.perf_counter()
            sn.save_workflow(wf, path, catalog=catalog)
            times.append(time.perf_counter() - t)
    p, n, a = (1e3 * statistics.median(x) for x in (plain, new, again))
    print("1. save_workflow of the demo relax workflow (7 nodes recorded, h5), median of", repeat)
    print(f"   without a catalog            {p:7.2f} ms")
    print(f"   with SQLite, a new file      {n:7.2f} ms   overhead {100 * (n - p) / p:+.1f}%  (target <= 10%)")
    print(f"   with SQLite, the same file   {a:7.2f} ms   overhead {100 * (a - p) / p:+.1f}%")


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
        ids = []
        for start in range(0, len(records), 20000):
            q = S.records.insert().returning(S.records.c.id, sort_by_parameter_order=True)
            ids += [int(r[0]) for r in conn.execute(q, records[start : start + 20000])]
        inputs = [
            {"record_id": rid, "port": p, "digest": digests[p], "preview": preview(values[p])}
            for rid, (values, digests) in zip(ids, values_of)
            for p in rng_inputs
        ]
        for start in range(0, len(inputs), 20000):
            conn.execute(S.inputs.insert(), inputs[start : start + 20000])
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
    cat = sn.Catalog(url)
    cat.stats()
    barrier.wait()
    t = time.perf_counter()
    for p in paths:
        cat.record_workflow(p, label=wf.label, recipe=doc[WORKFLOW_KEY]["recipe"], nodes=nodes, backend="h5")
    out.put((worker, time.perf_counter() - t))


def bench_writers(url: str, name: str, directory: Path, workers: int = 6, count: int = 40) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(workers + 1), ctx.Queue()
    d = directory / f"writers-{name}"
    d.mkdir()
    procs = [ctx.Process(target=_writer, args=(url, str(d), w, count, barrier, out)) for w in range(workers)]
    for p in procs:
        p.start()
    barrier.wait()
    t = time.perf_counter()
    results = [out.get(timeout=600) for _ in procs]
    wall = time.perf_counter() - t
    for p in procs:
        p.join()
    cat = sn.Catalog(url)
    n = len(cat.find(node="_catalog_nodes.relax"))
    assert n == workers * count, (n, workers * count)
    runs = workers * count
    slowest = max(r[1] for r in results)
    print(f"   {name:10s}: {runs} runs ({3 * runs} node records) in {wall:.2f} s = {runs / wall:6.1f} runs/s, "
          f"{3 * runs / wall:6.1f} node records/s; slowest writer {slowest:.2f} s; none lost")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from _postgres import cluster, create_database

    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as tmp, cluster() as server:
        directory = Path(tmp)
        os.chdir(directory)
        bench_overhead(directory, args.repeat)
        print(f"2. queries among {args.nodes} recorded nodes, median of {args.repeat}")
        bench_queries(sn.Catalog(directory / "big.sqlite"), "SQLite", args.nodes, directory, args.repeat)
        bench_queries(
            sn.Catalog(create_database(server, "bench_big")), "PostgreSQL", args.nodes, directory, args.repeat
        )
        bench_index(directory, args.files)
        print("4. 6 processes recording workflows into one catalog at once")
        bench_writers(str(directory / "writers.sqlite"), "SQLite", directory)
        bench_writers(create_database(server, "bench_writers"), "PostgreSQL", directory)


if __name__ == "__main__":
    main()
