"""A real, tiny, full-able disk for one child process: a private tmpfs mounted in a new
mount namespace (util-linux ``unshare``), gone when the child exits."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def run_on_tmpfs(tmp_path: Path, child: str, *, size: str = "1536k", timeout: float = 300) -> str:
    """Run the Python source ``child`` with the mount point as ``sys.argv[1]``; its stdout (the test fails
    otherwise)."""
    unshare = shutil.which("unshare")
    assert unshare, "util-linux unshare is needed to mount a private tmpfs"
    flags = ["--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        flags.insert(0, "--map-root-user")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = tmp_path / "child.py"
    script.write_text(child)
    shell = f"mount -t tmpfs -o size={size} tmpfs {mnt} && exec {sys.executable} {script} {mnt}"
    proc = subprocess.run([unshare, *flags, "sh", "-c", shell], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not any(mnt.iterdir())  # the tmpfs was private to the child
    return proc.stdout
