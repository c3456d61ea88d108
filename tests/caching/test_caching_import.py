"""`import storage_nodes` registers the fleche storage type lazily, and fleche.toml can use it.

Each check runs in a fresh interpreter: whether fleche is imported, and in which order, is
exactly what is under test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]  # tests/, where the helper modules live


def run_python(code: str, cwd: Path) -> dict:
    env = {**os.environ, "HOME": str(cwd), "XDG_CONFIG_HOME": str(cwd / ".config")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-c", textwrap.dedent(code)]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "could not register" not in done.stderr, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_storage_nodes_does_not_import_fleche(tmp_path):
    out = run_python(
        """
        import json, sys
        import storage_nodes, storage_nodes.caching
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("fleche", "pandas", "sqlalchemy"))
        import fleche.storage.base as base
        ctor = base.get_storage_constructor("storage_nodes", "value")
        from storage_nodes.caching import _import_watch
        watched = sorted(_import_watch._pending)
        import ase, scipy.sparse
        print(json.dumps({"loaded": loaded, "registered": ctor is not None and ctor.__name__, "watched": watched,
                          "finder_left": any(type(f).__name__ == "_WatchingFinder" for f in sys.meta_path)}))
        """,
        tmp_path,
    )
    assert out["loaded"] == []
    assert out["registered"] == "ValueArchive"
    # fleche imported: only the digest hook's packages are still awaited (pandas came with fleche)
    assert out["watched"] == ["ase", "scipy.sparse"]
    assert out["finder_left"] is False  # the finder removes itself once all it waited for is imported


FIRST = {
    "storage_nodes first": "import storage_nodes",
    "fleche first": "import fleche",
    "pyiron_workflow first": "import pyiron_workflow",
    # importing our storage module imports fleche, whose import fires the hook mid-way
    "storage_nodes.caching.ValueArchive first": "from storage_nodes.caching import ValueArchive",
    "exact float digests first": "from storage_nodes.caching import enable_exact_float_digests",
}


@pytest.mark.parametrize("order", list(FIRST))
def test_registered_in_any_import_order(tmp_path, order):
    out = run_python(
        f"""
        import json
        {FIRST[order]}
        import storage_nodes
        from fleche.config import storage_from_config
        s = storage_from_config({{"type": "storage_nodes", "root": "values"}}, "value")
        print(json.dumps({{"type": type(s).__name__}}))
        """,
        tmp_path,
    )
    assert out["type"] == "ValueArchive"


FLECHE_TOML = """
[default]
root = true
cache = "group"

[group]
values.type = "storage_nodes"
values.root = "cache/values"
values.compression = "gzip"
calls.type = "sql"
calls.url = "sqlite:///{calls}"
"""

CALL = """
    import json
    import storage_nodes as sn
    from fleche.config import load_cache_config
    from _fleche_nodes import executions
    import fleche

    @fleche.fleche
    def work(x, counter):
        with open(counter, "a") as f:
            f.write("1\\n")
        return {"x": x, "squares": [i * i for i in range(5)]}

    cache = load_cache_config()
    result = work(3, "count.txt")  # no fleche.cache(...): fleche.toml's default cache
    values = cache.values
    print(json.dumps({"type": type(values).__name__, "root": str(values.root), "compression": values.compression,
                      "result": result, "executions": executions("count.txt"),
                      "files": [str(values.path(k)) for k in values.list()]}))
"""


def test_fleche_toml_uses_our_storage_across_processes(tmp_path):
    import storage_nodes as sn

    (tmp_path / "fleche.toml").write_text(FLECHE_TOML.format(calls=tmp_path / "calls.db"))
    first = run_python(CALL, tmp_path)
    assert first["type"] == "ValueArchive"
    assert first["root"] == str((tmp_path / "cache" / "values").resolve())  # relative to fleche.toml
    assert first["compression"] == "gzip"
    assert first["result"] == {"x": 3, "squares": [0, 1, 4, 9, 16]}
    assert first["executions"] == 1
    second = run_python(CALL, tmp_path)  # a new process: the call is found, the body not run
    assert second["result"] == first["result"]
    assert second["executions"] == 1
    results = [f for f in first["files"] if sn.inspect(f).root.type == "dict"]
    assert len(results) == 1
    assert sn.load(results[0], key="squares") == [0, 1, 4, 9, 16]
