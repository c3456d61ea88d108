"""Benchmark fleche caching with our value storage against fleche's pickle and bagofholding storages.

Run from a checkout with the ``test`` and ``benchmark`` extras installed::

    python benchmarks/bench_fleche.py               # 7 repeats, medians
    python benchmarks/bench_fleche.py --repeat 3    # quicker

Workloads (b), (d), (e) of ``bench_h5.py`` are the results of a fleche-cached function;
(f) is issue 26's real-node workload, the equation of state of ``tests/_eos_nodes.py`` (an
engine holding an ASE EMT calculator and a results dict, real ``ase.Atoms``, a for-each of
9 ``calculate`` nodes on pyiron_workflow's threads), run cold and warm with
``RunConfig(fleche_cache=...)``; (g) the same with an engine that names its calculator
class instead of holding an EMT calculator (which pickle cannot store). Their tables also
count the calls the warm run executed.
A *cold* run calls it on an empty cache (the body returns the prebuilt object; fleche
digests it and stores the call and the value); a *warm* run calls it again on the filled
cache (fleche finds the call and loads the value). Every value storage gets the same SQLite
call storage (fleche's ``sql``), all are timed in this one process, interleaved in each
round; ratios are to fleche's ``pickle`` storage. fleche's storages run with their
defaults (``remaining_depth=1``: containers are split into entries, arrays and objects
stored apart); ours with its default (one archive per value) and, for comparison, with
fleche's destructuring (``remaining_depth=1``). Prints markdown tables (paste them into
docs/caching.md).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fleche
import flowrep
import numpy as np
from fleche.caches import Cache
from fleche.storage import ValuePickleFile
from fleche.storage.base import ValueMixin
from fleche.storage.memory import MemoryBackend
from fleche.storage.pickle_file import PickleFileBackend
from fleche.storage.sql import Sql
from fleche.storage.thread_safe import PerKeyLockMixin

from storage_nodes.caching import ValueArchive

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from _eos_nodes import STRAINS, equation_of_state, executions, make_engine, make_structure
from bench_h5 import workload_b, workload_d

try:
    from fleche.storage import ValueBagOfHoldingH5File
except ImportError:  # pragma: no cover - the benchmark extra is missing
    ValueBagOfHoldingH5File = None

SECRET = [b"storage_nodes-benchmark-key-32-bytes!"]
_BUILT: dict[str, Any] = {}


@fleche.fleche
def produce(name: str) -> Any:
    """The cached function: its result is the prebuilt workload."""
    return _BUILT[name]


# (e): a Run cannot be a fleche result (fleche refuses to digest the classes a Run holds), so
# (e) is the workflow of bench_h5's workload (e) itself, run with RunConfig(fleche_cache=...)
# on fleche-cached copies of its node functions (storage_nodes.demo's, same bodies).
@flowrep.atomic("positions")
@fleche.fleche
def cached_positions(n: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3))


@flowrep.atomic("energy", "forces")
@fleche.fleche
def cached_energy(positions: np.ndarray, k: float = 1.0) -> tuple[float, np.ndarray]:
    d = positions - 0.5
    return float(0.5 * k * (d**2).sum()), -k * d


def run_workflow_e(cache: Cache) -> Any:
    import pyiron_workflow as pwf

    wf = pwf.Workflow("bench")
    wf.positions = pwf.node(cached_positions, n=64, seed=1)
    wf.soft = pwf.node(cached_energy, positions=wf.positions, k=1.0)
    wf.stiff = pwf.node(cached_energy, positions=wf.positions, k=10.0)
    wf.other = pwf.node(cached_positions, n=8, seed=2)
    return wf.run(pwf.RunConfig(fleche_cache=cache))


def run_eos(cache: Cache, counter: Path, run_dir: Path, picklable: bool) -> Any:
    import pyiron_workflow as pwf

    node = pwf.node(equation_of_state)
    config = pwf.RunConfig(fleche_cache=cache, run_dir=run_dir)
    engine = make_engine(picklable=picklable)
    return node.run(config, engine=engine, structure=make_structure(), strains=STRAINS, counter=str(counter))


@dataclass(frozen=True)
class FlatMemory(PerKeyLockMixin, ValueMixin, MemoryBackend):
    """fleche's memory storage without destructuring: no files, deep copies; the floor."""

    __hash__ = object.__hash__


@dataclass(frozen=True)
class FlatPickle(PerKeyLockMixin, ValueMixin, PickleFileBackend):
    """fleche's pickle files without its destructuring: one file per value, like ours."""


def storages() -> dict[str, Callable[[Path], Any]]:
    out: dict[str, Callable[[Path], Any]] = {
        "memory, one entry per value (the floor)": lambda root: FlatMemory({}),
        "fleche pickle": lambda root: ValuePickleFile.with_pickle(root, secret_key=SECRET),
        "pickle, one file per value": lambda root: FlatPickle(root, secret_key=SECRET),
        "storage_nodes": lambda root: ValueArchive(root, version_policy="ignore"),
        "storage_nodes, remaining_depth=1": lambda root: ValueArchive(root, version_policy="ignore", remaining_depth=1),
    }
    if ValueBagOfHoldingH5File is not None:
        out["fleche bagofholding_hdf"] = lambda root: ValueBagOfHoldingH5File(root)
    return out


Row = tuple[float, float, int, str, int]


def one_round(name: str, make: Callable[[Path], Any], directory: Path) -> Row:
    """(cold s, warm s, entries, error, calls the warm run executed) of a cold + a warm run."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    cache = Cache(make(directory / "values"), Sql(directory / "calls.db"))
    counter = directory / "count.txt"
    calls: dict[str, Callable[[], Any]] = {
        "e": lambda: run_workflow_e(cache),
        "f": lambda: run_eos(cache, counter, directory / "run", picklable=False),
        "g": lambda: run_eos(cache, counter, directory / "run", picklable=True),
    }
    call = calls.get(name, lambda: produce(name))
    try:
        with fleche.cache(cache):
            gc.collect()
            start = time.perf_counter()
            call()
            cold = time.perf_counter() - start
            after_cold = executions(counter)
            gc.collect()
            start = time.perf_counter()
            call()
            warm = time.perf_counter() - start
        return cold, warm, len(list(cache.values.list())), "", executions(counter) - after_cold
    except Exception as exc:  # bagofholding cannot store or load some objects
        return float("nan"), float("nan"), 0, f"{type(exc).__name__}: {str(exc)[:90]}", -1
    finally:
        cache.calls.engine.dispose()


def measure(name: str, directory: Path, repeat: int, slow_repeat: int) -> dict[str, Row]:
    rows: dict[str, list[Row]] = {n: [] for n in storages()}
    for n, make in storages().items():  # warm-up: imports, first environment records, SQLite
        if n != "fleche bagofholding_hdf":
            one_round(name, make, directory / "warm-up")
    for i in range(repeat):
        for n, make in storages().items():
            if n == "fleche bagofholding_hdf" and i >= slow_repeat:
                continue
            rows[n].append(one_round(name, make, directory / n.replace(" ", "_").replace(",", "")))
    out = {}
    for n, runs in rows.items():
        errors = [r[3] for r in runs if r[3]]
        cold = statistics.median(r[0] for r in runs)
        warm = statistics.median(r[1] for r in runs)
        out[n] = (cold, warm, runs[0][2], errors[0] if errors else "", max(r[4] for r in runs))
    return out


def _ms(x: float) -> str:
    return "n/a" if x != x else f"{x * 1e3:.1f}"


def _ratio(x: float, ref: float) -> str:
    return "n/a" if x != x else f"{x / ref:.2f}"


def report(title: str, rows: dict[str, Row], counted: bool = False) -> None:
    pc, pw = rows["fleche pickle"][:2]
    print(f"\n### {title}\n")
    extra = " warm executions (of 9, most in a round) |" if counted else ""
    print(f"| value storage | cold ms | warm ms | entries | cold / pickle | warm / pickle |{extra}")
    print("|---|---|---|---|---|---|" + ("---|" if counted else ""))
    for n, (c, w, k, _, executed) in rows.items():
        more = f" {executed if executed >= 0 else 'n/a'} |" if counted else ""
        print(f"| {n} | {_ms(c)} | {_ms(w)} | {k} | {_ratio(c, pc)} | {_ratio(w, pw)} |{more}")
    for n, (_, _, _, err, _) in rows.items():
        if err:
            print(f"\n{n} fails: {err}")
    oc, ow = rows["storage_nodes"][:2]
    fc, fw = rows["fleche pickle"][:2]
    qc, qw = rows["pickle, one file per value"][:2]
    print(f"\nstorage_nodes / pickle, one file per value: cold {oc / qc:.2f}, warm {ow / qw:.2f}")
    # what the value storage adds to a cached call: the time above the in-memory floor
    mc, mw = rows["memory, one entry per value (the floor)"][:2]
    print(f"above the floor: storage_nodes cold {_ms(oc - mc)} ms, warm {_ms(ow - mw)} ms; "
          f"fleche pickle cold {_ms(fc - mc)} ms, warm {_ms(fw - mw)} ms")
    if "fleche bagofholding_hdf" in rows:
        bc, bw = rows["fleche bagofholding_hdf"][:2]
        if bc == bc:
            # a ratio to a time within noise of the floor (< 1 ms above it) says nothing
            above_c = f"{(bc - mc) / (oc - mc):.0f}x" if oc - mc > 1e-3 else "n/a (ours within noise of the floor)"
            above_w = f"{(bw - mw) / (ow - mw):.0f}x" if ow - mw > 1e-3 else "n/a (ours within noise of the floor)"
            print(f"bagofholding / storage_nodes: cold {bc / oc:.0f}x, warm {bw / ow:.0f}x; "
                  f"above the floor: cold {above_c}, warm {above_w}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--boh-repeat", type=int, default=3, help="rounds for bagofholding (slow)")
    parser.add_argument("--only", default="bdefg", help="workloads to run, e.g. 'bd'")
    args = parser.parse_args(argv)
    workloads: dict[str, tuple[str, Callable[[], Any] | None]] = {
        "b": ("(b) dict of 10,000 small entries", workload_b),
        "d": ("(d) tree of 311 dataclasses with small arrays", workload_d),
        "e": ("(e) the 4-node pyiron_workflow workflow of (e), run with RunConfig(fleche_cache=...)", None),
        "f": ("(f) an equation of state: engine + ase.Atoms, a for-each of 9 calls on threads", None),
        "g": ("(g) the same, the engine naming its calculator class (a form pickle can store)", None),
    }
    directory = Path(tempfile.mkdtemp(prefix="sn-bench-fleche-", dir=os.environ.get("SN_BENCH_DIR")))
    print(f"# fleche value storages: {args.repeat} repeats, medians; python {sys.version.split()[0]}, "
          f"fleche {fleche.__version__}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for letter in args.only:
                title, make = workloads[letter]
                if make is not None:
                    _BUILT[letter] = make()
                report(title, measure(letter, directory, args.repeat, args.boh_repeat), counted=letter in "fg")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
