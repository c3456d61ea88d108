"""storage_nodes.atomic: whole-file replacement, leftovers of killed writers, the writer lock."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

import storage_nodes as sn
from storage_nodes.atomic import TEMP_PREFIX, atomic_path, lock_path, remove_stale_temps, writer_lock


def test_the_target_is_replaced_only_when_the_block_succeeds(tmp_path: Path):
    target = tmp_path / "r.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert target.read_bytes() == b"old"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]
    with atomic_path(target, durable=True) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(TEMP_PREFIX)
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert os.stat(target).st_mode & 0o777 == 0o640  # the replaced file's permission bits


def test_a_missing_directory_is_a_storage_error(tmp_path: Path):
    with pytest.raises(sn.StorageError, match="does not exist"), atomic_path(tmp_path / "no" / "r.bin"):
        pass


def _dead_pid() -> int:
    proc = mp.get_context("fork").Process(target=os._exit, args=(0,))
    proc.start()
    proc.join()
    return proc.pid


def test_temporaries_of_killed_writers_are_removed_and_live_ones_kept(tmp_path: Path):
    target = tmp_path / "r.h5"
    dead = tmp_path / f"{TEMP_PREFIX}r.h5.{_dead_pid()}.abc"
    live = tmp_path / f"{TEMP_PREFIX}r.h5.{os.getppid()}.abc"
    other = tmp_path / f"{TEMP_PREFIX}other.h5.{_dead_pid()}.abc"
    for p in (dead, live, other):
        p.write_bytes(b"x")
    assert remove_stale_temps(target) == [dead]
    assert live.exists() and other.exists() and not dead.exists()


def _hold(target: str, started, seconds: float) -> None:
    with writer_lock(target):
        started.set()
        time.sleep(seconds)


def test_the_writer_lock_excludes_another_process_and_times_out_with_advice(tmp_path: Path):
    target = tmp_path / "r.h5"
    ctx = mp.get_context("fork")
    started = ctx.Event()
    proc = ctx.Process(target=_hold, args=(str(target), started, 1.5))
    proc.start()
    try:
        assert started.wait(10)
        assert lock_path(target).name == ".r.h5.sn-lock"
        with pytest.raises(sn.LockTimeoutError, match="another process is writing it"), writer_lock(
            target, timeout=0.2
        ):
            pass
        t0 = time.monotonic()
        with writer_lock(target, timeout=10):
            waited = time.monotonic() - t0
        assert waited > 0.2  # it had to wait for the other process to let go
    finally:
        proc.join()
