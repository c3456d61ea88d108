"""The pure index edits of an update (``backends/h5/edits.py``): no HDF5, and the changes they
record for the index log are the changes they make."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest

import storage_nodes
from storage_nodes.backends.h5 import H5Backend, codec, edits, indexcodec
from storage_nodes.errors import FileExistsStorageError, KeyNotFoundError

H5_DIR = Path(storage_nodes.__file__).parent / "backends" / "h5"


class _Value:  # an object: a node of the index, its attributes entries of their own
    def __init__(self, x):
        self.x = x


START = {"a": 1, "b": {"c": "old"}, "l": [1, 2, _Value(0)], "o": _Value(1)}


def test_edits_imports_no_h5py():
    """Imported with h5py made unimportable and the package's ``__init__`` (the backend, which
    needs HDF5) not run: ``edits`` and everything it imports work without h5py."""
    script = f"""
import sys, types
sys.modules["h5py"] = None  # any import of h5py now fails
import storage_nodes.backends
package = types.ModuleType("storage_nodes.backends.h5")
package.__path__ = [{str(H5_DIR)!r}]
sys.modules["storage_nodes.backends.h5"] = package
from storage_nodes.backends.h5 import edits
assert edits.set_plain({{}}, ["a", "b"], 1) == {{"a": {{"b": 1}}}}
print(sorted(m for m in sys.modules if m.startswith("storage_nodes.backends.h5.")))
"""
    env = {**os.environ, "PYTHONPATH": str(H5_DIR.parents[2]) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "storage_nodes.backends.h5.edits" in done.stdout
    # the check is live: a module of the archive that does use h5py fails the same way
    failing = script.replace("import edits", "import reader")
    done = subprocess.run([sys.executable, "-c", failing], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode != 0 and "h5py" in done.stderr


def _index(obj):
    """(index, heap segments) of ``obj`` as a new archive holds them, without a file."""
    from storage_nodes.backends.h5 import encode_new, new_index

    encoder, enc, _, classes = encode_new(obj, "", compression=None)
    assert not enc.arrays
    return new_index(enc.node, classes, encoder, {}, {"modules": {}}), {"heap_0": enc.heap}


def _update(index, heaps, key, obj, *, overwrite=True):
    """An update of ``index`` as update.py makes it, without a file: (index after, the ops)."""
    from storage_nodes.backends.h5 import Encoder
    from storage_nodes.provenance.metadata import ObjectCollector

    ops: list = []
    target = edits.locate(
        index,
        obj,
        Path("x.h5"),
        key,
        overwrite=overwrite,
        ops=ops,
        names={},
        unpack=lambda h: codec.unpack(heaps[h[0]][h[1] : h[1] + h[2]]),
    )
    encoder = Encoder(
        heap_name=f"heap_{index['next_heap']}",
        array_prefix="array_",
        next_array=index["next_array"],
        next_id=index["next_id"],
        classes=index["classes"],
        collector=ObjectCollector(),
        compression=None,
    )
    enc = encoder.encode(target.value, target.prefix)
    heaps[f"heap_{index['next_heap']}"] = enc.heap
    edits.put(index, target, enc.node, next_id=encoder.next_id, next_array=encoder.next_array, ops=ops)
    env = {"modules": {"m": {"version": "1"}}, "timestamp": "t", "storage_nodes": "v"}
    edits.note_update(index, env, key, {"note": key}, ops)
    return index, ops


@pytest.mark.parametrize(
    "key, value",
    [
        ("a", 5),
        ("b/c", "new"),  # inside packed plain data: set there, the whole dict packed again
        ("b/d", [1, 2]),
        ("new/deep/key", 1.5),
        ("l/1", "x"),
        ("l/3", "appended"),
        ("o/x", _Value(2)),  # an attribute of an object
        ("o/y", "added"),
    ],
)
def test_the_ops_recorded_are_the_edits_made(key, value):
    before, heaps = _index(START)
    after, ops = _update(copy.deepcopy(before), heaps, key, value)
    replayed = copy.deepcopy(before)
    indexcodec.apply_log(replayed, indexcodec.pack_change(ops))
    assert replayed == after
    assert after != before and after["updates"][-1]["key"] == key and after["metadata"] == {"note": key}


def test_edits_refuse_what_an_update_refuses():
    index, heaps = _index(START)
    with pytest.raises(FileExistsStorageError, match="overwrite=False"):
        _update(index, heaps, "a", 2, overwrite=False)
    with pytest.raises(FileExistsStorageError, match="overwrite=False"):
        _update(index, heaps, "b/c", 2, overwrite=False)
    with pytest.raises(KeyNotFoundError, match="index from -3 to 3"):
        _update(index, heaps, "l/7", 2)


def test_the_backend_writes_the_same_as_the_edits(tmp_path):
    """The file an update writes holds the index the pure edits make (the two agree)."""
    import storage_nodes as sn
    from storage_nodes.backends.h5 import reader

    path = sn.save(START, tmp_path / "x.h5")
    H5Backend().update("new", path, key="b/c", metadata={}, options={})
    with reader.open_reader(path) as r:
        index, heaps = _index(START)
        assert r.index["root"] == _update(index, heaps, "b/c", "new")[0]["root"]
