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


def test_python_dash_m_storage_nodes_is_the_command(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "storage_nodes", "inspect", str(tmp_path / "missing.h5")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1 and out.stderr == f"storage-nodes: error: no such file: {tmp_path / 'missing.h5'}\n"


def test_a_reader_that_leaves_early_is_no_traceback(tmp_path):
    path = sn.save({f"k{i}": i for i in range(2000)}, tmp_path / "big.json")
    proc = subprocess.Popen(
        [sys.executable, "-m", "storage_nodes", "inspect", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()  # like `| head -1`: nobody reads the listing
    err = proc.stderr.read()
    proc.wait(timeout=300)
    assert proc.returncode == 1 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_inspect_depth_limits_the_levels(tmp_path):
    import json

    from storage_nodes.cli import main

    path = sn.save({"a": {"b": {"c": 1}}, "d": 2}, tmp_path / "deep.h5")
    assert main(["inspect", str(path), "--depth", "1", "--json"]) == 0
    out = _run("inspect", str(path), "--depth", "1", "--json")
    root = json.loads(out.stdout)["root"]
    assert [c["name"] for c in root["children"]] == ["a", "d"]
    assert "children" not in root["children"][0] and root["children"][0]["truncated"] == 1
    out = _run("inspect", str(path), "--depth", "-1")
    assert out.returncode == 2 and "whole number >= 0" in out.stderr
