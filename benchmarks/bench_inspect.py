"""Benchmark ``inspect`` of big archives against a full ``pickle.load`` of the same data (issue #15).

Run from a checkout::

    python benchmarks/bench_inspect.py                # 9 rounds, medians
    python benchmarks/bench_inspect.py --backends h5 json pickle

Two workloads: a list of 5,000 small records (``{"id", "name", "e", "tags"}``, 35,000
entries) and workload (b) of ``bench_h5.py`` (a dict of 10,000 small entries, 17,500
entries). Per file, in interleaved rounds in this one process: ``pickle.load`` of the
same object from a file, ``sn.inspect(path)`` (building the listing), ``str(sn.inspect(path))``
(building and printing it, what ``storage-nodes inspect`` does) and
``sn.inspect(path).to_json()`` (the complete listing, what ``--json`` prints). Prints a
markdown table of medians and ratios to ``pickle.load``. It uses only API that older
versions have, so the same script measures the code before a change
(``PYTHONPATH=/path/to/old/checkout python benchmarks/bench_inspect.py``).
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import storage_nodes as sn

sys.path.insert(0, str(Path(__file__).parent))
from bench_h5 import workload_b

SUFFIX = {"h5": "h5", "json": "json", "pickle": "pkl"}


def records() -> list[dict[str, Any]]:
    return [{"id": i, "name": f"r{i}", "e": -1.5 * i, "tags": ["a", "b"]} for i in range(5000)]


def _once(fn: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(directory: Path, name: str, obj: Any, backends: list[str], rounds: int) -> list[str]:
    pkl = directory / f"{name}.pickle"
    pkl.write_bytes(pickle.dumps(obj, protocol=5))

    def pickle_load() -> Any:
        with open(pkl, "rb") as f:
            return pickle.load(f)

    cases: dict[str, Callable[[], Any]] = {"pickle.load": pickle_load}
    for backend in backends:
        path = sn.save(obj, directory / f"{name}.{SUFFIX[backend]}")
        cases[f"{backend} inspect"] = lambda path=path: sn.inspect(path)
        cases[f"{backend} str(inspect)"] = lambda path=path: str(sn.inspect(path))
        cases[f"{backend} inspect().to_json()"] = lambda path=path: sn.inspect(path).to_json()
    for fn in cases.values():  # warm: imports, first-use caches
        fn()
    times: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(rounds):
        for label, fn in cases.items():
            times[label].append(_once(fn))
    med = {label: statistics.median(t) for label, t in times.items()}
    base = med["pickle.load"]
    rows = [f"| {label} | {t * 1e3:.2f} | {t / base:.2f} |" for label, t in med.items()]
    lines = [f"\n#### {name}\n", "| what | ms | / pickle.load |", "|---|---|---|", *rows]
    for backend in backends:
        path = directory / f"{name}.{SUFFIX[backend]}"
        listing = sn.inspect(path)
        printed = str(listing).count("\n") + 1
        entries = sum(1 for _ in listing.root.walk())
        lines.append(f"\n{backend}: {entries:,} entries listed, {printed:,} lines printed")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--backends", nargs="+", default=["h5"], choices=sorted(SUFFIX))
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="sn-bench-inspect-", dir=os.environ.get("SN_BENCH_DIR")))
    try:
        print(f"# inspect benchmark: {args.rounds} interleaved rounds, medians; python {sys.version.split()[0]}")
        print(f"storage_nodes from {Path(sn.__file__).parent}")
        for name, make in (("5,000 records", records), ("(b) dict of 10,000 small entries", workload_b)):
            print("\n".join(measure(directory, name, make(), args.backends, args.rounds)))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
