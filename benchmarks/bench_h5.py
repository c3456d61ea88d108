"""Benchmark the ``h5`` archive against pickle, cloudpickle and bagofholding.

Run from a checkout with the ``benchmark`` extra installed::

    python benchmarks/bench_h5.py                 # 7 repeats, medians
    python benchmarks/bench_h5.py --repeat 3 --quick   # smaller (a), bagofholding once
    python benchmarks/bench_h5.py --only e --clock cpu  # CPU time instead of wall time
    python benchmarks/bench_h5.py --scientific --only ""  # only the DataFrame and Atoms section

Everything is measured in this one process on the same data; ratios are to pickle
(protocol 5, ``pickle.dump``/``pickle.load`` on a file). ``h5`` is timed through the
backend's ``write``/``read`` (the format's cost, like ``pickle.dump``) and through
``storage_nodes.save``/``load`` (which add argument checks, the environment record and an atomic replace).
Prints markdown tables (paste them into docs/performance.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import pickle
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np

import storage_nodes as sn
from storage_nodes.backends.h5 import H5Backend
from storage_nodes.provenance.metadata import ObjectCollector, environment_record

try:
    from bagofholding import H5Bag
except ImportError:  # pragma: no cover - the benchmark extra is missing
    H5Bag = None


@dataclasses.dataclass
class Leaf:
    name: str
    value: float
    data: np.ndarray


@dataclasses.dataclass
class Branch:
    name: str
    children: list[Any]


def workload_a(quick: bool) -> np.ndarray:
    n = (10 if quick else 100) * 1024 * 1024 // 8
    return np.random.default_rng(0).random(n)


def workload_b() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(10_000):
        r = i % 4
        out[f"key{i}"] = i if r == 0 else i * 0.5 if r == 1 else f"s{i}" if r == 2 else [i, i + 1.5, "x"]
    return out


def workload_c() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.random(1000) for _ in range(1000)]


def workload_d() -> Branch:
    rng = np.random.default_rng(2)
    branches = [Branch(f"b{j}", [Leaf(f"l{j}-{i}", float(i), rng.random(10)) for i in range(30)]) for j in range(10)]
    return Branch("root", branches)


def workload_e() -> Any:
    import pyiron_workflow as pwf

    from storage_nodes.demo import harmonic_energy, random_positions

    wf = pwf.Workflow("bench")
    wf.positions = pwf.node(random_positions, n=64, seed=1)
    wf.soft = pwf.node(harmonic_energy, positions=wf.positions, k=1.0)
    wf.stiff = pwf.node(harmonic_energy, positions=wf.positions, k=10.0)
    wf.other = pwf.node(random_positions, n=8, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return wf.run()


#: what the timings read: wall-clock time, or with ``--clock cpu`` this process's CPU time
#: (user + system; leaves out waits for the CPU and the disk, for a machine shared with others)
CLOCK: Callable[[], float] = time.perf_counter


def median_time(fn: Callable[[], Any], repeat: int, before: Callable[[], Any] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        gc.collect()
        start = CLOCK()
        fn()
        times.append(CLOCK() - start)
    return statistics.median(times)


class Runner:
    def __init__(self, directory: Path, repeat: int, boh_repeat: int) -> None:
        self.dir = directory
        self.repeat = repeat
        self.boh_repeat = boh_repeat
        self.h5 = H5Backend()

    def _unlink(self, path: Path) -> Callable[[], None]:
        return lambda: path.unlink(missing_ok=True)

    def measure(self, name: str, obj: Any) -> dict[str, tuple[float, float, int]]:
        """Save and load times (medians) and file sizes, backends interleaved in each round
        so that load from other processes on a shared machine hits all of them alike."""
        d = self.dir
        check = lambda env, modules: None  # noqa: E731 - the version check is measured separately
        p, c, h, s = d / f"{name}.pkl", d / f"{name}.cpkl", d / f"{name}.h5", d / f"{name}-api.h5"

        def pkl_save() -> None:
            with open(p, "wb") as f:
                pickle.dump(obj, f, protocol=5)

        def pkl_load() -> Any:
            with open(p, "rb") as f:
                return pickle.load(f)

        def cp_save() -> None:
            with open(c, "wb") as f:
                cloudpickle.dump(obj, f, protocol=5)

        def cp_load() -> Any:
            with open(c, "rb") as f:
                return pickle.load(f)

        def h5_save() -> None:
            h.unlink(missing_ok=True)
            self.h5.write(obj, h, metadata={}, options={})

        def api_save() -> None:
            s.unlink(missing_ok=True)
            sn.save(obj, s)

        backends: dict[str, tuple[Callable[[], Any], Callable[[], Any], Path]] = {
            "pickle": (pkl_save, pkl_load, p),
            "cloudpickle": (cp_save, cp_load, c),
            "h5": (h5_save, lambda: self.h5.read(h, key=None, safe=False, check=check), h),
            "h5 via sn.save/load": (api_save, lambda: sn.load(s, version_policy="ignore"), s),
        }
        times: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in backends}
        for _ in range(self.repeat):
            for n, (save, load, _) in backends.items():
                times[n][0].append(median_time(save, 1))
                times[n][1].append(median_time(load, 1))
        out = {
            n: (statistics.median(times[n][0]), statistics.median(times[n][1]), backends[n][2].stat().st_size)
            for n in backends
        }
        if H5Bag is not None:
            b = d / f"{name}-boh.h5"
            try:
                save = median_time(lambda: H5Bag.save(obj, b), self.boh_repeat, self._unlink(b))
                try:
                    load = median_time(lambda: H5Bag(b).load(), self.boh_repeat)
                except Exception as exc:  # bagofholding cannot load some objects (e.g. __slots__)
                    print(f"  bagofholding cannot load {name}: {type(exc).__name__}: {str(exc)[:80]}", file=sys.stderr)
                    load = float("nan")
                out["bagofholding"] = (save, load, b.stat().st_size)
            except Exception as exc:
                print(f"  bagofholding cannot save {name}: {type(exc).__name__}: {str(exc)[:80]}", file=sys.stderr)
        return out


def _ms(x: float) -> str:
    return "n/a" if x != x else f"{x * 1e3:.2f}"


def report(name: str, rows: dict[str, tuple[float, float, int]]) -> None:
    ps, pl, pz = rows["pickle"]
    print(f"\n### {name}\n")
    print("| backend | save ms | load ms | size MB | save / pickle | load / pickle | size / pickle |")
    print("|---|---|---|---|---|---|---|")
    for backend, (s, ld, z) in rows.items():
        print(
            f"| {backend} | {_ms(s)} | {_ms(ld)} | {z / 1e6:.3f} | {s / ps:.2f} | "
            f"{'n/a' if ld != ld else f'{ld / pl:.2f}'} | {z / pz:.2f} |"
        )
    if "bagofholding" in rows:
        bs, bl, _ = rows["bagofholding"]
        hs, hl, _ = rows["h5"]
        if bl == bl:
            print(f"\nbagofholding / h5 on save+load: {(bs + bl) / (hs + hl):.0f}x")
        else:
            print(f"\nbagofholding / h5 on save: {bs / hs:.0f}x (bagofholding cannot load it)")


def partial(runner: Runner, quick: bool) -> None:
    d = runner.dir
    obj = {"big": workload_a(quick), "small": {"energy": -3.25, "steps": [1, 2, 3]}}
    p = d / "partial.pkl"
    with open(p, "wb") as f:
        pickle.dump(obj, f, protocol=5)
    h = sn.save(obj, d / "partial.h5")
    r = runner.repeat
    full_pickle = median_time(lambda: pickle.loads(p.read_bytes()), r)
    h5_partial = median_time(lambda: sn.load(h, key="small/energy", version_policy="ignore"), r)
    print("\n### partial load of one small entry next to a big array\n")
    print("| what | ms | pickle full load / this |")
    print("|---|---|---|")
    print(f"| pickle, full load | {_ms(full_pickle)} | 1 |")
    print(f"| h5 `load(key='small/energy')` | {_ms(h5_partial)} | {full_pickle / h5_partial:.0f}x |")
    if H5Bag is not None:
        b = d / "partial-boh.h5"
        H5Bag.save(obj, b)
        try:
            boh = median_time(lambda: H5Bag(b).load("object/small/energy"), r)
            print(f"| bagofholding `load('object/small/energy')` | {_ms(boh)} | {full_pickle / boh:.0f}x |")
        except Exception as exc:
            print(f"  bagofholding partial load failed: {exc}", file=sys.stderr)


def browse(runner: Runner) -> None:
    d = runner.dir
    obj = workload_b()
    h = sn.save(obj, d / "browse.h5")
    p = d / "browse.pkl"
    with open(p, "wb") as f:
        pickle.dump(obj, f, protocol=5)

    def pickle_load() -> Any:
        with open(p, "rb") as f:
            return pickle.load(f)

    r = runner.repeat
    t_pickle = median_time(pickle_load, r)
    t_inspect = median_time(lambda: sn.inspect(h), r)
    t_print = median_time(lambda: str(sn.inspect(h)), r)
    t_json = median_time(lambda: sn.inspect(h).to_json(), r)
    t_open = median_time(lambda: sn.open(h)["key123"].load(), r)
    t_key = median_time(lambda: sn.load(h, key="key123", version_policy="ignore"), r)
    print("\n### browsing (b), a dict of 10,000 entries\n")
    print("| what | ms | / pickle.load |")
    print("|---|---|---|")
    print(f"| pickle, full load | {_ms(t_pickle)} | 1.00 |")
    for label, t in (
        ("h5 `inspect` (the listing, 17,500 entries, built when reached)", t_inspect),
        ("h5 `str(inspect(path))` (the printed summary)", t_print),
        ("h5 `inspect(path).to_json()` (every entry)", t_json),
        ("h5 `open(path)['key123'].load()`", t_open),
        ("h5 `load(key='key123')`", t_key),
    ):
        print(f"| {label} | {_ms(t)} | {t / t_pickle:.2f} |")
    if H5Bag is not None:
        b = d / "browse-boh.h5"
        H5Bag.save(obj, b)
        t_boh = median_time(lambda: H5Bag(b).list_paths(), runner.boh_repeat)
        print(f"| bagofholding `list_paths()` | {_ms(t_boh)} | {t_boh / t_pickle:.2f} |")


def environment_cost(run: Any, repeat: int) -> None:
    from storage_nodes.backends.h5.encoder import Encoder

    collector = ObjectCollector()
    Encoder(heap_name="heap_0", array_prefix="array_", next_array=0, next_id=0, classes=[], collector=collector).encode(
        run
    )
    start = CLOCK()
    environment_record(collector.objects, backend="h5", format_version=1)
    cold = CLOCK() - start
    warm = median_time(lambda: environment_record(collector.objects, backend="h5", format_version=1), repeat)
    print("\n### environment record\n")
    print(f"{len(collector.objects)} classes from {len({m for m, _ in collector.objects})} modules (workload e): ")
    print(f"first record in the process {_ms(cold)} ms, later records {_ms(warm)} ms (per-process caches).")


def _frame(rows: int) -> Any:
    """``rows`` x 10 mixed dtypes: float64 x3, int64 x2, int32, bool, datetime64, category, str."""
    import pandas as pd

    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.random(rows),
            "y": rng.random(rows),
            "z": rng.normal(size=rows),
            "step": np.arange(rows, dtype=np.int64),
            "seed": rng.integers(0, 1 << 40, rows),
            "n": rng.integers(0, 1000, rows, dtype=np.int32),
            "ok": rng.random(rows) > 0.5,
            "when": pd.date_range("2026-01-01", periods=rows, freq="s").to_numpy(),
            "kind": pd.Categorical(rng.choice(["bcc", "fcc", "hcp", "liquid"], rows)),
            "label": pd.array([f"run-{i:07d}" for i in range(rows)], dtype="str"),
        }
    )


def scientific(repeat: int, rows: int) -> None:
    """A DataFrame vs DataFrame.to_pickle/read_pickle and to_parquet/read_parquet (pyarrow);
    ase.Atoms (10,000 atoms, and 100 small ones) vs pickle. ``sn.save``/``sn.load``, whole files."""
    import ase.build
    import pandas as pd
    from ase.calculators.singlepoint import SinglePointCalculator

    d = Path(tempfile.mkdtemp(prefix="sn-bench-sci-", dir=os.environ.get("SN_BENCH_DIR")))
    try:
        df = _frame(rows)
        pkl, parquet, h5 = d / "df.pkl", d / "df.parquet", d / "df.h5"
        rounds: dict[str, list[float]] = {}

        def timed(name: str, fn: Callable[[], Any]) -> None:
            gc.collect()
            start = CLOCK()
            fn()
            rounds.setdefault(name, []).append(CLOCK() - start)

        backend, raw_h5 = H5Backend(), d / "df-backend.h5"
        check = lambda env, modules: None  # noqa: E731 - as in Runner.measure

        def backend_write() -> None:
            raw_h5.unlink(missing_ok=True)
            backend.write(df, raw_h5, metadata={}, options={})

        # one untimed round first: the first calls import pyarrow, hash module sources for the
        # environment record and warm HDF5 (once per process, not per save)
        df.to_pickle(pkl), sn.save(df, h5), backend_write(), pd.read_pickle(pkl), sn.load(h5)
        for _ in range(repeat):  # pickle and h5 interleaved, as in Runner.measure
            timed("pickle save", lambda: df.to_pickle(pkl))
            timed("h5 save", lambda: sn.save(df, h5))
            timed("h5 write save", backend_write)
            timed("pickle load", lambda: pd.read_pickle(pkl))
            timed("h5 load", lambda: sn.load(h5))
            timed("h5 write load", lambda: backend.read(raw_h5, key=None, safe=False, check=check))
            timed("h5 load safe", lambda: sn.load(h5, safe=True))
            timed("h5 one column", lambda: sn.load(h5, key="x"))
        # parquet after them, not interleaved: pyarrow's threads and memory pool go on working
        # after read_parquet returns, which slowed whatever ran next 2-4x on this 2-core machine
        for _ in range(repeat):
            timed("parquet save", lambda: df.to_parquet(parquet))
            timed("parquet load", lambda: pd.read_parquet(parquet))
            timed("parquet one column", lambda: pd.read_parquet(parquet, columns=["x"]))
        back = sn.load(h5, safe=True)
        pd.testing.assert_frame_equal(back, df, check_exact=True)
        med = {k: statistics.median(v) for k, v in rounds.items()}
        if os.environ.get("SN_BENCH_SAMPLES"):
            print({k: [round(x * 1e3) for x in v] for k, v in rounds.items()})
        sizes = {"pickle": pkl.stat().st_size, "parquet": parquet.stat().st_size, "h5": h5.stat().st_size}
        in_memory = df.memory_usage(deep=True).sum() / 1e6
        print(f"\n### DataFrame {rows:,} rows x 10 mixed-dtype columns ({in_memory:.0f} MB in memory)\n")
        print("| | save ms | load ms | size MB | save / pickle | load / pickle | size / pickle |")
        print("|---|---|---|---|---|---|---|")
        sizes["h5 write"] = raw_h5.stat().st_size
        labels = {"h5": "h5 via sn.save/load", "h5 write": "h5 (backend write/read)"}
        for name in ("pickle", "parquet", "h5", "h5 write"):
            print(
                f"| {labels.get(name, name)} | {_ms(med[name + ' save'])} | {_ms(med[name + ' load'])} | "
                f"{sizes[name] / 1e6:.1f} | "
                f"{med[name + ' save'] / med['pickle save']:.2f} | {med[name + ' load'] / med['pickle load']:.2f} | "
                f"{sizes[name] / sizes['pickle']:.3f} |"
            )
        safe = med["h5 load safe"]
        print(f"| h5 via sn.load(safe=True) | | {_ms(safe)} | | | {safe / med['pickle load']:.2f} | |")
        print(
            f'\none float64 column: h5 `load(key="x")` {_ms(med["h5 one column"])} ms '
            f"({med['pickle load'] / med['h5 one column']:.1f}x faster than a full read_pickle), "
            f'read_parquet(columns=["x"]) {_ms(med["parquet one column"])} ms'
        )

        big = ase.build.bulk("Cu", cubic=True).repeat((13, 14, 14))
        big.rattle(0.01, seed=1)
        big.calc = SinglePointCalculator(big, energy=-1.0, forces=np.zeros((len(big), 3)))
        small = [ase.build.molecule("H2O") for _ in range(100)]
        for i, atoms in enumerate(small):
            atoms.rattle(0.01, seed=i)
            atoms.info["id"] = i
        print("\n### ase.Atoms\n")
        print(
            "| | pickle save ms | pickle load ms | h5 save ms | h5 load ms | save / pickle | load / pickle "
            "| size / pickle |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for title, obj in ((f"one Atoms of {len(big):,} atoms", big), ("100 Atoms of 3 atoms", small)):
            rounds.clear()
            sn.load(sn.save(obj, h5), safe=True)  # untimed: the first call imports ase's calculators
            for _ in range(repeat):
                timed("pickle save", lambda obj=obj: pkl.write_bytes(pickle.dumps(obj, protocol=5)))
                timed("h5 save", lambda obj=obj: sn.save(obj, h5))
                timed("pickle load", lambda: pickle.loads(pkl.read_bytes()))
                timed("h5 load", lambda: sn.load(h5, safe=True))
            med = {k: statistics.median(v) for k, v in rounds.items()}
            ratio = h5.stat().st_size / pkl.stat().st_size
            print(
                f"| {title} | {_ms(med['pickle save'])} | {_ms(med['pickle load'])} | {_ms(med['h5 save'])} | "
                f"{_ms(med['h5 load'])} | {med['h5 save'] / med['pickle save']:.2f} | "
                f"{med['h5 load'] / med['pickle load']:.2f} | {ratio:.2f} |"
            )
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--boh-repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10 MB instead of 100 MB for (a)")
    parser.add_argument("--only", default="abcde", help="workloads to run, e.g. 'bd'")
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="cpu: this process's CPU time (a loaded machine)"
    )
    parser.add_argument(
        "--scientific", action="store_true", help="also a DataFrame (vs to_pickle and to_parquet) and ase.Atoms"
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the --scientific DataFrame")
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    directory = Path(tempfile.mkdtemp(prefix="sn-bench-", dir=os.environ.get("SN_BENCH_DIR")))
    try:
        runner = Runner(directory, args.repeat, args.boh_repeat)
        print(f"# h5 benchmark: {args.repeat} repeats, medians of {args.clock} time; python {sys.version.split()[0]}")
        workloads: dict[str, tuple[str, Callable[[], Any]]] = {
            "a": (
                "(a) one 100 MB float64 array" if not args.quick else "(a) one 10 MB float64 array",
                lambda: workload_a(args.quick),
            ),
            "b": ("(b) dict of 10,000 small entries", workload_b),
            "c": ("(c) list of 1,000 arrays of 1,000 floats", workload_c),
            "d": ("(d) tree of 311 dataclasses with small arrays", workload_d),
            "e": ("(e) Run of a 4-node pyiron_workflow workflow", workload_e),
        }
        run = None
        for letter in args.only:
            title, make = workloads[letter]
            obj = make()
            if letter == "e":
                run = obj
            report(title, runner.measure(letter, obj))
        if args.only:
            partial(runner, args.quick)
            browse(runner)
            environment_cost(run if run is not None else workload_e(), args.repeat)
        if args.scientific:
            scientific(args.repeat, args.rows)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
