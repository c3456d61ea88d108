"""How fast the catalog's web page answers (printed figures, not timed tests).

Run: ``python benchmarks/bench_web.py [--runs 100000] [--nodes 200] [--repeat 15]``. Prints the
server's time (a real uvicorn server in this process, fetched over HTTP from 127.0.0.1;
medians) for:

1. the runs page of an SQLite catalog with ``--runs`` runs (2 node records of 3 inputs each
   per run, written in bulk into the documented tables with plain ``sqlite3``), filtered by
   one input value (50 runs match; target <= 300 ms); the same sorted by path; the first,
   unfiltered page (newest first); the stats page and its charts;
2. the page of one real run of ``--nodes`` nodes (a chain of ``relax`` nodes, saved with
   ``save_workflow``; target <= 500 ms), and its drawn workflow (``dot``), first and cached.

The bulk-filled runs point at files that do not exist (each shows as stale: a failed ``stat``);
the run of part 2 is a real file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from pathlib import Path
from typing import Any

from _timing import median_ms

import storage_nodes as sn
from storage_nodes.catalog.digest import digest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

PER_T = 50  # runs sharing one value of T


def _fill(path: Path, runs: int) -> None:
    """``runs`` runs of 2 nodes (make, relax), 3 inputs each, into the documented tables."""
    sn.Catalog(path, create=True).stats()  # creates the tables
    db = sqlite3.connect(path)
    created = datetime.datetime(2026, 11, 1)
    values = runs // PER_T
    t_digests = {v: digest(float(v)) for v in range(values)}
    n_digests = {n: digest(n) for n in (4, 8)}
    with db:
        db.executemany(
            "INSERT INTO sn_files (id, path, size, mtime_ns, content, backend, kind, workflow, metadata, created_by,"
            " host, created_at, recorded_by) VALUES (?, ?, 1000, ?, ?, 'h5', 'workflow', 'relax', ?, ?, 'bench', ?,"
            " 'save')",
            (
                (i + 1, f"/nonexistent/run{i}.h5", i, "0" * 64, json.dumps({"sample": f"S{i % 100}"}), f"user{i % 7}",
                 (created + datetime.timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f"))
                for i in range(runs)
            ),
        )  # fmt: skip
        db.executemany(
            "INSERT INTO sn_records (id, file_id, key, label, node, module, qualname, version, source, call, outputs,"
            " undigested, type) VALUES (?, ?, ?, ?, ?, 'bench', ?, '1.0', ?, NULL, ?, '[]', 'atomic')",
            (
                (2 * i + j + 1, i + 1, name, name, f"bench.{name}", name, "0" * 64, out)
                for i in range(runs)
                for j, (name, out) in enumerate((("make", '["structure"]'), ("relax", '["energy", "forces"]')))
            ),
        )  # fmt: skip
        db.executemany(
            "INSERT INTO sn_inputs (record_id, port, digest, preview) VALUES (?, ?, ?, ?)",
            (
                row
                for i in range(runs)
                for row in (
                    (2 * i + 1, "n", n_digests[4 + 4 * (i % 2)], json.dumps({"v": 4 + 4 * (i % 2)})),
                    (2 * i + 1, "a", t_digests[1], json.dumps({"v": 1.0})),
                    (2 * i + 1, "label", digest(f"s{i}"), json.dumps({"v": f"s{i}"})),
                    (2 * i + 2, "structure", None, json.dumps({"t": "numpy.ndarray float64 shape=(4, 3)"})),
                    (2 * i + 2, "T", t_digests[i % values], json.dumps({"v": float(i % values)})),
                    (2 * i + 2, "steps", n_digests[4], json.dumps({"v": 4})),
                )
            ),
        )
    db.close()


def _chain(n: int) -> Any:
    import pyiron_workflow as pwf
    from _catalog_nodes import make_structure, relax

    wf = pwf.Workflow("chain")
    wf.make = pwf.node(make_structure, n=4)
    previous = wf.make
    for i in range(n - 1):
        node = pwf.node(relax, structure=previous if i == 0 else previous.outputs.forces, T=300.0 + i)
        setattr(wf, f"relax{i:03d}", node)
        previous = node
    wf.run()
    return wf


class _Serving:
    """A uvicorn server of ``app`` on a free port in a thread of this process."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path) as r:
            return r.read()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from storage_nodes.web.app import create_app

    with tempfile.TemporaryDirectory(prefix="bench-web-") as d:
        where = Path(d)
        t = time.perf_counter()
        _fill(where / "big.sqlite", args.runs)
        print(f"1. runs page, SQLite catalog of {args.runs:,} runs ({2 * args.runs:,} node records, filled in "
              f"{time.perf_counter() - t:.1f} s)")  # fmt: skip
        cat = sn.Catalog(where / "big.sqlite")
        site = _Serving(create_app(cat))
        try:
            filtered = "/?input=T%3D7.0"
            page = site.get(filtered).decode()
            assert page.count('class="run"') == PER_T, page.count('class="run"')
            for name, path in (
                ("filtered by one input value (50 runs)", filtered),
                ("the same, sorted by path", filtered + "&sort=path&order=asc"),
                ("the same and a user (7 runs)", filtered + "&user=user3"),
                ("unfiltered, page 1 (newest first)", "/"),
                ("unfiltered, page 20", "/?page=20"),
            ):
                ms = median_ms(lambda p=path: site.get(p), args.repeat)
                print(f"   {name:42s} {ms:8.1f} ms")
            t = time.perf_counter()
            site.get("/stats")
            first = (time.perf_counter() - t) * 1e3
            t = time.perf_counter()
            site.get("/stats/nodes.svg")
            site.get("/stats/users.svg")
            charts = (time.perf_counter() - t) * 1e3
            print(f"   {'stats page (Catalog.stats) / its 2 charts':42s} {first:8.1f} ms / {charts:.1f} ms")
        finally:
            site.stop()
            cat.close()

        cat = sn.Catalog(where / "run.sqlite")
        t = time.perf_counter()
        wf = _chain(args.nodes)
        run_s = time.perf_counter() - t
        sn.save_workflow(wf, where / "chain.h5", catalog=cat)
        hit = min(cat.find(workflow="chain"), key=lambda h: h.record_id)
        from storage_nodes.web.rows import stamp

        site = _Serving(create_app(cat))
        try:
            run = f"/run/{hit.record_id}?at={stamp(hit.created_at)}"
            page = site.get(run).decode()
            assert page.count('class="output"') >= args.nodes, page.count('class="output"')
            size = (where / "chain.h5").stat().st_size
            print(f"2. a run of {args.nodes} nodes (ran in {run_s:.1f} s; file {size:,} B)")
            print(f"   {'run page':42s} {median_ms(lambda: site.get(run), args.repeat):8.1f} ms")
            drawing = f"/run/{hit.record_id}/workflow.svg?at={stamp(hit.created_at)}"
            t = time.perf_counter()
            svg = site.get(drawing)
            first = (time.perf_counter() - t) * 1e3
            print(f"   {'drawn workflow, first (dot)':42s} {first:8.1f} ms ({len(svg):,} B of SVG)")
            print(f"   {'drawn workflow, cached':42s} {median_ms(lambda: site.get(drawing), args.repeat):8.1f} ms")
            value = f"/value/{hit.record_id + 1}?at={stamp(hit.created_at)}&port=forces"
            ms = median_ms(lambda: site.get(value), args.repeat)
            print(f"   {'a value page (4x3 array, plot linked)':42s} {ms:8.1f} ms")
            plot = f"/value/{hit.record_id + 1}/plot.svg?at={stamp(hit.created_at)}&port=forces"
            print(f"   {'its plot (matplotlib SVG)':42s} {median_ms(lambda: site.get(plot), args.repeat):8.1f} ms")
        finally:
            site.stop()
            cat.close()


if __name__ == "__main__":
    main()
