"""A throw-away PostgreSQL cluster for the tests: ``initdb`` + ``pg_ctl`` on a unix socket.

The catalog and the fleche call storage run their suites on SQLite and on PostgreSQL.
``STORAGE_NODES_TEST_POSTGRES`` (a SQLAlchemy URL) points the tests at a server of your
own instead; without it a cluster is started from the server binaries found on ``PATH``
or under ``/usr/lib/postgresql/*/bin`` (Debian). If neither works the tests fail: a
missing server never turns into a skip.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

USER = "sn"


def _bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if not candidates:
        raise RuntimeError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin; "
            "install the server (Debian: apt-get install postgresql) or set STORAGE_NODES_TEST_POSTGRES "
            "to the SQLAlchemy URL of a server the tests may create databases on"
        )
    return Path(candidates[0]).parent


def _runner() -> list[str]:
    """Run the server binaries as ``postgres`` when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


@contextlib.contextmanager
def cluster() -> Iterator[str]:
    """Start a cluster in a temp dir; yield the base URL (no database name); stop and remove it."""
    bindir = _bindir()
    run = _runner()
    # a short path: unix socket paths are limited to ~107 bytes
    root = Path(tempfile.mkdtemp(prefix="snpg-", dir="/tmp"))
    data, sock = root / "data", root / "sock"
    data.mkdir()
    sock.mkdir()
    if run:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
        shutil.chown(sock, "postgres")
    log = root / "log"

    def call(*args: str) -> None:
        proc = subprocess.run([*run, *args], capture_output=True, text=True, timeout=120)
        if proc.returncode:
            extra = log.read_text() if log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n{extra}")

    try:
        call(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", USER, "--no-sync", "-E", "UTF8")
        if run:
            log.touch()
            shutil.chown(log, "postgres")
        call(
            str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
            "-o", f"-c listen_addresses='' -k {sock} -c fsync=off -c max_connections=200",
            "start",
        )  # fmt: skip
        try:
            yield f"postgresql+psycopg://{USER}@/postgres?host={sock}"
        finally:
            subprocess.run(
                [*run, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def create_database(base_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``base_url``; return its URL."""
    import sqlalchemy as sa

    engine = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    url = sa.engine.make_url(base_url).set(database=name)
    return url.render_as_string(hide_password=False)
