"""Hostile files: a crafted archive naming a callable is never called, and safe loads never import."""

from __future__ import annotations

import sys
import textwrap
import zlib

import h5py
import msgpack
import numpy as np
import pytest
from _objects import Point

import storage_nodes as sn


def _rewrite_classes(path, classes) -> None:
    with h5py.File(path, "r+") as f:
        index = msgpack.unpackb(zlib.decompress(f["index"][()].tobytes()))
        index["classes"] = classes
        del f["index"]
        f.create_dataset("index", data=np.frombuffer(zlib.compress(msgpack.packb(index)), dtype=np.uint8))


@pytest.fixture
def trap_module(tmp_path, monkeypatch):
    """A module that leaves marker files when imported and when its function is called."""
    name = f"sn_trap_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            f"""
            import pathlib
            pathlib.Path({str(tmp_path)!r}, "imported").write_text("x")
            def evil(*args, **kwargs):
                pathlib.Path({str(tmp_path)!r}, "called").write_text("x")
            class Harmless:
                pass
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, tmp_path
    sys.modules.pop(name, None)


def test_archive_naming_a_function_as_class_is_refused(tmp_path, trap_module):
    name, marks = trap_module
    path = sn.save({"p": Point(1, 2), "x": 1.0}, tmp_path / "evil.h5")
    _rewrite_classes(path, [[name, "evil"]])
    with pytest.raises(sn.StorageError) as err:
        sn.load(path, version_policy="ignore")
    assert "evil" in str(err.value) and str(path) in str(err.value)
    assert not (marks / "called").exists()
    assert sn.load(path, key="x", version_policy="ignore") == 1.0  # plain entries still load


def test_archive_naming_os_system_is_refused(tmp_path):
    path = sn.save({"p": Point(1, 2)}, tmp_path / "evil.h5")
    _rewrite_classes(path, [["os", "system"]])
    with pytest.raises(sn.StorageError, match="system"):
        sn.load(path, version_policy="ignore")


def test_safe_load_never_imports_the_named_module(tmp_path, trap_module):
    name, marks = trap_module
    path = sn.save({"p": Point(1, 2), "x": [1, 2]}, tmp_path / "evil.h5")
    _rewrite_classes(path, [[name, "Harmless"]])
    with pytest.raises(sn.UnsafeLoadError) as err:
        sn.load(path, safe=True)
    assert "p" in str(err.value)
    assert sn.load(path, key="x", safe=True) == [1, 2]
    listing = sn.inspect(path)  # browsing never imports either
    assert listing["p"].type
    assert not (marks / "imported").exists()
    assert not (marks / "called").exists()


def test_opaque_leaves_are_refused_under_safe(tmp_path):
    path = sn.save({"f": lambda x: x + 1, "v": 3}, tmp_path / "lambda.h5")
    assert sn.inspect(path)["f"].opaque
    with pytest.raises(sn.UnsafeLoadError, match="f"):
        sn.load(path, safe=True)
    assert sn.load(path, key="v", safe=True) == 3
    assert sn.load(path)["f"](1) == 2  # trusted load: the documented opt-in to run code
