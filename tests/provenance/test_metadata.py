"""The environment record: what is collected, how it is located and hashed, never importing."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import flowrep
import pytest

import storage_nodes as sn
from storage_nodes.provenance import metadata
from tests._objects import Point


@flowrep.atomic("y")
def double(x: int = 1):
    y = 2 * x
    return y


@flowrep.workflow("z")
def quadruple(x: int = 1):
    y = double(x)
    z = double(y)
    return z


def test_validate_metadata_accepts_json_and_refuses_the_rest() -> None:
    assert metadata.validate_metadata({"b": [1, {"c": None}], "a": 1.5}) == {"a": 1.5, "b": [1, {"c": None}]}
    assert metadata.validate_metadata(None) == {}
    for bad in ({1: "int key"}, {"x": math.nan}, {"x": object()}, ["not", "a", "dict"], {"x": {2: 3}}):
        with pytest.raises(sn.MetadataError, match="metadata"):
            metadata.validate_metadata(bad, path="f.json")  # type: ignore[arg-type]


def test_bad_metadata_leaves_the_existing_file_untouched(tmp_path: Path) -> None:
    path = sn.save({"a": 1}, tmp_path / "a.pkl")
    before = path.read_bytes()
    with pytest.raises(sn.MetadataError):
        sn.save({"a": 2}, path, metadata={"when": object()})
    assert path.read_bytes() == before


def test_collector_records_classes_functions_and_instances_not_builtins() -> None:
    c = metadata.ObjectCollector()
    for obj in (Point(1, 2), Point(3, 4), Point, double, json.dumps, len, 3, "s", Point.__eq__, lambda: 0):
        c.add_object(obj)
    c.add_name("mypkg.core", "Model")
    c.add_name("__main__", "f")
    assert c.objects == {
        ("tests._objects", "Point"),
        (__name__, "double"),
        ("json", "dumps"),
        ("tests._objects", "Point.__eq__"),
        (__name__, "test_collector_records_classes_functions_and_instances_not_builtins.<locals>.<lambda>"),
        ("mypkg.core", "Model"),
        ("__main__", "f"),  # a notebook's code is recorded: its live source is hashed (session_code)
    }


def test_objects_from_a_real_workflow_recipe() -> None:
    recipe = quadruple.flowrep_recipe  # the recipe model pyiron_workflow stores (flowrep)
    expected = [(__name__, "double"), (__name__, "quadruple")]
    assert sorted(metadata.objects_from_recipe(recipe)) == expected
    assert sorted(metadata.objects_from_recipe(recipe.model_dump_json())) == expected
    nested = {"nodes": {"m": {"nodes": {"x": {"reference": {"info": {"module": "a.b", "qualname": "C.f"}}}}}}}
    found = list(metadata.objects_from_recipe({"outer": [nested, recipe.model_dump(mode="json")]}))
    assert sorted(found) == [("a.b", "C.f"), *expected] and len(found) == 3  # each pair once


def test_record_filters_standard_library_and_is_json(tmp_path: Path) -> None:
    rec = metadata.environment_record(
        [("json", "dumps"), ("tests._objects", "Point"), ("no_such_module_xyz", "f")],
        backend="pickle",
        format_version=1,
    )
    assert set(rec["modules"]) == {"tests._objects", "no_such_module_xyz"}
    missing = rec["modules"]["no_such_module_xyz"]
    assert missing == {
        "package": "no_such_module_xyz",
        "distribution": None,
        "version": None,
        "git": None,
        "sources": {},
    }
    assert json.loads(json.dumps(rec)) == rec
    numpy_rec = metadata.module_record("numpy", ["ndarray"])
    assert numpy_rec["distribution"] == "numpy" and numpy_rec["version"] == __import__("numpy").__version__
    assert numpy_rec["git"] is None and numpy_rec["sources"] == {}  # a C type has no Python source


def test_own_package_record_names_the_checked_out_commit() -> None:
    rec = metadata.module_record("storage_nodes.provenance.metadata", ["ObjectCollector", "environment_record"])
    assert rec["distribution"] == "storage-nodes" and rec["version"] == sn.__version__
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=Path(metadata.__file__).parent, capture_output=True, text=True
    ).stdout.strip()
    assert rec["git"]["commit"] == head
    assert set(rec["sources"]) == {"ObjectCollector", "environment_record"}


def test_source_hashes_cover_decorators_nesting_and_conditional_definitions(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        "import dataclasses, functools\n"
        "@dataclasses.dataclass\nclass D:\n    x: int\n"
        "@functools.cache\n"
        "def f():\n    return 1\n"
        "class A:\n    class B:\n        def g(self):\n            def local():\n                pass\n"
        "if True:\n    def h():\n        pass\n"
    )
    defs = metadata._definitions(str(src), (0, 0))
    assert set(defs) == {"D", "f", "A", "A.B", "A.B.g", "h"}
    assert set(metadata._source_hashes(str(src), ["D", "A.B.g", "nope"])) == {"D", "A.B.g"}
    import hashlib

    assert defs["f"] == hashlib.sha256(b"@functools.cache\ndef f():\n    return 1\n").hexdigest()


def test_current_record_locates_and_hashes_without_importing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "snvt_lazy" / "inner"
    pkg.mkdir(parents=True)
    (tmp_path / "snvt_lazy" / "__init__.py").write_text("raise RuntimeError('imported!')\n")
    (pkg / "__init__.py").write_text("raise RuntimeError('imported!')\n")
    (pkg / "mod.py").write_text("class K:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    stored = {"modules": {"snvt_lazy.inner.mod": {"sources": {"K": "x"}}, "snvt_lazy.gone": {"sources": {}}}}
    now = metadata.current_record(stored)["modules"]
    assert now["snvt_lazy.inner.mod"]["found"] is True
    assert set(now["snvt_lazy.inner.mod"]["sources"]) == {"K"}
    assert now["snvt_lazy.gone"]["found"] is False
    assert not any(name.startswith("snvt_lazy") for name in sys.modules)
    only = metadata.current_record(stored, modules=["snvt_lazy.gone", "unrelated"])["modules"]
    assert list(only) == ["snvt_lazy.gone"]


def test_merge_records_keeps_earlier_source_hashes() -> None:
    old = {"modules": {"m": {"version": "1", "sources": {"A": "a"}}, "n": {"version": "1", "sources": {}}}}
    new = {"timestamp": "t2", "modules": {"m": {"version": "2", "sources": {"B": "b"}}}}
    merged = metadata.merge_records(old, new)
    assert merged["modules"]["m"] == {"version": "2", "sources": {"A": "a", "B": "b"}}
    assert merged["modules"]["n"] == old["modules"]["n"] and merged["timestamp"] == "t2"
    assert old["modules"]["m"]["sources"] == {"A": "a"}  # inputs untouched


def test_recorded_objects_reach_every_backend_and_stay_in_their_thread(tmp_path: Path) -> None:
    import threading

    names = list(metadata.objects_from_recipe(quadruple.flowrep_recipe.model_dump_json()))
    other_thread: dict[str, Any] = {}

    def save_elsewhere() -> None:
        other_thread["env"] = sn.environment(sn.save({"a": 1}, tmp_path / "other.json"))

    with metadata.recorded_objects(names):
        for suffix in (".json", ".pkl", ".h5"):
            env = sn.environment(sn.save({"recipe": "...json text..."}, tmp_path / f"wf{suffix}"))
            assert set(env["modules"][__name__]["sources"]) == {"double", "quadruple"}
        worker = threading.Thread(target=save_elsewhere)
        worker.start()
        worker.join()
    assert other_thread["env"]["modules"] == {}
    assert sn.environment(sn.save({"a": 1}, tmp_path / "after.json"))["modules"] == {}


def test_numpy_scalars_in_metadata_are_stored_as_python_values(tmp_path):
    """np.float64 passed (a float subclass) while np.int64 - e.g. np.sum(mask) - was refused."""
    import numpy as np

    meta = {"n": np.int64(3), "ok": np.bool_(True), "T": np.float32(300.5), "name": np.str_("Cu"), "x": [np.int8(1)]}
    path = sn.save(1, tmp_path / "m.json", metadata=meta)
    stored = sn.inspect(path).metadata
    assert stored == {"n": 3, "ok": True, "T": 300.5, "name": "Cu", "x": [1]}
    assert type(stored["n"]) is int and type(stored["ok"]) is bool
    for bad in ({"nan": np.float32("nan")}, {"arr": np.arange(2)}, {"dt": np.datetime64("2020-01-01")}):
        with pytest.raises(sn.MetadataError):
            sn.save(1, tmp_path / "bad.json", metadata=bad)


def test_a_dirty_or_clean_change_between_two_saves_is_in_each_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main", *args],
            cwd=repo,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    repo = tmp_path / "repo"
    (repo / "snvt_gitpkg").mkdir(parents=True)
    (repo / "snvt_gitpkg" / "__init__.py").write_text("")
    (repo / "snvt_gitpkg" / "model.py").write_text("class Model:\n    def __init__(self):\n        self.x = 1\n")
    (repo / "snvt_gitpkg" / "util.py").write_text("U = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "one")
    monkeypatch.syspath_prepend(str(repo))
    from snvt_gitpkg.model import Model  # type: ignore[import-not-found]

    def saved_git() -> dict[str, Any]:
        path = sn.save(Model(), tmp_path / "m.h5")
        return sn.environment(path)["modules"]["snvt_gitpkg.model"]["git"]

    first = git("rev-parse", "HEAD")
    assert saved_git() == {"commit": first, "dirty": False}
    (repo / "snvt_gitpkg" / "util.py").write_text("U = 2\n")  # a sibling module edited between two saves
    assert saved_git() == {"commit": first, "dirty": True, "changed": ["snvt_gitpkg/util.py"]}
    git("commit", "-q", "-am", "two")
    assert saved_git() == {"commit": git("rev-parse", "HEAD"), "dirty": False}
    (repo / "snvt_gitpkg" / "util.py").write_text("U = 1\n")
    git("checkout", "-q", "snvt_gitpkg/util.py")  # edited, then restored
    assert saved_git()["dirty"] is False


def _imported_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> Path:
    """Write module ``name`` into ``tmp_path`` and import it for this test only; its file."""
    import importlib.util

    src = tmp_path / f"{name}.py"
    src.write_text(source)
    spec = importlib.util.spec_from_file_location(name, src)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, name, module)
    return src


def test_environment_record_is_kept_while_nothing_changes_and_made_again_after_an_edit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _imported_module(tmp_path, monkeypatch, "snvt_kept_mod", "def f():\n    return 1\n")
    made: list[str] = []
    real = metadata.module_record
    monkeypatch.setattr(metadata, "module_record", lambda m, *a, **k: made.append(m) or real(m, *a, **k))
    objects = [("snvt_kept_mod", "f")]
    first = metadata.environment_record(objects)
    second = metadata.environment_record(objects)
    assert made == ["snvt_kept_mod"]  # kept: nothing changed in the watched directory
    assert second["modules"] == first["modules"] and second["timestamp"] >= first["timestamp"]
    second["modules"]["snvt_kept_mod"]["sources"]["f"] = "changed by the caller"
    assert metadata.environment_record(objects)["modules"] == first["modules"]  # callers get copies
    src.write_text("def f():\n    return 22\n")  # an edit in place
    third = metadata.environment_record(objects)
    assert made == ["snvt_kept_mod"] * 2
    assert third["modules"]["snvt_kept_mod"]["sources"]["f"] != first["modules"]["snvt_kept_mod"]["sources"]["f"]
    new = tmp_path / "new.py"
    new.write_text("def f():\n    return 333\n")
    os.replace(new, src)  # an editor's save: a new file renamed over the old one
    fourth = metadata.environment_record(objects)
    assert made == ["snvt_kept_mod"] * 3
    assert fourth["modules"]["snvt_kept_mod"]["sources"]["f"] != third["modules"]["snvt_kept_mod"]["sources"]["f"]


def test_environment_record_is_made_afresh_without_inotify_or_for_a_module_not_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage_nodes.provenance import _watch

    (tmp_path / "snvt_never_imported.py").write_text("def g():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    made: list[str] = []
    real = metadata.module_record
    monkeypatch.setattr(metadata, "module_record", lambda m, *a, **k: made.append(m) or real(m, *a, **k))
    lazy = [("snvt_never_imported", "g")]
    for _ in range(2):
        assert set(metadata.environment_record(lazy)["modules"]["snvt_never_imported"]["sources"]) == {"g"}
    assert made == ["snvt_never_imported"] * 2  # where an import would find it may change
    assert "snvt_never_imported" not in sys.modules
    made.clear()
    monkeypatch.setattr(_watch, "watcher", lambda: None)
    here = [("storage_nodes.provenance.metadata", "ObjectCollector")]
    metadata.environment_record(here)
    metadata.environment_record(here)
    assert made == ["storage_nodes.provenance.metadata"] * 2


def test_a_load_in_the_same_process_sees_an_edit_of_a_stored_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _imported_module(
        tmp_path, monkeypatch, "snvt_edited_mod", "class Point:\n    def __init__(self, x):\n        self.x = x\n"
    )
    module = sys.modules["snvt_edited_mod"]
    path = sn.save(module.Point(1.5), tmp_path / "p.h5")
    for _ in range(2):  # the second check answers from the kept record
        assert sn.load(path, version_policy="strict").x == 1.5
    src.write_text("class Point:\n    def __init__(self, x):\n        self.x = 2 * x\n")
    with pytest.raises(sn.VersionMismatchError, match=r"snvt_edited_mod.*source"):
        sn.load(path, version_policy="strict")


def test_source_hashes_follow_a_file_renamed_over_the_module_with_the_same_size_and_mtime(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("def f():\n    return 1\n")
    before = metadata._source_hashes(str(src), ["f"])
    st = src.stat()
    new = tmp_path / "new.py"
    new.write_text("def f():\n    return 2\n")  # same size
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime: within one clock tick
    os.replace(new, src)
    assert metadata._source_hashes(str(src), ["f"]) != before
