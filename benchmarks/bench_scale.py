"""Scale: ``save_workflow`` / ``load_workflow`` of workflows of 100 to 3,000 nodes against pickle.

Two shapes, each one array node feeding N small nodes:

- chain:   ``start -> step_0 -> step_1 -> ... -> step_{N-1}`` (``x -> 0.99 x + i``)
- fan-out: ``start -> step_i`` for every i (independent nodes)

For each, in one process, medians of ``--repeat`` runs:

- ``save_workflow`` against ``pickle.dump`` of the same ``Run`` (the target: <= 3x);
- ``load_workflow`` (port values) against ``pickle.load`` of that pickle (<= 3x);
- rebuilding the workflow from the stored recipe (``stored.workflow``) and, for the floor,
  upstream's ``Workflow.from_recipe`` of the same recipe alone;
- growth: the time at 10x the nodes over the time at 1x (target <= 12x).

    python benchmarks/bench_scale.py                    # 100, 1000, 3000 nodes
    python benchmarks/bench_scale.py --sizes 100 1000 --repeat 3
"""

from __future__ import annotations

import argparse
import gc
import pickle
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import itertools

import pyiron_workflow as pwf
from _scale_nodes import start, step

import storage_nodes as sn


def chain(n: int) -> pwf.Workflow:
    wf = pwf.Workflow(f"chain{n}")
    wf.start = pwf.node(start, n=1000)
    previous = wf.start
    for i in range(n):
        node = pwf.node(step, f"step_{i}", x=previous, i=i)
        wf.add_node(node)
        previous = node
    return wf


def fan_out(n: int) -> pwf.Workflow:
    wf = pwf.Workflow(f"fan{n}")
    wf.start = pwf.node(start, n=1000)
    for i in range(n):
        wf.add_node(pwf.node(step, f"step_{i}", x=wf.start, i=i))
    return wf


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(shape: str, n: int, repeat: int, directory: Path, rebuild: bool) -> dict[str, float]:
    wf = {"chain": chain, "fan-out": fan_out}[shape](n)
    run = wf.run()
    pkl = directory / f"{shape}{n}.pkl"
    h5 = directory / f"{shape}{n}.h5"

    def dump() -> None:
        with open(pkl, "wb") as f:
            pickle.dump(run, f, protocol=5)

    def pload() -> None:
        with open(pkl, "rb") as f:
            pickle.load(f)

    def save() -> None:
        h5.unlink(missing_ok=True)
        sn.save_workflow(wf, h5)

    out = {
        "pickle_dump": median_time(dump, repeat),
        "save_workflow": median_time(save, repeat),
    }
    out["pickle_load"] = median_time(pload, repeat)
    out["load_workflow"] = median_time(lambda: sn.load_workflow(h5, version_policy="ignore"), repeat)
    out["parse_recipe"] = out["from_recipe"] = out["rebuild"] = float("nan")
    if not rebuild:
        return out
    stored = sn.load_workflow(h5, version_policy="ignore")
    out["parse_recipe"] = median_time(lambda: sn.load_workflow(h5, version_policy="ignore").recipe, 1)
    recipe = stored.recipe
    out["from_recipe"] = median_time(lambda: pwf.Workflow.from_recipe(recipe, stored.label), max(1, repeat // 2))
    out["rebuild"] = median_time(lambda: sn.load_workflow(h5, version_policy="ignore").workflow, max(1, repeat // 2))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--rebuild-max", type=int, default=1000, help="rebuild workflows up to this size (upstream is quadratic)"
    )
    parser.add_argument("--shapes", nargs="+", default=["chain", "fan-out"], choices=["chain", "fan-out"])
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shapes:
            print(f"\n### {shape}\n")
            print(
                "| nodes | save_workflow | pickle.dump | save ratio | load_workflow | pickle.load | load ratio "
                "| rebuild (.workflow) | of which: parse recipe | Workflow.from_recipe |"
            )
            print("|---|---|---|---|---|---|---|---|---|---|")
            rows = {}
            for n in args.sizes:
                r = measure(shape, n, args.repeat, Path(tmp), n <= args.rebuild_max)
                rows[n] = r
                print(
                    f"| {n} | {r['save_workflow'] * 1e3:.1f} ms | {r['pickle_dump'] * 1e3:.1f} ms "
                    f"| {r['save_workflow'] / r['pickle_dump']:.2f}x | {r['load_workflow'] * 1e3:.1f} ms "
                    f"| {r['pickle_load'] * 1e3:.1f} ms | {r['load_workflow'] / r['pickle_load']:.2f}x "
                    f"| {r['rebuild'] * 1e3:.0f} ms | {r['parse_recipe'] * 1e3:.0f} ms "
                    f"| {r['from_recipe'] * 1e3:.0f} ms |",
                    flush=True,
                )
            sizes = sorted(rows)
            for a, b in itertools.pairwise(sizes):
                f = b / a
                print(
                    f"\ngrowth {a} -> {b} nodes ({f:.0f}x): save_workflow "
                    f"{rows[b]['save_workflow'] / rows[a]['save_workflow']:.1f}x, load_workflow "
                    f"{rows[b]['load_workflow'] / rows[a]['load_workflow']:.1f}x, rebuild "
                    f"{rows[b]['rebuild'] / rows[a]['rebuild']:.1f}x, Workflow.from_recipe "
                    f"{rows[b]['from_recipe'] / rows[a]['from_recipe']:.1f}x"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
