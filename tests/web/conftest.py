"""The catalog's web page as a real server process, and headless Chromium (Debian's, via Playwright).

Nothing here skips: without Chromium, uvicorn or PostgreSQL the tests fail, naming what is missing.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_ADDRESS = re.compile(r"serving catalog .* at (http://127\.0\.0\.1:\d+/)")


class Server:
    """A running ``storage-nodes catalog serve``: its base URL, process and output files."""

    def __init__(self, proc: subprocess.Popen, url: str, out: Path, err: Path) -> None:
        self.proc, self.url, self.out, self.err = proc, url, out, err

    def logs(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def interrupt(self, timeout: float = 20) -> int:
        """Ctrl-C (SIGINT) and wait for the exit; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=timeout)


@pytest.fixture(scope="session")
def catalog_server():
    """``catalog_server(catalog, directory, *options)``: a context manager running the server, yielding a Server."""
    return _serve


@contextlib.contextmanager
def _serve(catalog: str, directory: Path, *extra: str, timeout: float = 60) -> Iterator[Server]:
    """Start the server on ``catalog`` on a free port; yield it once it printed its address."""
    out, err = directory / "serve.out", directory / "serve.err"
    cmd = [sys.executable, "-m", "storage_nodes", "catalog", "serve", "--catalog", catalog, "--port", "0", *extra]
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(cmd, stdout=o, stderr=e, start_new_session=True)
    server = None
    try:
        deadline = time.monotonic() + timeout
        while server is None:
            found = _ADDRESS.search(out.read_text(errors="replace"))
            if found:
                server = Server(proc, found.group(1), out, err)
            elif proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the server did not start ({proc.poll()}):\n{err.read_text()[-3000:]}")
            else:
                time.sleep(0.1)
        yield server
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
