"""The environment record covers code a fresh interpreter cannot import (``__main__``,
notebook cells, modules made at run time) by the hash of its live source, and the first
save of a local module's code does not scan every installed distribution."""

from __future__ import annotations

import json
import linecache
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import storage_nodes as sn
from storage_nodes.provenance import metadata
from storage_nodes.provenance.session_code import is_session_module, live_source, session_hashes
from storage_nodes.provenance.versioning import compare

ROOT = Path(sn.__file__).resolve().parent.parent


def _cell_module(name: str, source: str) -> types.ModuleType:
    """A module made at run time whose code lives only in ``linecache``, like a notebook cell's."""
    module = sys.modules.get(name) or types.ModuleType(name)
    sys.modules[name] = module
    filename = f"<cell {name} {abs(hash(source))}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


def test_a_session_function_is_recorded_by_its_live_source_and_seen_again_when_the_cell_reruns() -> None:
    name = "cells_record"
    try:
        _cell_module(name, "def f(x):\n    return x + 1\n")
        assert is_session_module(name) and not is_session_module("json")
        first = metadata.environment_record([(name, "f")])["modules"][name]
        assert first["session"] is True and first["version"] is None and first["distribution"] is None
        assert first["sources"] == session_hashes(name, ["f"]) and len(first["sources"]["f"]) == 64
        _cell_module(name, "def f(x):\n    return x + 2\n")  # the cell run again with another body
        second = metadata.environment_record([(name, "f")])["modules"][name]
        assert second["sources"]["f"] != first["sources"]["f"]
        assert "return x + 2" in live_source(sys.modules[name].f)
    finally:
        sys.modules.pop(name, None)


def test_session_code_the_current_session_does_not_define_is_no_difference() -> None:
    stored = {
        "python": {"version": "3.11.7", "implementation": "CPython"},
        "modules": {
            "__main__": {"package": "__main__", "version": None, "git": None, "session": True,
                         "sources": {"md_run": "a" * 64}},
            "gone_cells": {"package": "gone_cells", "version": None, "git": None, "session": True,
                           "sources": {"g": "b" * 64}},
        },
    }  # fmt: skip
    now = metadata.current_record(stored)
    assert now["modules"]["gone_cells"]["found"] is False
    assert compare(stored, now) == []  # the file's own code is what will run
    sys.modules["__main__"].md_run = lambda: 0  # this session defines one: now it is compared
    try:
        diffs = [str(d) for d in compare(stored, metadata.current_record(stored))]
    finally:
        del sys.modules["__main__"].md_run
    assert len(diffs) == 1 and diffs[0].startswith("__main__.md_run (source): stored aaaaaaaaaaaa, now ")


def test_a_local_module_in_a_plain_directory_costs_no_scan_of_installed_distributions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mynodes_local.py").write_text("def relax(x):\n    return x\n")
    site = tmp_path / "site"
    (site / "pkg_elsewhere").mkdir(parents=True)
    (site / "pkg_elsewhere" / "__init__.py").write_text("")
    (site / "other_dist-1.0.dist-info").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(site))
    metadata._cached_distribution.cache_clear()
    metadata._holds_distributions.cache_clear()

    def no_scan() -> None:
        raise AssertionError("packages_distributions() scanned every installed distribution")

    monkeypatch.setattr(metadata, "_packages_distributions", no_scan)
    import mynodes_local  # noqa: F401

    record = metadata.module_record("mynodes_local", ["relax"])
    assert (record["distribution"], record["version"]) == (None, None) and "relax" in record["sources"]
    assert not metadata._beside_distributions("mynodes_local")
    assert metadata._beside_distributions("pkg_elsewhere")  # a site directory: the scan may find it
    metadata._cached_distribution.cache_clear()


SAVE_VALUE = """\
import sys
import storage_nodes as sn


class Sample:
    def __init__(self, x):
        self.x = x


sn.save(Sample(3), "sample.cpkl")
"""

LOAD_VALUE = """\
import json, sys, warnings
import flowrep, pyiron_workflow as pwf
import storage_nodes as sn
{definition}
out = {{}}
try:
    out["x"] = sn.load(sys.argv[1], version_policy="strict").x
except sn.VersionMismatchError as exc:
    out["strict"] = str(exc)
out["verify"] = [str(d) for d in sn.verify(sys.argv[1])]
node = pwf.node(sn.LoadNode, "load")
try:
    node.run(path=sys.argv[1], version_policy="strict")
    out["node"] = "loaded"
except Exception as exc:
    out["node"] = f"{{type(exc).__name__}}: {{exc}}"
print(json.dumps(out))
"""

CHANGED_CLASS = """
class Sample:
    def __init__(self, x):
        self.x = x * 2
"""


def _python(script: str, directory: Path, *args: str) -> dict:
    (directory / "script.py").write_text(script)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "script.py", *args], cwd=directory, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}


def test_a_value_whose_class_comes_from_main_is_checked_by_load_loadnode_and_verify(tmp_path: Path) -> None:
    _python(SAVE_VALUE, tmp_path)
    path = tmp_path / "sample.cpkl"
    assert sn.environment(path)["modules"]["__main__"]["sources"].keys() == {"Sample", "Sample.__init__"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    same = _python(LOAD_VALUE.format(definition=""), elsewhere, str(path))
    assert same == {"x": 3, "verify": [], "node": "loaded"}  # the class travels by value; nothing to compare
    changed = _python(LOAD_VALUE.format(definition=CHANGED_CLASS), elsewhere, str(path))
    assert "__main__.Sample (source)" in changed["strict"] and "'strict' policy" in changed["strict"]
    assert any(d.startswith("__main__.Sample.__init__ (source)") for d in changed["verify"])
    assert "VersionMismatchError" in changed["node"] and "__main__.Sample" in changed["node"]
