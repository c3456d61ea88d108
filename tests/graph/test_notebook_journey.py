"""The notebook user's journey, in real Jupyter kernels (nbclient), on h5, json and pickle.

Notebook 1 defines node functions in cells (using numpy and a helper from another cell),
runs a sweep over four temperatures with SaveNodes in the graph and stores the workflow.
Notebook 2, a fresh kernel that defines none of those functions, loads each stored
workflow under ``version_policy="strict"``, reruns it with one child's input changed
into a new directory, compares with a direct computation and checks that every file the
first run wrote is byte-identical. Notebook 3, another fresh kernel, defines ``md_run``
with a different body: ``strict`` refuses each file, naming the function with a diff.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from _docs import execute_notebook

SETUP = """\
import hashlib, warnings
from pathlib import Path
warnings.filterwarnings("ignore", message=".*has no (input|output) ports")
import numpy as np
import flowrep
import pyiron_workflow as pwf
import storage_nodes as sn
FILES = {"h5": "sweep_wf.h5", "json": "sweep_wf.json", "pickle": "sweep_wf.pkl"}
"""

NB1 = [
    SETUP,
    "def helper(T):\n    return np.sqrt(T) * 2.0",
    '@flowrep.atomic("e")\ndef md_run(T: float) -> float:\n    return float(helper(T) * 10)\n\n\n'
    '@flowrep.atomic("mean")\ndef summarize(a: float, b: float, c: float, d: float) -> float:\n'
    "    return float(np.mean([a, b, c, d]))",
    """\
wf = pwf.Workflow("sweep")
for i, T in enumerate([300.0, 600.0, 900.0, 1200.0], start=1):
    setattr(wf, f"md_{i}", pwf.node(md_run, T=T))
wf.summary = pwf.node(summarize, a=wf.md_1, b=wf.md_2, c=wf.md_3, d=wf.md_4)
wf.save_sweep = pwf.node(sn.SaveNode, obj=wf.md_2, path="sweep.h5")
wf.save_summary = pwf.node(sn.SaveNode, obj=wf.summary, path="summary.h5")
wf.run()
for backend, name in FILES.items():
    sn.save_workflow(wf, name, backend)
print("SAVED", sorted(p.name for p in Path(".").iterdir()))
""",
]

NB2 = [
    SETUP,
    """\
def digests():
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(".").iterdir()) if p.is_file()}
before = digests()
expected = {T: float(np.sqrt(T) * 2.0 * 10) for T in (300.0, 600.0, 900.0, 1200.0)}
""",
    """\
for backend, name in FILES.items():
    for defined in ("md_run", "summarize"):  # each file rebuilds from its own stored code
        globals().pop(defined, None)
    stored = sn.load_workflow(name, version_policy="strict")
    run = stored.rerun(inputs={"md_2.T": 1200.0}, directory=f"hot_{backend}")
    nodes = run.result.nodes
    assert nodes["md_2"].output_ports["e"].value == expected[1200.0]
    mean = float(np.mean([expected[300.0], expected[1200.0], expected[900.0], expected[1200.0]]))
    assert nodes["summary"].output_ports["mean"].value == mean
    assert sn.load(f"hot_{backend}/summary.h5") == mean and sn.load(f"hot_{backend}/sweep.h5") == expected[1200.0]
    assert stored.nodes["summary"]["outputs"]["mean"] == float(np.mean(list(expected.values())))
    assert md_run(1200.0) == expected[1200.0]  # the stored function, defined in this kernel under its name
    print("RERUN OK", backend)
""",
    """\
after = digests()
assert {k: after[k] for k in before} == before, "the first run's files changed"
assert sn.load("summary.h5") == float(np.mean(list(expected.values())))
print("ORIGINALS UNTOUCHED", len(before))
""",
]

NB3 = [
    SETUP,
    '@flowrep.atomic("e")\ndef md_run(T: float) -> float:\n    return float(T * 10)',
    """\
for backend, name in FILES.items():
    try:
        sn.load_workflow(name, version_policy="strict")
    except sn.VersionMismatchError as exc:
        text = str(exc)
        assert "__main__.md_run (source)" in text and "+    return float(T * 10)" in text, text
        print("REFUSED", backend)
    else:
        raise AssertionError(f"{name} was not refused")
""",
]


def _notebook(cells: list[str], path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(nb, path)
    return path


def test_notebook_nodes_are_stored_rebuilt_in_a_fresh_kernel_checked_and_rerun_safely(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    _, first = execute_notebook(_notebook(NB1, tmp_path / "nb1.ipynb"), work)
    assert "SAVED" in first and "sweep_wf.json" in first and "summary.h5" in first
    _, second = execute_notebook(_notebook(NB2, tmp_path / "nb2.ipynb"), work)
    assert all(f"RERUN OK {backend}" in second for backend in ("h5", "json", "pickle"))
    assert "ORIGINALS UNTOUCHED 5" in second  # three stored workflows and the two SaveNode files
    _, third = execute_notebook(_notebook(NB3, tmp_path / "nb3.ipynb"), work)
    assert all(f"REFUSED {backend}" in third for backend in ("h5", "json", "pickle"))
