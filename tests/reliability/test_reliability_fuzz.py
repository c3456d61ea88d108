"""Damaged, foreign and inaccessible files: every failure is a StorageError naming the file.

A seeded loop (repeatable) truncates files at random offsets, flips random bytes,
replaces them with foreign formats, and checks load and inspect: each either succeeds
(the damage sat in bytes that were not needed) or raises a StorageError subclass whose
message names the file. No other exception type may escape.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import storage_nodes as sn

BACKENDS = {"pickle": ".pkl", "cloudpickle": ".cpkl", "json": ".json", "h5": ".h5"}
CASES_PER_BACKEND = 120


def _sample() -> dict:
    return {
        "energy": -1.5,
        "forces": np.arange(30.0).reshape(10, 3),
        "labels": ["a", "b", "ç"],
        "nested": {"k": (1, 2), "b": b"xyz", "n": None},
    }


def _foreign_payloads(tmp_path) -> list[bytes]:
    zpath = tmp_path / "foreign.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("a.txt", "hello")
    import pickle

    return [
        b"",
        b"\x89PNG\r\n\x1a\n" + bytes(64),
        zpath.read_bytes(),
        pickle.dumps({"plain": "pickle"}),
        b"\x89HDF\r\n\x1a\n" + os.urandom(200),
        b'{"storage_nodes": 3}',
        b'{"storage_nodes": {"format_version": 1}, "data": {"__sn__": "ndarray", "dtype": "<f8", "shape": [5]}}',
        b"\x93SN-PKL\n" + (2**63).to_bytes(8, "little"),
        b"\x93SN-CPK\n" + (16).to_bytes(8, "little") + b"{}",
        b"\x00" * 4096,
        "ünïcode text".encode(),
    ]


def _mutations(raw: bytes, rng: random.Random, foreign: list[bytes]) -> list[tuple[str, bytes]]:
    cases = []
    for _ in range(CASES_PER_BACKEND // 3):
        cut = rng.randrange(0, len(raw))
        cases.append((f"truncate@{cut}", raw[:cut]))
    for _ in range(CASES_PER_BACKEND // 3):
        data = bytearray(raw)
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        cases.append(("flip", bytes(data)))
    for i in range(CASES_PER_BACKEND - len(cases)):
        cases.append((f"foreign#{i % len(foreign)}", foreign[i % len(foreign)]))
    return cases


def _check(path, fn) -> str:
    try:
        fn()
    except sn.StorageError as exc:
        assert str(path) in str(exc), f"error does not name the file: {exc}"
        return "error"
    except Warning:
        return "warning"
    return "ok"


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_fuzzed_files_raise_storage_errors_only(tmp_path, backend):
    rng = random.Random(f"fuzz-{backend}")
    good = sn.save(_sample(), tmp_path / f"good{BACKENDS[backend]}", metadata={"m": 1})
    raw = good.read_bytes()
    outcomes = {"ok": 0, "error": 0, "warning": 0}
    cases = _mutations(raw, rng, _foreign_payloads(tmp_path))
    assert len(cases) == CASES_PER_BACKEND
    for n, (label, data) in enumerate(cases):
        path = tmp_path / f"case{n}{BACKENDS[backend]}"
        path.write_bytes(data)
        for fn in (lambda p=path: sn.load(p, version_policy="ignore"), lambda p=path: sn.inspect(p)):
            try:
                outcomes[_check(path, fn)] += 1
            except AssertionError as exc:
                raise AssertionError(f"case {label}: {exc}") from exc
            except Exception as exc:  # the point of the test: nothing else escapes
                raise AssertionError(f"case {label}: {type(exc).__name__} escaped: {exc}") from exc
    assert outcomes["error"] > CASES_PER_BACKEND // 2  # most damage is detected, not silently loaded


def test_directory_and_empty_file(tmp_path):
    for target in (tmp_path, tmp_path / "empty.pkl"):
        if target != tmp_path:
            target.write_bytes(b"")
        for fn in (sn.load, sn.inspect):
            with pytest.raises(sn.StorageError) as err:
                fn(target)
            assert str(target) in str(err.value)


PERMISSION_SCRIPT = """
import sys, storage_nodes as sn
path = sys.argv[1]
for fn in (sn.load, sn.inspect):
    try:
        fn(path)
    except sn.StorageError as exc:
        assert path in str(exc), exc
        assert "permission denied" in str(exc).lower(), exc
    else:
        raise SystemExit("no error")
try:
    sn.save(1, path)
except sn.StorageError as exc:
    assert "permission denied" in str(exc).lower(), exc
else:
    raise SystemExit("save did not fail")
print("OK")
"""


def test_permission_denied_is_a_storage_error(tmp_path):
    """Root reads any file, so as root the check runs without the DAC-override capabilities."""
    d = tmp_path / "locked"
    d.mkdir()
    path = sn.save({"a": 1}, d / "locked.pkl")
    os.chmod(path, 0)
    os.chmod(d, 0o555)  # cannot create a temporary file for a save either
    prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    try:
        out = subprocess.run(
            [*prefix, sys.executable, "-c", PERMISSION_SCRIPT, str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        os.chmod(d, 0o755)
        os.chmod(path, 0o644)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr
