"""Workflows whose node functions live in a notebook (``__main__``) against the same nodes
imported from a module: what storing their code costs, and the first save in a process.

Run: ``python benchmarks/bench_notebook.py [--nodes 100]``. Every measurement runs in a
fresh interpreter (a new kernel, as a notebook user has), in a temporary directory:

Each script runs twice and the second run is reported: the first writes Python's bytecode
caches (``PYTHONDONTWRITEBYTECODE`` is dropped for the scripts), as any earlier session on a
user's machine has.

- ``save_workflow`` of an N-node workflow (ten node functions, N/10 nodes each, h5): the
  first save in the process and the median of later saves, with the functions defined in
  ``__main__`` (their code is stored with the workflow) and imported from a module beside
  the script (``nodes.py``, not installed: the case that used to scan every installed
  distribution on the first save);
- the rebuild in a fresh process: ``load_workflow(path).workflow`` of each file, in a
  process that does not define the functions (``__main__``: rebuilt from the stored code)
  or imports them (module).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FUNCTIONS = "\n".join(
    f"""
@flowrep.atomic("y")
def step_{i}(x: float, k: float = {i + 1}.0) -> float:
    return float(np.tanh(x) * k + {i})
"""
    for i in range(10)
)

NODES = "import flowrep\nimport numpy as np\n" + FUNCTIONS

SAVE = """\
import json, statistics, sys, time, warnings
warnings.filterwarnings("ignore", message=".*has no (input|output) ports")
import numpy as np
import flowrep
import pyiron_workflow as pwf
import storage_nodes as sn
import h5py  # the backend's own import is not what is measured
{definitions}

steps = [globals()[f"step_{{i}}"] for i in range(10)]
wf = pwf.Workflow("many")
previous = None
for n in range({nodes}):
    f = steps[n % 10]
    label = f"n{{n}}"
    setattr(wf, label, pwf.node(f, x=getattr(wf, previous) if previous else 0.5))
    previous = label
wf.run()
t = time.perf_counter()
sn.save_workflow(wf, "{mode}.h5")
first = time.perf_counter() - t
later = []
for i in range(15):
    t = time.perf_counter()
    sn.save_workflow(wf, f"{mode}_{{i % 3}}.h5")
    later.append(time.perf_counter() - t)
print(json.dumps({{"first": first * 1e3, "later": statistics.median(later) * 1e3}}))
"""

REBUILD = """\
import json, sys, time, warnings
warnings.filterwarnings("ignore", message=".*has no (input|output) ports")
import pyiron_workflow as pwf
import storage_nodes as sn
{imports}
t = time.perf_counter()
stored = sn.load_workflow("{mode}.h5")
loaded = time.perf_counter() - t
wf = stored.workflow
rebuilt = time.perf_counter() - t
print(json.dumps({{"load": loaded * 1e3, "rebuild": rebuilt * 1e3, "nodes": len(wf.nodes)}}))
"""


BOTH = """\
import json, statistics, sys, time, warnings
warnings.filterwarnings("ignore", message=".*has no (input|output) ports")
import numpy as np
import flowrep
import pyiron_workflow as pwf
import storage_nodes as sn
import nodes
{definitions}


def build(space):
    wf = pwf.Workflow("many")
    previous = None
    for n in range({nodes}):
        label = f"n{{n}}"
        setattr(wf, label, pwf.node(space[f"step_{{n % 10}}"], x=getattr(wf, previous) if previous else 0.5))
        previous = label
    wf.run()
    return wf


kinds = {{"__main__": build(globals()), "module": build(vars(nodes))}}
for kind, wf in kinds.items():
    sn.save_workflow(wf, "warm.h5")
times = {{kind: [] for kind in kinds}}
for i in range(30):  # interleaved, so both see the same load of the machine
    for kind, wf in kinds.items():
        t = time.perf_counter()
        sn.save_workflow(wf, "both.h5")
        times[kind].append(time.perf_counter() - t)
print(json.dumps({{kind: statistics.median(t) * 1e3 for kind, t in times.items()}}))
"""


def _run(script: str, directory: Path) -> dict[str, float]:
    path = directory / "bench_script.py"
    path.write_text(script)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(directory)])}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as on a user's machine: modules compiled once, not per kernel
    for _ in range(2):  # the first process writes the bytecode caches; the second is measured
        done = subprocess.run([sys.executable, str(path)], cwd=directory, env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(done.stderr[-3000:])
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "nodes.py").write_text(NODES)
        saves = {
            "__main__": _run(SAVE.format(definitions=FUNCTIONS, nodes=args.nodes, mode="main"), directory),
            "module": _run(SAVE.format(definitions="from nodes import *", nodes=args.nodes, mode="module"), directory),
        }
        both = _run(BOTH.format(definitions=FUNCTIONS, nodes=args.nodes), directory)
        rebuilds = {
            "__main__": _run(REBUILD.format(imports="", mode="main"), directory),
            "module": _run(REBUILD.format(imports="import nodes", mode="module"), directory),
        }
    print(f"save_workflow of a {args.nodes}-node workflow (10 node functions), h5, ms (each in a fresh process)")
    print(f"{'functions in':<12} {'first save':>11} {'later save':>11} {'first - later':>14}")
    for mode, r in saves.items():
        print(f"{mode:<12} {r['first']:>11.1f} {r['later']:>11.2f} {r['first'] - r['later']:>14.1f}")
    main_, module = both["__main__"], both["module"]
    print(
        f"later saves, both kinds in one process, interleaved: __main__ {main_:.2f} ms, module {module:.2f} ms: "
        f"{main_ / module:.2f}x, {main_ - module:+.2f} ms"
    )
    print()
    print("rebuild in a fresh process that does not define the functions, ms")
    print(f"{'functions in':<12} {'load_workflow':>14} {'+ .workflow':>12}")
    for mode, r in rebuilds.items():
        print(f"{mode:<12} {r['load']:>14.1f} {r['rebuild']:>12.1f}")


if __name__ == "__main__":
    main()
