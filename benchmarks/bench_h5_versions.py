"""Compare the h5 backend of another checkout with this one, in one process.

    git archive main | tar -x -C /tmp/main        # the other version
    python benchmarks/bench_h5_versions.py /tmp/main/storage_nodes --repeat 15

The other checkout's package is copied under the name ``sn_other`` (its imports are
relative), so both versions run interleaved on the same objects in one process (who goes
first alternates): the machine's load hits both alike. For workloads (b)-(e) of ``bench_h5.py`` it prints the
median and minimum ``write`` and ``read`` times of each version's ``H5Backend`` (the format's cost, as
``bench_h5.py``'s "h5" row), pickle's, and this version's time over the other's.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import pickle
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_h5

from storage_nodes.backends.h5 import H5Backend

CLOCK = time.perf_counter


def _timed(fn: Any) -> float:
    gc.collect()
    start = CLOCK()
    fn()
    return CLOCK() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", help="the other checkout's storage_nodes package directory")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--only", default="bcde")
    parser.add_argument(
        "--cpu", action="store_true", help="time the process's CPU time (less moved by other processes on the machine)"
    )
    args = parser.parse_args(argv)
    global CLOCK
    if args.cpu:
        CLOCK = time.process_time
    tmp = Path(tempfile.mkdtemp(prefix="sn-versions-"))
    try:
        shutil.copytree(args.other, tmp / "pkg" / "sn_other")
        sys.path.insert(0, str(tmp / "pkg"))
        Other = importlib.import_module("sn_other.backends.h5").H5Backend
        versions = {"other": Other(), "this": H5Backend()}
        check = lambda env, modules: None  # noqa: E731
        makers = {
            "b": bench_h5.workload_b,
            "c": bench_h5.workload_c,
            "d": bench_h5.workload_d,
            "e": bench_h5.workload_e,
        }
        clock = ", CPU time" if args.cpu else ""
        print(f"# h5 write/read, median and min of {args.repeat} interleaved rounds (ms{clock})\n")
        print(
            "| workload | pickle save | other save | this save | this/other "
            "| pickle load | other load | this load | this/other |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for letter in args.only:
            obj = makers[letter]()
            times: dict[str, list[float]] = {}
            p = tmp / f"{letter}.pkl"
            for round_ in range(args.repeat):
                with open(p, "wb") as f:
                    times.setdefault("pickle save", []).append(
                        _timed(lambda f=f, o=obj: pickle.dump(o, f, protocol=5))  # type: ignore[misc]
                    )
                with open(p, "rb") as f:
                    times.setdefault("pickle load", []).append(_timed(lambda f=f: pickle.load(f)))  # type: ignore[misc]
                order = list(versions.items())
                for name, backend in order if round_ % 2 else order[::-1]:  # alternate who goes first
                    h = tmp / f"{letter}-{name}.h5"
                    h.unlink(missing_ok=True)
                    times.setdefault(f"{name} save", []).append(
                        _timed(lambda b=backend, h=h, o=obj: b.write(o, h, metadata={}, options={}))
                    )
                    times.setdefault(f"{name} load", []).append(
                        _timed(lambda b=backend, h=h: b.read(h, key=None, safe=False, check=check))
                    )
            for label, pick in (("median", statistics.median), ("min", min)):
                m = {k: pick(v) * 1e3 for k, v in times.items()}
                print(
                    f"| ({letter}) {label} | {m['pickle save']:.2f} | {m['other save']:.2f} | {m['this save']:.2f} | "
                    f"{m['this save'] / m['other save']:.3f} | {m['pickle load']:.2f} | {m['other load']:.2f} | "
                    f"{m['this load']:.2f} | {m['this load'] / m['other load']:.3f} |"
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
