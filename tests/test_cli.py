"""The command line, run as a user would: in a fresh subprocess."""

from __future__ import annotations

import subprocess
import sys

import storage_nodes as sn


def _run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "storage_nodes.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_help_lists_commands():
    out = _run("--help")
    assert out.returncode == 0
    for cmd in ("demo", "inspect", "backends"):
        assert cmd in out.stdout


def test_inspect_command(tmp_path):
    path = sn.save({"a": [1, 2]}, tmp_path / "a.json", metadata={"who": "cli"})
    out = _run("inspect", str(path))
    assert out.returncode == 0 and "who" in out.stdout and "a: list" in out.stdout
    out = _run("inspect", str(path), "--json")
    assert '"backend": "json"' in out.stdout


def test_inspect_missing_file_exits_nonzero_with_message(tmp_path):
    out = _run("inspect", str(tmp_path / "missing.h5"))
    assert out.returncode == 1 and "missing.h5" in out.stderr and "Traceback" not in out.stderr


def test_verify_routes_collections_and_fails_on_a_tampered_member(tmp_path):
    member = sn.save({"a": 1}, tmp_path / "m.json")
    col = sn.Collection.create(tmp_path / "collection.json", title="t")
    col.add(member, name="m")
    out = _run("verify", str(tmp_path / "collection.json"))
    assert out.returncode == 0, out.stdout + out.stderr
    sn.save({"a": 2}, member)  # changed after it was added: the checksum no longer matches
    out = _run("verify", str(tmp_path / "collection.json"))
    assert out.returncode == 1 and "m" in out.stdout, out.stdout + out.stderr
