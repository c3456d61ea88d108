"""Code that travels with a stored workflow: node functions defined in ``__main__`` (a script,
a notebook) or in a module made at run time are stored with the workflow, rebuilt in a
fresh process that does not define them, refused under ``safe=True``, and compared with
the session's own definition under the version policy.

The fresh-process cases run real scripts in subprocesses (``__main__`` of the saving
process); the notebook case itself is ``test_notebook_journey.py``.
"""

from __future__ import annotations

import json
import linecache
import os
import subprocess
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path

import pyiron_workflow as pwf
import pytest

import storage_nodes as sn
from storage_nodes.provenance.session_code import is_session_module

pytestmark = pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")

ROOT = Path(sn.__file__).resolve().parent.parent
BACKENDS = {"h5": "sweep_wf.h5", "json": "sweep_wf.json", "pickle": "sweep_wf.pkl"}

PRELUDE = """\
import json, sys, warnings
warnings.filterwarnings("ignore", message=".*has no (input|output) ports")
import numpy as np
import flowrep
import pyiron_workflow as pwf
import storage_nodes as sn
"""

DEFINITIONS = """\
K = 2.0


def helper(x):
    return np.sqrt(x) * K


@flowrep.atomic("e")
def md_run(T: float, n: int = 3) -> float:
    return float(helper(T) * n)


@flowrep.workflow("s")
def doubled(T: float):
    e = md_run(T)
    return e
"""

SAVE = (
    PRELUDE
    + DEFINITIONS
    + """
wf = pwf.Workflow("sweep")
wf.md_1 = pwf.node(md_run, T=300.0)
wf.md_2 = pwf.node(md_run, T=600.0)
wf.mac = pwf.node(doubled, T=4.0)
wf.save = pwf.node(sn.SaveNode, obj=wf.md_2, path="md_2.h5")
wf.run()
with warnings.catch_warnings():
    warnings.simplefilter("error", sn.CodeNotStoredWarning)  # everything here can be stored
    for backend, path in json.loads(sys.argv[1]).items():
        sn.save_workflow(wf, path, backend)
"""
)

FRESH = (
    PRELUDE
    + """
import inspect, __main__
result = {}
for backend, path in json.loads(sys.argv[1]).items():  # each file in turn, as if each were the first
    out = result[backend] = {}
    for name in ("md_run", "doubled"):
        vars(__main__).pop(name, None)
    try:
        sn.load_workflow(path, safe=True).workflow
    except sn.UnsafeLoadError as exc:
        out["safe"] = str(exc)
    stored = sn.load_workflow(path, version_policy="strict")
    out["code"] = sorted(stored.code)
    out["pickled"] = sorted(k for k, e in stored.code.items() if "pickled" in e)
    run = stored.rerun({"md_2.T": 1200.0, "mac.md_run_0.T": 9.0}, directory=f"hot_{backend}")
    out["md_2"] = run.result.nodes["md_2"].output_ports["e"].value
    out["mac"] = run.result.nodes["mac"].output_ports["s"].value
    out["saved"] = sn.load(f"hot_{backend}/md_2.h5")
    out["source"] = inspect.getsource(__main__.md_run)
print(json.dumps(result))
"""
)

CHANGED = (
    PRELUDE
    + """
@flowrep.atomic("e")
def md_run(T: float, n: int = 4) -> float:
    return T * n


result = {}
for backend, path in json.loads(sys.argv[1]).items():
    out = result[backend] = {}
    try:
        sn.load_workflow(path, version_policy="strict")
    except sn.VersionMismatchError as exc:
        out["strict"] = str(exc)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stored = sn.load_workflow(path)
        run = stored.rerun({"md_2.T": 10.0}, directory=f"warned_{backend}")
    out["warnings"] = [str(w.message) for w in caught if issubclass(w.category, sn.VersionMismatchWarning)]
    out["md_2"] = run.result.nodes["md_2"].output_ports["e"].value  # the session's md_run ran
print(json.dumps(result))
"""
)


def _python(script: str, directory: Path, *args: str, name: str = "script.py") -> dict:
    """Run ``script`` as a file (flowrep reads a workflow function's source) in a fresh interpreter."""
    (directory / name).write_text(script)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, name, *args], cwd=directory, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    directory = tmp_path_factory.mktemp("carried")
    paths = {backend: str(directory / name) for backend, name in BACKENDS.items()}
    _python(SAVE, directory, json.dumps(paths), name="make_sweep.py")
    yield {backend: Path(p) for backend, p in paths.items()}


@pytest.fixture(scope="module")
def fresh(saved, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What a fresh process that does not define the functions made of each file."""
    return _python(FRESH, tmp_path_factory.mktemp("fresh"), json.dumps({b: str(p) for b, p in saved.items()}))


@pytest.fixture(scope="module")
def changed(saved, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What a process that defines ``md_run`` with another body made of each file."""
    return _python(CHANGED, tmp_path_factory.mktemp("changed"), json.dumps({b: str(p) for b, p in saved.items()}))


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_fresh_process_rebuilds_and_reruns_a_workflow_of_main_functions(fresh, backend) -> None:
    out = fresh[backend]
    assert out["code"] == ["__main__.doubled", "__main__.helper", "__main__.md_run"]
    assert out["pickled"] == ([] if backend == "json" else ["__main__.doubled", "__main__.md_run"])
    assert out["md_2"] == pytest.approx(1200.0**0.5 * 2.0 * 3)  # the stored md_run and helper, K included
    assert out["mac"] == pytest.approx(18.0)
    assert out["saved"] == pytest.approx(out["md_2"])
    assert "def md_run(T: float, n: int = 3) -> float:\n    return float(helper(T) * n)" in out["source"]
    if backend == "pickle":  # a pickle load itself is refused under safe=True
        assert "refusing to load" in out["safe"]
    else:
        assert "carries the code of __main__.doubled, __main__.md_run" in out["safe"]
        assert "safe=False" in out["safe"]


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_changed_function_body_is_refused_under_strict_with_a_diff_and_warned_once(changed, backend) -> None:
    out = changed[backend]
    strict = out["strict"]
    assert "__main__.md_run (source)" in strict and "'strict' policy" in strict
    # the diff: h5 and json read the header safely, a pickle (trusted: safe=False) is read again
    assert "-    return float(helper(T) * n)" in strict and "+    return T * n" in strict
    assert len(out["warnings"]) == 1 and "__main__.md_run (source)" in out["warnings"][0]
    assert out["md_2"] == pytest.approx(40.0)  # the session's function was used


def test_the_json_file_holds_source_text_and_names_but_no_pickled_code(saved) -> None:
    text = saved["json"].read_text()
    assert '"pickled"' not in text and "def md_run" in text
    stored = sn.load_workflow(saved["json"], safe=True)
    helper = stored.code["__main__.helper"]
    assert helper["names"] == {"np": {"module": "numpy"}, "K": {"value": 2.0}}
    assert stored.code["__main__.md_run"]["names"]["helper"] == {"code": "__main__.helper"}
    assert sn.load(saved["h5"], key="@workflow/code/__main__.md_run/source", safe=True).startswith("@flowrep.atomic")


def test_the_record_names_every_node_function_and_verify_lists_a_changed_one(saved, tmp_path) -> None:
    modules = sn.environment(saved["h5"])["modules"]
    assert modules["__main__"]["session"] is True
    assert set(modules["__main__"]["sources"]) == {"md_run", "doubled", "helper"}
    assert "storage_nodes.nodes" in modules  # the SaveNode, an importable node function
    script = PRELUDE + (
        "@flowrep.atomic('e')\ndef md_run(T: float, n: int = 3) -> float:\n    return T\n\n\n"
        "print(json.dumps([str(d) for d in sn.verify(sys.argv[1])]))\n"
    )
    diffs = _python(script, tmp_path, str(saved["h5"]))
    assert len(diffs) == 1 and diffs[0].startswith("__main__.md_run (source): stored ")


# ---------------------------------------------------------------- a module made at run time, in this process


def _cells(name: str, source: str, *, with_source: bool = True) -> types.ModuleType:
    """A module made at run time, as a notebook's cells are: its code only in ``linecache``."""
    module = types.ModuleType(name)
    sys.modules[name] = module
    filename = f"<cell {name}>"
    if with_source:
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


CELLS = """\
import flowrep
import numpy as np

SCALE = 3.0


def _square(x):
    return x * x


@flowrep.atomic("y")
def scaled_square(x: float) -> float:
    return float(_square(x) * SCALE + np.zeros(1)[0])
"""


@pytest.mark.parametrize("backend", ["json", "pickle", "h5"])
def test_a_run_time_module_is_made_again_from_the_stored_code(backend: str, tmp_path: Path) -> None:
    name = f"cells_{backend}"
    module = _cells(name, CELLS)
    assert is_session_module(name)
    wf = pwf.Workflow("cells")
    wf.sq = pwf.node(module.scaled_square, x=2.0)
    wf.run()
    path = sn.save_workflow(wf, tmp_path / f"cells.{backend}", backend)
    del sys.modules[name]  # as in a fresh process
    stored = sn.load_workflow(path, version_policy="strict")
    run = stored.rerun({"sq.x": 3.0}, directory=tmp_path / "again")
    assert run.result.nodes["sq"].output_ports["y"].value == 27.0
    assert isinstance(sys.modules[name], types.ModuleType) and hasattr(sys.modules[name], "scaled_square")
    del sys.modules[name]


def test_a_function_without_source_is_warned_about_at_save_naming_the_node(tmp_path: Path) -> None:
    module = _cells("cells_nosource", CELLS, with_source=False)
    wf = pwf.Workflow("nosource")
    wf.first = pwf.node(module.scaled_square, x=2.0)
    wf.run()
    with pytest.warns(sn.CodeNotStoredWarning, match=r"node\(s\) first use cells_nosource\.scaled_square.*source"):
        as_json = sn.save_workflow(wf, tmp_path / "n.json", "json")
    with pytest.warns(sn.CodeNotStoredWarning, match="from the stored pickled code"):
        as_pickle = sn.save_workflow(wf, tmp_path / "n.pkl", "pickle")
    del sys.modules["cells_nosource"]
    assert sn.load_workflow(as_json).nodes["first"]["outputs"]["y"] == 12.0  # the data load anyway
    with pytest.raises(sn.StorageError, match=r"holds no code for cells_nosource\.scaled_square"):
        sn.load_workflow(as_json).rerun(directory=tmp_path / "x")
    assert sn.load_workflow(as_pickle).rerun(directory=tmp_path / "y").result.nodes["first"].output_ports[
        "y"
    ].value == pytest.approx(12.0)
    del sys.modules["cells_nosource"]


def test_a_workflow_of_importable_functions_carries_no_code(tmp_path: Path) -> None:
    from storage_nodes.demo import random_positions

    wf = pwf.Workflow("plain")
    wf.start = pwf.node(random_positions, n=4)
    wf.run()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = sn.save_workflow(wf, tmp_path / "plain.h5")
    assert sn.load_workflow(path).code == {}
    record = sn.environment(path)["modules"]["storage_nodes.demo"]
    assert record["version"] == sn.__version__ and "random_positions" in record["sources"]


def test_storage_nodes_verify_lists_the_functions_defined_in_a_notebook_or_script(saved) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "storage_nodes", "verify", str(saved["json"])], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "the environment matches the stored record" in done.stdout
    assert "__main__.doubled, __main__.helper, __main__.md_run" in done.stdout
    as_json = subprocess.run(
        [sys.executable, "-m", "storage_nodes", "verify", "--json", str(saved["h5"])],
        env=env,
        capture_output=True,
        text=True,
    )
    assert json.loads(as_json.stdout)["session_code"] == ["__main__.doubled", "__main__.helper", "__main__.md_run"]
