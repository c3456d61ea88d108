"""storage_nodes._reclaim: a big replaced file's blocks are freed after the save returns."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

import storage_nodes as sn
from storage_nodes import _reclaim
from storage_nodes.atomic import atomic_path, ensure_space


def _big(path: Path, fill: int = 1) -> Path:
    path.write_bytes(bytes([fill]) * _reclaim.MIN_BYTES)
    return path


def _deleted_open(name: str) -> list[str]:
    """Targets of this process's descriptors that name a deleted ``name``."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if name in link and link.endswith("(deleted)"):
            found.append(link)
    return found


def _closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


@pytest.fixture
def blocked(monkeypatch: pytest.MonkeyPatch):
    """The background closer waits until the test sets the event."""
    _reclaim.drain()
    go = threading.Event()
    real = _reclaim._close

    def slow(fd: int) -> None:
        if threading.current_thread().name == "storage_nodes-reclaim":
            assert go.wait(30), "the test never let the closer go on"
        real(fd)

    monkeypatch.setattr(_reclaim, "_close", slow)
    yield go
    go.set()
    _reclaim.drain()


def test_only_big_files_of_one_link_on_a_local_file_system_are_held(tmp_path: Path):
    small = tmp_path / "small.bin"
    small.write_bytes(b"x" * 100)
    assert _reclaim.hold(small, os.stat(small)) is None
    big = _big(tmp_path / "big.bin")
    fd = _reclaim.hold(big, os.stat(big))
    assert fd is not None and os.fstat(fd).st_ino == os.stat(big).st_ino
    os.close(fd)
    os.link(big, tmp_path / "other-name.bin")  # a rename over it frees nothing
    assert _reclaim.hold(big, os.stat(big)) is None


def test_a_file_replaced_since_its_stat_is_not_held(tmp_path: Path):
    big = _big(tmp_path / "big.bin")
    st = os.stat(big)
    os.replace(_big(tmp_path / "new.bin", 2), big)
    assert _reclaim.hold(big, st) is None


def test_network_file_systems_are_not_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    big = _big(tmp_path / "big.bin")
    monkeypatch.setattr(_reclaim, "_local", {})
    monkeypatch.setattr(_reclaim, "read_mounts", lambda: [("/", "nfs4")])
    assert _reclaim.hold(big, os.stat(big)) is None  # an open replaced file there becomes .nfsXXXX


def test_the_rename_drops_a_name_and_the_closer_frees_the_old_file(tmp_path: Path, blocked: threading.Event):
    target = _big(tmp_path / "r.bin")
    with atomic_path(target) as tmp:
        _big(tmp, 2)
    assert target.read_bytes()[:1] == b"\x02"
    assert _reclaim.pending() == 1
    assert _deleted_open("r.bin")  # the old inode is still open: the rename did not free it
    blocked.set()
    _reclaim.drain()
    assert _reclaim.pending() == 0 and not _deleted_open("r.bin")


def test_at_most_max_pending_wait(tmp_path: Path, blocked: threading.Event):
    fds = []
    for i in range(_reclaim.MAX_PENDING + 2):
        path = _big(tmp_path / f"f{i}.bin")
        fd = _reclaim.hold(path, os.stat(path))
        assert fd is not None
        fds.append(fd)
        _reclaim.release(fd)
    assert _reclaim.pending() == _reclaim.MAX_PENDING
    assert [_closed(fd) for fd in fds[_reclaim.MAX_PENDING :]] == [True, True]  # closed at once
    blocked.set()
    _reclaim.drain()
    assert _reclaim.pending() == 0


def test_a_forked_child_closes_what_waits(tmp_path: Path, blocked: threading.Event):
    target = _big(tmp_path / "r.bin")
    path = _big(tmp_path / "queued.bin")
    first = _reclaim.hold(target, os.stat(target))
    second = _reclaim.hold(path, os.stat(path))
    _reclaim.release(first)  # taken by the blocked closer
    _reclaim.release(second)  # waits in the queue
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read)
            os.write(write, b"1" if _closed(second) and _reclaim.pending() == 0 else b"0")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"1"
    assert not _closed(second)  # the parent's closer still owns it


def test_a_save_short_of_space_waits_for_the_closer(tmp_path: Path, blocked: threading.Event, monkeypatch):
    target = _big(tmp_path / "r.bin")
    with atomic_path(target) as tmp:
        _big(tmp, 2)
    assert _reclaim.pending() == 1
    statvfs = os.statvfs

    def scarce(path):  # room only once the old version is freed
        real = statvfs(path)
        free = 10**9 if _reclaim.pending() == 0 else 0
        return os.statvfs_result((*real[:3], free, free, *real[5:]))

    threading.Timer(0.05, blocked.set).start()
    monkeypatch.setattr(os, "statvfs", scarce)
    ensure_space(target, 1000)  # raises NoSpaceError if it did not wait
    assert _reclaim.pending() == 0


def test_saves_of_a_big_array_load_back_exactly(tmp_path: Path):
    path = tmp_path / "a.h5"
    for seed in range(3):
        value = np.random.default_rng(seed).random(2 * _reclaim.MIN_BYTES // 8)
        sn.save(value, path)
        np.testing.assert_array_equal(sn.load(path), value)
    _reclaim.drain()
    assert not _deleted_open("a.h5")


def test_a_write_into_a_nearly_full_file_system_waits_for_the_frees(tmp_path: Path, blocked, monkeypatch):
    target = _big(tmp_path / "r.bin")
    with atomic_path(target) as tmp:
        _big(tmp, 2)
    assert _reclaim.pending() == 1
    statvfs = os.statvfs
    room = {"free": 10**12}

    def measured(path):
        real = statvfs(path)
        free = room["free"] // real.f_frsize
        return os.statvfs_result((*real[:3], free, free, *real[5:]))

    monkeypatch.setattr(os, "statvfs", measured)
    _reclaim.make_room(str(tmp_path))  # plenty of room: no wait
    assert _reclaim.pending() == 1
    room["free"] = 3 * _reclaim.MIN_BYTES  # less than four times the file being freed
    threading.Timer(0.05, blocked.set).start()
    with atomic_path(tmp_path / "other.bin") as tmp:  # waits before it writes
        assert _reclaim.pending() == 0
        tmp.write_bytes(b"x")
