"""Cycles and deep nesting never crash the interpreter (issue 16).

Each case runs in a child process, so a segmentation fault is a failed test (exit code
-11), not a dead test run. The child raises Python's recursion limit to 100,000: the h5
backend's limits are explicit (codec.MAX_EXT_DEPTH, encoder.MAX_DEPTH) and must not depend
on the recursion limit, which a notebook or a user may have raised. Before the fix the
self-reaching tuple below died with SIGSEGV in msgpack's C ``default`` recursion.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PRELUDE = """
import sys, zlib
sys.setrecursionlimit(100_000)
import msgpack, numpy as np, h5py
import storage_nodes as sn

def outcome(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except sn.StorageError as exc:
        print("ERR", type(exc).__name__, str(exc)[:300])
        return None

def rewrite_index(path, change):
    with h5py.File(path, "r+") as f:
        index = msgpack.unpackb(zlib.decompress(f["index"][()].tobytes()), strict_map_key=False)
        change(index)
        del f["index"]
        f.create_dataset("index", data=np.frombuffer(zlib.compress(msgpack.packb(index)), dtype=np.uint8))
"""


def run_child(tmp_path, body: str, timeout: float = 120) -> str:
    script = tmp_path / "child.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"child died with {proc.returncode}: {proc.stderr[-2000:]}"
    return proc.stdout


def test_self_reaching_tuple_does_not_crash(tmp_path):
    out = run_child(
        tmp_path,
        """
        l = []; t = (l,); l.append(t)
        path = sys.argv[1] + "/t.h5"
        if outcome(sn.save, t, path) is not None:
            back = sn.load(path)
            assert type(back) is tuple and type(back[0]) is list and back[0][0] is back, back
            print("ROUNDTRIP")
        """,
    )
    assert "ROUNDTRIP" in out or "ERR SerializationError" in out, out


@pytest.mark.parametrize(
    "build",
    [
        "l = []; t = (l,); l.append(t); obj = {'a': t, 'b': [t]}",
        "d = {}; t = (1, d); d['x'] = t; obj = [t]",
        "l = []; t = (l, frozenset([1])); l.append({'k': t}); obj = t",
        "l = []; s = frozenset([(1, 2)]); t = (s, l); l.append(t); l.append(s); obj = l",
    ],
)
def test_cycles_through_tuples_in_plain_data(tmp_path, build):
    out = run_child(
        tmp_path,
        f"""
        {build}
        path = sys.argv[1] + "/c.h5"
        if outcome(sn.save, obj, path) is not None:
            outcome(sn.load, path)
            outcome(sn.inspect, path)
            print("SAVED")
        """,
    )
    assert "SAVED" in out or "ERR SerializationError" in out, out


def test_deeply_nested_tuples_fail_cleanly_or_work(tmp_path):
    out = run_child(
        tmp_path,
        """
        t = ()
        for _ in range(100_000):
            t = (t,)
        for name in ("d.h5", "d.json"):
            path = sys.argv[1] + "/" + name
            if outcome(sn.save, t, path) is not None:
                print("SAVED", name)
        s = frozenset()
        for _ in range(50_000):
            s = frozenset([s])
        outcome(sn.save, {"s": s}, sys.argv[1] + "/s.h5")
        print("DONE")
        """,
    )
    assert "DONE" in out and "ERR SerializationError" in out, out
    assert "SAVED" not in out or "nested too deeply" not in out.split("SAVED")[0]


def test_hostile_deeply_nested_packed_blob_is_corrupt(tmp_path):
    """A heap blob of 100,000 nested tuple extension types (700 KB) is refused, not followed."""
    out = run_child(
        tmp_path,
        """
        path = sys.argv[1] + "/blob.h5"
        sn.save({"x": [1, 2, (3, 4), "padding" * 40]}, path)
        import struct
        # ext type 1 (a tuple) holding a one-item list holding the next level: level k of
        # 100,000 (0 innermost, an empty list) has a payload of 1 + 7k bytes
        blob = b"".join(
            b"\\xc9" + struct.pack(">I", 1 + 7 * k) + b"\\x01" + (b"\\x91" if k else b"\\x90")
            for k in reversed(range(100_000))
        )
        assert msgpack.unpackb(blob[-14:], ext_hook=lambda c, d: msgpack.unpackb(d)) == [msgpack.ExtType(1, b"\\x90")]
        with h5py.File(path, "r+") as f:
            del f["heap_0"]
            f.create_dataset("heap_0", data=np.frombuffer(blob, dtype=np.uint8))
        def change(index):
            index["root"]["h"] = ["heap_0", 0, len(blob)]
        rewrite_index(path, change)
        for fn in (sn.load, sn.inspect):
            outcome(fn, path)
        outcome(sn.load, path, safe=True)
        outcome(sn.load, path, key="x")
        print("DONE")
        """,
    )
    assert out.count("ERR CorruptFileError") == 4, out


def test_index_defining_an_object_through_itself_is_corrupt(tmp_path):
    out = run_child(
        tmp_path,
        """
        path = sys.argv[1] + "/loop.h5"
        shared = [1.5] * 40
        sn.save({"a": (shared, shared), "b": {"c": 1, "d": [shared]}}, path)
        def change(index):
            # a tuple whose item is a reference to the tuple itself, and a reference chained to itself
            index["root"]["items"][0][1] = {"k": "t", "id": 900, "items": [{"k": "r", "to": 900}]}
            index["root"]["items"][1][1] = {"k": "r", "to": 901, "id": 901}
        rewrite_index(path, change)
        outcome(sn.load, path)
        outcome(sn.load, path, key="a")
        outcome(sn.load, path, key="a/0")
        outcome(sn.inspect, path)
        outcome(sn.save, 5, path, key="b/c")
        outcome(sn.save, 5, path, key="b/e/f")
        print("DONE")
        """,
    )
    assert "DONE" in out, out
    assert out.count("ERR CorruptFileError") >= 5, out
    assert "Traceback" not in out


def test_json_backend_cycles_and_depth(tmp_path):
    out = run_child(
        tmp_path,
        """
        sys.setrecursionlimit(1000)  # the json backend relies on the standard library's guard
        l = []; t = (l,); l.append(t)
        outcome(sn.save, t, sys.argv[1] + "/t.json")
        d = {}; d["self"] = d
        outcome(sn.save, d, sys.argv[1] + "/d.json")
        print("DONE")
        """,
    )
    assert out.count("ERR SerializationError") == 2, out


def test_keys_thousands_of_levels_deep(tmp_path):
    out = run_child(
        tmp_path,
        """
        sys.setrecursionlimit(1000)
        key = "a/" * 3000 + "b"
        path = sys.argv[1] + "/k.h5"
        outcome(sn.save, 1, path, key=key)
        sn.save({"a": {"x": 1}}, path)
        outcome(sn.save, 1, path, key=key)
        outcome(sn.load, path, key=key)
        outcome(sn.inspect, path, key=key)
        print("DONE")
        """,
    )
    assert "DONE" in out and "Traceback" not in out, out
    assert out.count("ERR SerializationError") == 2 and out.count("ERR") == 4, out
