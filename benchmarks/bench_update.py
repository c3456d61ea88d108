"""Benchmark partial updates of h5 archives: in place (the journal) against copying the file.

Run from a checkout::

    python benchmarks/bench_update.py              # a 1 GB archive, 1,000 appends
    python benchmarks/bench_update.py --gb 0.1 --appends 400   # quicker
    python benchmarks/bench_update.py --only block     # one `with sn.open(p, "a")` block
    python benchmarks/bench_update.py --only filter --mb 500   # save_workflow(data_filter=)

Everything runs in this one process; "copy" is the previous way (copy the file, modify the
copy, replace the original), forced by turning in-place updates off. Prints markdown
tables (paste them into docs/performance.md). Check free space first: the big archive is
written to ``--dir`` (default: the system's temporary directory) and deleted afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
from _timing import median_ms

import storage_nodes as sn
from storage_nodes.backends.h5 import journal


@contextlib.contextmanager
def copying() -> Iterator[None]:
    """Partial updates copy the whole file, as before in-place updates (and readers take no lock)."""
    saved = journal.fcntl
    journal.fcntl = None  # type: ignore[assignment]
    try:
        yield
    finally:
        journal.fcntl = saved


def big_update(d: Path, gb: float, repeat: int) -> None:
    n = int(gb * (1 << 30)) // 8
    path = d / "big.h5"
    t = time.perf_counter()
    sn.save({"big": np.ones(n), "small": {"e": 0.0, "steps": [1, 2, 3]}}, path)
    print(f"wrote a {path.stat().st_size / 1e9:.2f} GB archive in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    counter = iter(range(1, 1 << 30))
    in_place = median_ms(lambda: sn.save(float(next(counter)), path, key="small/e"), repeat)
    with copying():
        copy = median_ms(lambda: sn.save(float(next(counter)), path, key="small/e"), max(3, repeat // 5))
    in_place_entry = median_ms(lambda: sn.save({"x": list(range(100))}, path, key=f"new{next(counter)}"), repeat)
    alone = median_ms(lambda: sn.save({"e": 1.0}, d / "alone.h5"), repeat)
    assert sn.load(path, key="small/steps") == [1, 2, 3]
    path.unlink()
    print(f"\n### one small entry updated in a {gb:g} GB archive (median ms)\n")
    print("| | ms | vs saving the value alone |")
    print("|---|---|---|")
    print(f"| `save(x, 'big.h5', key='small/e')`, in place | {in_place:.2f} | {in_place / alone:.1f}x |")
    print(f"| the same, adding a new entry (a list of 100) | {in_place_entry:.2f} | {in_place_entry / alone:.1f}x |")
    print(f"| the same update by copying the file (before) | {copy:.0f} | {copy / alone:.0f}x |")
    print(f"| `save({{'e': 1.0}}, 'alone.h5')` (a whole small file) | {alone:.2f} | 1x |")
    print(f"\nin place is {copy / in_place:.0f}x faster than copying")


def appends(d: Path, count: int, marks: list[int]) -> None:
    rows = {}
    for label, ctx in (("in place", contextlib.nullcontext), ("copy (before)", copying)):
        path = d / f"appends-{label[:4]}.h5"
        sn.save({"start": 0}, path)
        totals = {}
        with ctx():
            t0 = time.perf_counter()
            for i in range(1, count + 1):
                sn.save({"i": i, "a": np.arange(1000.0) + i}, path, key=f"e{i}")
                if i in marks:
                    totals[i] = time.perf_counter() - t0
        assert sn.load(path, key=f"e{count}")["i"] == count
        rows[label] = (totals, path.stat().st_size)
        path.unlink()
    print(f"\n### {count} appends of an 8 KB entry to one archive (total seconds)\n")
    print("| | " + " | ".join(str(m) for m in marks) + " | last 2x / first | file MB |")
    print("|---|" + "---|" * (len(marks) + 2))
    for label, (totals, size) in rows.items():
        ratio = totals[marks[-1]] / totals[marks[-2]] if len(marks) > 1 else float("nan")
        cells = " | ".join(f"{totals[m]:.2f}" for m in marks)
        print(f"| {label} | {cells} | {ratio:.2f} | {size / 1e6:.1f} |")
    print("\n(the column before the last: total at the last mark over the total at the one before;")
    print(" 2.0 is linear for marks doubling)")


def block(d: Path, count: int, rounds: int) -> None:
    """``count`` assignments in one ``with sn.open(p, "a")`` block, against as many separate keyed
    saves and against h5py writing the same values as datasets into one open file."""
    values = {f"e{i}": np.arange(1000.0) + i for i in range(count)}

    def one_block() -> None:
        path = d / "block.h5"
        path.unlink(missing_ok=True)
        sn.save({"start": 0}, path)
        with sn.open(path, "a") as s:
            for k, v in values.items():
                s[k] = v

    def separate() -> None:
        path = d / "separate.h5"
        path.unlink(missing_ok=True)
        sn.save({"start": 0}, path)
        for k, v in values.items():
            sn.save(v, path, key=k)

    def plain_h5py() -> None:
        path = d / "h5py.h5"
        path.unlink(missing_ok=True)
        with h5py.File(path, "w") as f:
            f["start"] = 0
            for k, v in values.items():
                f.create_dataset(k, data=v)

    times: dict[str, list[float]] = {"block": [], "separate": [], "h5py": []}
    for _ in range(rounds):  # interleaved, so that load changes hit all alike
        for name, fn in (("block", one_block), ("separate", separate), ("h5py", plain_h5py)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    back = sn.load(d / "block.h5")
    assert len(back) == count + 1 and np.array_equal(back[f"e{count - 1}"], values[f"e{count - 1}"])
    b, sep, h = (statistics.median(times[n]) for n in ("block", "separate", "h5py"))
    print(f"\n### {count} assignments of an 8 KB array to one archive (median of {rounds}, seconds)\n")
    print("| | s | block vs this |")
    print("|---|---|---|")
    print(f"| one `with sn.open(p, 'a')` block | {b:.3f} | 1x |")
    print(f"| {count} separate `sn.save(v, p, key=k)` | {sep:.3f} | {sep / b:.1f}x faster |")
    print(f"| h5py: `create_dataset` each, one open file | {h:.3f} | {b / h:.2f}x the time |")


def filtered(d: Path, mb: float, rounds: int) -> None:
    """``save_workflow`` of a workflow with an intermediate array of ``mb`` MB, its array filtered,
    against the same workflow run on an array of 8 bytes, unfiltered."""
    import pyiron_workflow as pwf
    from _filter_nodes import reduce, simulate

    def ran(n: int) -> pwf.Workflow:
        wf = pwf.Workflow("md")
        wf.sim = pwf.node(simulate, n=n)
        wf.mean = pwf.node(reduce, trajectory=wf.sim)
        wf.set_outputs_to_unconnected_child_output()
        wf.run()
        return wf

    big, small = ran(int(mb * 1e6) // 8), ran(1)
    times: dict[str, list[float]] = {"filtered": [], "small": []}
    for _ in range(rounds):  # interleaved
        for name, fn in (
            ("filtered", lambda: sn.save_workflow(big, d / "filtered.h5", data_filter=r"^sim\.trajectory$")),
            ("small", lambda: sn.save_workflow(small, d / "small.h5")),
        ):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    assert sn.load(d / "filtered.h5", key="mean/outputs/mean") == 0.5
    f, s = statistics.median(times["filtered"]), statistics.median(times["small"])
    sizes = ((d / "filtered.h5").stat().st_size, (d / "small.h5").stat().st_size)
    print(f"\n### save_workflow with a {mb:g} MB intermediate array filtered out (median of {rounds}, ms)\n")
    print("| | ms | file KB |")
    print("|---|---|---|")
    print(f"| {mb:g} MB array, `data_filter=r'^sim\\.trajectory$'` | {f * 1e3:.1f} | {sizes[0] / 1e3:.1f} |")
    print(f"| the same workflow on an 8-byte array, unfiltered | {s * 1e3:.1f} | {sizes[1] / 1e3:.1f} |")
    print(f"\nratio {f / s:.3f}")


def read_overhead(d: Path, repeat: int, rounds: int) -> None:
    path = sn.save({"big": np.arange(100_000.0), "small": {"e": -3.2, "steps": [1, 2, 3]}}, d / "read.h5")
    sn.save(1.0, path, key="small/e")
    cases = {
        "load(key='small/e')": lambda: sn.load(path, key="small/e", version_policy="ignore"),
        "load() whole (800 KB array)": lambda: sn.load(path, version_policy="ignore"),
        "inspect()": lambda: sn.inspect(path),
    }
    print("\n### the reader's lock (shared flock on the archive): reads with and without it (median ms)\n")
    print("| read | with lock | without | ratio |")
    print("|---|---|---|---|")
    for name, fn in cases.items():
        with_lock, without = [], []
        for _ in range(rounds):  # interleaved, so that load changes hit both alike
            with_lock.append(median_ms(fn, repeat))
            with copying():
                without.append(median_ms(fn, repeat))
        a, b = statistics.median(with_lock), statistics.median(without)
        print(f"| `{name}` | {a:.3f} | {b:.3f} | {a / b:.3f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0, help="size of the big archive (GB)")
    parser.add_argument("--appends", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--only", choices=["block", "filter"], default=None, help="run one section only")
    parser.add_argument("--mb", type=float, default=500.0, help="size of the filtered intermediate array (MB)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the block section")
    args = parser.parse_args(argv)
    d = Path(tempfile.mkdtemp(prefix="bench-update-", dir=args.dir))
    try:
        free = shutil.disk_usage(d).free
        if args.only == "block":
            block(d, args.appends, args.rounds)
            return 0
        if args.only == "filter":
            filtered(d, args.mb, max(args.rounds, 5))
            return 0
        if not args.skip_big:
            if free < 3 * args.gb * (1 << 30):
                print(f"only {free / 1e9:.1f} GB free in {d}: need 3x --gb", file=sys.stderr)
                return 1
            big_update(d, args.gb, args.repeat)
        marks = [args.appends // 4, args.appends // 2, args.appends]
        appends(d, args.appends, marks)
        block(d, args.appends, args.rounds)
        filtered(d, args.mb, max(args.rounds, 5))
        read_overhead(d, 200, 7)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
