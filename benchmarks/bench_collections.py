"""Timings of collection operations on one large and many small members.

    python benchmarks/bench_collections.py [--mb 100] [--small 200]

Prints median seconds of 3 runs for: add (sha256 of the file), verify, export, opening the
bundle and loading a member from it (first load extracts and checks the member).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import storage_nodes as sn
from storage_nodes.collections.collection import Collection


def _median(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100, help="size of the large member in MB")
    parser.add_argument("--small", type=int, default=200, help="number of small json members")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        big = sn.save(np.random.default_rng(0).random(args.mb * 1024 * 1024 // 8), root / "big.pkl")
        smalls = [sn.save({"i": i, "energy": -float(i)}, root / f"s{i}.json") for i in range(args.small)]

        def build() -> Collection:
            manifest = root / "c.json"
            manifest.unlink(missing_ok=True)
            col = Collection.create(manifest)
            col.add(big, name="big")
            for p in smalls:
                col.add(p)
            return col

        print(f"add 1 x {args.mb} MB + {args.small} small members: {_median(build):.3f} s")
        col = build()
        print(f"verify: {_median(col.verify):.3f} s")
        bundle = root / "x.zip"
        print(f"export: {_median(lambda: col.export(bundle)):.3f} s ({bundle.stat().st_size / 1e6:.1f} MB)")

        def open_and_load() -> None:
            with Collection.open(bundle) as b:
                b.load("big")

        print(f"open bundle + first load of the large member: {_median(open_and_load):.3f} s")
        print(f"plain sn.load of the large member: {_median(lambda: sn.load(big)):.3f} s")
        with Collection.open(bundle) as b:
            print(f"verify bundle: {_median(b.verify):.3f} s")


if __name__ == "__main__":
    main()
