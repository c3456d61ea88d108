"""What the environment record costs per save, against pickling a small object.

Run: ``python benchmarks/bench_record.py``. Prints medians (microseconds) of:

- ``pickle.dumps`` of a small object (the floor a save is compared with);
- ``environment_record`` for that object's module: first call in a process (cold: finds
  the distribution, parses the source file, imports dulwich, reads the git index and HEAD
  tree) and every later call (warm: kept while inotify reports no change);
- the same warm call without inotify (the per-save check: reads HEAD and stats the
  package's tracked files), and the git state after the index changed (the cold path in a
  process that has read it before: the index and HEAD's tree read again with dulwich);
- the same for a module of an installed package outside git (numpy);
- a whole ``sn.save`` with the pickle backend, and one with the record stubbed out;
- the load-time check (``current_record`` + ``compare``), which is always fresh.

The small object is a ``storage_nodes.listing.Entry``: its module lives in this
repository's git work tree when run from a checkout (the costly case: git state).
"""

from __future__ import annotations

import pickle
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _timing import median_ms

import storage_nodes as sn
from storage_nodes.backends import _framed
from storage_nodes.listing import Entry
from storage_nodes.provenance import _gitfiles, _watch, gitinfo, metadata, versioning


def median_us(fn: Callable[[], Any], repeat: int = 200) -> float:
    return 1e3 * median_ms(fn, repeat)


def cold_us(code: str, runs: int = 5) -> float:
    """Median time of ``code`` run once in each of ``runs`` fresh interpreters (after the imports), in us."""
    script = (
        "import time, storage_nodes, numpy\nfrom storage_nodes.provenance import metadata\n"
        f"t = time.perf_counter()\n{code}\nprint((time.perf_counter() - t) * 1e6)"
    )
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        times.append(float(out.stdout.strip()))
    return statistics.median(times)


def main() -> None:
    small = Entry(path="a/b", type="float", name="b", size=8)
    objs = [("storage_nodes.listing", "Entry")]
    np_objs = [("numpy", "ndarray"), ("numpy._core.multiarray", "_reconstruct")]
    rows: list[tuple[str, float]] = []
    rows.append(("pickle.dumps(small object)", median_us(lambda: pickle.dumps(small, protocol=5))))
    rows.append(("record, git module, cold (fresh process)", cold_us(f"metadata.environment_record({objs!r})")))
    metadata.environment_record(objs)
    rows.append(("record, git module, warm", median_us(lambda: metadata.environment_record(objs))))
    real_watcher = _watch.watcher
    _watch.watcher = lambda: None  # type: ignore[assignment]
    try:
        gitinfo.forget()
        rows.append(("record, git module, warm, no inotify", median_us(lambda: metadata.environment_record(objs))))
        package = Path(metadata.__file__).parent.parent  # storage_nodes/, the scope of "dirty"
        module_file = str(package / "listing.py")
        scope = str(package)

        def after_an_index_change() -> None:
            _gitfiles.read_index.cache_clear()
            _gitfiles.committed_blobs.cache_clear()
            gitinfo._plan.cache_clear()
            gitinfo.git_state(module_file, scope)

        rows.append(("git state after the index changed (in-process)", median_us(after_an_index_change, 20)))
    finally:
        _watch.watcher = real_watcher  # type: ignore[assignment]
        gitinfo.forget()
    rows.append(("record, numpy (no git), cold", cold_us(f"metadata.environment_record({np_objs!r})")))
    metadata.environment_record(np_objs)
    rows.append(("record, numpy (no git), warm", median_us(lambda: metadata.environment_record(np_objs))))
    rows.append(("record, no modules (plain data)", median_us(lambda: metadata.environment_record())))
    with tempfile.TemporaryDirectory() as d:
        target = Path(d) / "small.pkl"
        rows.append(("sn.save(small, .pkl) with record", median_us(lambda: sn.save(small, target), 100)))
        stub = {"modules": {}}
        real = _framed.environment_record
        _framed.environment_record = lambda *a, **k: stub  # type: ignore[assignment]
        try:
            rows.append(("sn.save(small, .pkl) record stubbed", median_us(lambda: sn.save(small, target), 100)))
        finally:
            _framed.environment_record = real
        sn.save({"a": small, "x": np.arange(3)}, target)
        stored = sn.environment(target)
        rows.append(
            (
                "load-time check (current_record + compare)",
                median_us(lambda: versioning.compare(stored, metadata.current_record(stored)), 50),
            )
        )
    width = max(len(name) for name, _ in rows)
    floor = rows[0][1]
    print(f"{'what':{width}s}  {'median us':>10s}  {'x pickle.dumps':>14s}")
    for name, us in rows:
        print(f"{name:{width}s}  {us:10.1f}  {us / floor:14.1f}")
    n_files = len(list(Path(metadata.__file__).parent.parent.rglob("*.py")))
    print(f"\n(the git module's package has {n_files} tracked .py files; warm cost grows with that count)")


if __name__ == "__main__":
    main()
