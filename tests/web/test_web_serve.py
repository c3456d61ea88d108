"""``storage-nodes catalog serve`` refusing to start: a clear error, exit status 1, no password shown."""

from __future__ import annotations

import subprocess
import sys


def _serve(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "storage_nodes", "catalog", "serve", "--port", "0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_an_unreachable_database_is_an_error_without_its_password(tmp_path):
    done = _serve("--catalog", "postgresql://alice:hunter2-secret@127.0.0.1:1/pyiron")
    assert done.returncode == 1, done.stderr
    assert "storage-nodes: error:" in done.stderr and "alice:***@127.0.0.1:1/pyiron" in done.stderr
    assert "hunter2" not in done.stdout + done.stderr
    assert "serving" not in done.stdout


def test_a_root_that_is_not_a_directory_is_refused(tmp_path):
    done = _serve("--catalog", str(tmp_path / "c.sqlite"), "--root", str(tmp_path / "missing"))
    assert done.returncode == 1
    assert f"--root {tmp_path / 'missing'}: not a directory" in done.stderr
    assert not (tmp_path / "c.sqlite").exists()  # refused before the catalog was opened (or created)
