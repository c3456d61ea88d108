"""A ``with sn.open(path, "a")`` block is applied as ONE in-place update (issue 30).

A forked child commits a block of several changes (set, replace, add, delete, an item of
packed data, metadata) and SIGKILLs itself just before its k-th step that changes the archive,
the journal or its link (``journal.step_hook``), for every k. Read afterwards by the reader of
docs/format.md (h5py, msgpack, zlib alone; the index log applied), the file holds exactly the
old state or exactly the new one, never a mix.
"""

from __future__ import annotations

import h5py
import numpy as np

import storage_nodes as sn
from storage_nodes.backends.h5 import journal
from tests.backends.h5.test_h5_format import _SpecReader
from tests.backends.h5.test_h5_inplace import _in_child, _killed, _restore, _spec_index

OLD = {
    "big": np.arange(100_000, dtype=np.float64),
    "small": {"e": 1.0, "steps": [1, 2, 3]},
    "plain": {f"k{i}": i for i in range(50)},
    "gone": np.ones(20_000),
}


def _commit(path) -> None:
    with sn.open(path, "a") as s:
        s["small/e"] = 2.5
        s["added"] = {"list": list(range(200)), "text": "x" * 2000}
        s["big"] = np.full(50_000, 7.0)
        s["plain/k3"] = "three"
        del s["gone"]
        del s["plain/k7"]
        s.require_group("grp")["new"] = np.arange(10)
        s.metadata["sample"] = "Cu-3"


def _new_state() -> dict:
    new = {k: v for k, v in OLD.items() if k != "gone"}
    new["small"] = {"e": 2.5, "steps": [1, 2, 3]}
    new["added"] = {"list": list(range(200)), "text": "x" * 2000}
    new["big"] = np.full(50_000, 7.0)
    new["plain"] = {k: ("three" if k == "k3" else v) for k, v in OLD["plain"].items() if k != "k7"}
    new["grp"] = {"new": np.arange(10)}
    return new


def _equal(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def _by_the_spec(path) -> tuple[dict, dict]:
    """(the stored object, the metadata) as the reader of docs/format.md finds them."""
    with h5py.File(path, "r") as f:
        reader = _SpecReader(f)
        reader.index = _spec_index(f)
        return reader.node(reader.index["root"]), reader.index.get("metadata") or {}


def test_a_sigkill_at_every_step_of_a_block_commit_leaves_the_old_or_the_new_state(tmp_path):
    path = sn.save(OLD, tmp_path / "run.h5")
    sn.save("p", path, key="small/p")  # a format-3 file with an index log, as after any update
    with sn.open(path, "a") as s:
        del s["small/p"]
    old_state, old_meta = _by_the_spec(path)
    assert _equal(old_state, OLD) and "sample" not in old_meta
    original = path.read_bytes()
    status, steps = _in_child(lambda: _commit(path), 0)
    assert status == 0 and "overwrite" in steps and steps[-1] == "unpin", steps
    new_state, new_meta = _by_the_spec(path)
    assert _equal(new_state, _new_state()) and new_meta["sample"] == "Cu-3"
    assert _equal(sn.load(path), _new_state())
    outcomes = []
    for k in range(1, len(steps) + 1):
        _restore(path, original)
        status, _ = _in_child(lambda: _commit(path), k)
        assert _killed(status), (k, steps[k - 1], status)
        sn.inspect(path)  # opening it rolls a journal back
        assert not journal.journal_path(path).exists()
        state, meta = _by_the_spec(path)
        if _equal(state, _new_state()):
            assert meta["sample"] == "Cu-3", (k, steps[k - 1])
            outcomes.append("new")
        else:
            assert _equal(state, OLD) and "sample" not in meta, (k, steps[k - 1])
            assert path.read_bytes()[: len(original)] == original, (k, steps[k - 1])
            outcomes.append("old")
    assert outcomes[0] == "old" and outcomes[-1] == "new" and outcomes == sorted(outcomes, key=["old", "new"].index)


def test_an_error_inside_the_block_leaves_the_file_byte_identical(tmp_path):
    path = sn.save(OLD, tmp_path / "run.h5")
    original = path.read_bytes()
    try:
        with sn.open(path, "a") as s:
            s["small/e"] = 9.0
            del s["gone"]
            s.metadata["sample"] = "x"
            raise RuntimeError("stop")
    except RuntimeError:
        pass
    assert path.read_bytes() == original
    assert not journal.journal_path(path).exists()


def test_a_failing_commit_leaves_the_file_byte_identical(tmp_path):
    """The third change cannot be applied (a tuple has no new items): none of them is."""
    path = sn.save({"t": (1, 2), "a": 1}, tmp_path / "run.h5")
    original = path.read_bytes()
    try:
        with sn.open(path, "a") as s:
            s["a"] = 2
            s["b"] = np.ones(10_000)
            s["t/5"] = 3
    except sn.KeyNotFoundError as exc:
        assert "'t/5'" in str(exc) and str(path) in str(exc)
    else:
        raise AssertionError("the commit did not fail")
    assert path.read_bytes() == original
    assert sn.load(path) == {"t": (1, 2), "a": 1}


def test_a_reader_in_another_process_sees_every_block_whole(tmp_path):
    """Three entries changed in one block: a reader never sees some of them changed and not others."""
    import os
    import subprocess
    import sys
    import textwrap

    path = sn.save({"a": 0, "b": {"i": 0}, "c": np.zeros(1000)}, tmp_path / "loop.h5")
    stop = tmp_path / "stop"
    script = textwrap.dedent(
        """
        import os, sys, storage_nodes as sn
        path, stop = sys.argv[1], sys.argv[2]
        reads = errors = 0
        while not os.path.exists(stop) or reads < 30:
            try:
                d = sn.load(path)
                assert d["a"] == d["b"]["i"] == d["c"][0] == d["c"][-1], (d["a"], d["b"], d["c"][0])
                assert ("gone" in d) == (d["a"] % 2 == 1), d.keys()
            except Exception as exc:
                errors += 1
                print("FAILED", type(exc).__name__, exc, flush=True)
            reads += 1
        print("READS", reads, "ERRORS", errors, flush=True)
        """
    )
    reader = subprocess.Popen([sys.executable, "-c", script, str(path), str(stop)], stdout=subprocess.PIPE, text=True)
    for i in range(1, 151):
        with sn.open(path, "a") as s:
            s["a"] = i
            s["b/i"] = i
            s["c"] = np.full(1000, float(i))
            if i % 2:
                s["gone"] = [i] * 50
            else:
                del s["gone"]
    stop.touch()
    out, _ = reader.communicate(timeout=120)
    assert reader.returncode == 0 and "FAILED" not in out and "ERRORS 0" in out, out[-3000:]
    assert int(out.split("READS")[1].split()[0]) >= 30
    assert sn.load(path, key="a") == 150 and "gone" not in sn.load(path)
    assert os.path.getsize(path) < 2_000_000  # replaced data is reclaimed on the way
