"""The undo journal below HDF5 (backends/h5/journal.py), on plain files: writes below ``base``
are kept in memory until the commit, appends go to disk at once, a commit interrupted at any
step is rolled back by :func:`journal.recover` to the exact old bytes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storage_nodes.backends.h5 import journal

OLD = bytes(range(256)) * 4  # 1 KiB


def _open(path: Path, base: int) -> journal.JournaledFile:
    return journal.JournaledFile(path, os.open(path, os.O_RDWR), base)


def _edit(jf: journal.JournaledFile) -> None:
    jf.seek(10)
    jf.write(b"NEW-BELOW-BASE")  # kept in memory
    jf.seek(len(OLD) + 8)
    jf.write(b"APPENDED")  # beyond the end: on disk at once


def test_kept_writes_stay_in_memory_until_the_commit(tmp_path: Path):
    path = tmp_path / "a.bin"
    path.write_bytes(OLD)
    jf = _open(path, base=512)
    try:
        _edit(jf)
        on_disk = path.read_bytes()
        assert on_disk[:512] == OLD[:512]  # the committed version is untouched
        assert on_disk[len(OLD) + 8 :] == b"APPENDED"
        jf.seek(0)
        assert jf.read(40)[10:24] == b"NEW-BELOW-BASE"  # reads see the kept write
        assert jf.kept == len(b"NEW-BELOW-BASE")
        jf.commit(durable=True)
    finally:
        os.close(jf.fd)
    data = path.read_bytes()
    assert data[10:24] == b"NEW-BELOW-BASE" and data[len(OLD) + 8 :] == b"APPENDED"
    assert not journal.journal_path(path).exists() and not journal.pin_path(path).exists()
    with pytest.raises(OSError):
        jf.write(b"late")  # a finished update takes no more writes


def test_an_abandoned_update_leaves_the_file_as_it_was(tmp_path: Path):
    path = tmp_path / "a.bin"
    path.write_bytes(OLD)
    jf = _open(path, base=512)
    try:
        _edit(jf)
        jf.abandon()
    finally:
        os.close(jf.fd)
    assert path.read_bytes() == OLD


class _Killed(BaseException):
    pass


@pytest.mark.parametrize("step", ["pin", "journal", "overwrite", "commit"])
def test_a_commit_stopped_at_any_step_is_rolled_back_exactly(tmp_path: Path, monkeypatch, step: str):
    """The in-process undo runs on an exception; a killed writer leaves the journal instead,
    which recover() replays (simulated here by keeping the journal the undo would remove)."""
    path = tmp_path / "a.bin"
    path.write_bytes(OLD)
    left: dict[str, bytes] = {}

    def hook(label: str) -> None:
        if label == step:
            j = journal.journal_path(path)
            if j.exists():
                left["journal"] = j.read_bytes()
            raise _Killed(label)

    monkeypatch.setattr(journal, "step_hook", hook)
    jf = _open(path, base=512)
    try:
        _edit(jf)
        with pytest.raises(_Killed):
            jf.commit(durable=False)
        jf.abandon()  # what the h5 backend does with an update that raised
    finally:
        os.close(jf.fd)
    monkeypatch.setattr(journal, "step_hook", None)
    assert path.read_bytes() == OLD  # undone before the error reached us
    if "journal" in left:  # as a SIGKILL would have left it: the new bytes written, the journal there
        with open(path, "r+b") as fh:
            fh.seek(10)
            fh.write(b"NEW-BELOW-BASE")
        journal.journal_path(path).write_bytes(left["journal"])
        os.link(path, journal.pin_path(path))
        assert journal.recover(path) is True
        assert path.read_bytes() == OLD
    assert not journal.journal_path(path).exists() and not journal.pin_path(path).exists()


def test_a_journal_for_another_file_is_removed_not_applied(tmp_path: Path):
    path = tmp_path / "a.bin"
    path.write_bytes(OLD)
    other = tmp_path / "b.bin"
    other.write_bytes(b"\0" * len(OLD))
    jf = _open(other, base=512)
    left: dict[str, bytes] = {}

    def hook(label: str) -> None:
        if label == "overwrite":
            left["journal"] = journal.journal_path(other).read_bytes()
            raise _Killed(label)

    try:
        jf.seek(0)
        jf.write(b"x" * 16)
        journal.step_hook = hook
        with pytest.raises(_Killed):
            jf.commit(durable=False)
    finally:
        journal.step_hook = None
        os.close(jf.fd)
    journal.journal_path(path).write_bytes(left["journal"])  # names b.bin's inode, not a.bin's
    journal.recover(path)
    assert path.read_bytes() == OLD
    assert not journal.journal_path(path).exists()
