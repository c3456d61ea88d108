"""Crash-safe writes and writer locks.

:func:`atomic_path` hands out a temporary file in the target's directory; only when the
block finishes without error is it flushed to disk and moved over the target with
``os.replace`` (atomic on POSIX and Windows). A crash or an exception leaves the old file
as it was and removes the temporary file.

:func:`writer_lock` serialises writers of one file across threads and processes
(``filelock``), for read-modify-write updates such as a partial update of an archive.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import filelock

from .errors import LockTimeoutError, NoSpaceError, StorageError

__all__ = ["TEMP_PREFIX", "atomic_path", "ensure_space", "fsync_path", "lock_path", "remove_stale_temps", "writer_lock"]

TEMP_PREFIX = ".sn-tmp-"
LOCK_SUFFIX = ".sn-lock"

_umask_lock = threading.Lock()
_UMASK: int | None = None


def _default_mode() -> int:
    global _UMASK
    with _umask_lock:
        if _UMASK is None:
            _UMASK = os.umask(0)
            os.umask(_UMASK)
    return 0o666 & ~_UMASK


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not possible on every platform / file system
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


#: free space kept beyond an estimate by :func:`ensure_space` (file-format metadata, rounding)
SPACE_SLACK = 1 << 18


def ensure_space(target: str | os.PathLike[str], nbytes: int, *, key: str | None = None) -> None:
    """Raise :class:`NoSpaceError` unless the file system holding ``target`` has room for
    ``nbytes`` more bytes (plus 1/64 and :data:`SPACE_SLACK`).

    For writers that cannot fail cleanly halfway: HDF5 that meets ENOSPC while closing a
    dataset leaves an object behind that crashes the interpreter when it is collected, so
    the h5 backend checks before it writes. Space taken by another process in between is
    not covered.
    """
    try:
        st = os.statvfs(Path(os.fsdecode(target)).parent)
    except (OSError, AttributeError, ValueError):  # no statvfs here: nothing to check
        return
    free = (st.f_bfree if os.geteuid() == 0 else st.f_bavail) * st.f_frsize
    need = nbytes + nbytes // 64 + SPACE_SLACK
    if free < need:
        where = f" at {key!r}" if key else ""
        detail = f" ({need} bytes needed, {free} free)"
        err = NoSpaceError(
            f"cannot write {os.fsdecode(target)}{where}: no space left on device{detail}",
            path=os.fsdecode(target),
            key=key,
        )
        err.detail = detail
        raise err


def _temp_prefix(target: Path) -> str:
    return f"{TEMP_PREFIX}{target.name}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temps(target: str | os.PathLike[str]) -> list[Path]:
    """Remove temporary files of ``target`` left by writers that were killed.

    Temporary names carry the writer's process id (``.sn-tmp-<name>.<pid>.<random>``);
    a file whose process no longer runs on this host is a leftover of a crash.
    """
    target = Path(target)
    removed: list[Path] = []
    own = f"{target.name}."
    try:  # names only (no Path per entry): this runs on every save, in directories of any size
        with os.scandir(target.parent) as entries:
            candidates = [e.name for e in entries if e.name.startswith(TEMP_PREFIX)]
    except OSError:
        return removed
    for original in candidates:
        name = original
        while name.startswith(TEMP_PREFIX):  # temporaries of temporaries (e.g. a compaction)
            name = name[len(TEMP_PREFIX) :]
        if not name.startswith(own):
            continue
        pid_text = name[len(own) :].split(".", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _pid_alive(int(pid_text)):
            candidate = target.parent / original
            with contextlib.suppress(OSError):
                candidate.unlink()
                removed.append(candidate)
    return removed


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success move it over ``target``.

    The new file keeps the permission bits of the file it replaces (or the umask default).
    With ``durable=True`` the data and the directory entry are fsynced. Temporary files
    left by killed writers of the same target are removed first.
    """
    target = Path(target)
    directory = target.parent
    if not directory.is_dir():
        raise StorageError(
            f"cannot write {target}: directory {directory} does not exist; create it first",
            path=target,
        )
    remove_stale_temps(target)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f"{_temp_prefix(target)}{os.getpid()}.", dir=directory)
    except PermissionError:
        raise StorageError(f"permission denied writing in {directory}", path=target) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        try:
            mode = target.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = _default_mode()
        os.chmod(tmp, mode)
        if durable:
            fsync_path(tmp)
        os.replace(tmp, target)
        if durable:
            _fsync_dir(directory)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def lock_path(target: str | os.PathLike[str]) -> Path:
    """The lock file used for ``target``: a hidden file beside it."""
    target = Path(target)
    return target.with_name("." + target.name + LOCK_SUFFIX)


@contextlib.contextmanager
def writer_lock(target: str | os.PathLike[str], timeout: float = 600.0) -> Iterator[None]:
    """Hold the exclusive writer lock of ``target`` (threads and processes)."""
    lock = filelock.FileLock(str(lock_path(target)), timeout=timeout, thread_local=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LockTimeoutError(
            f"could not lock {target} within {timeout} s: another process is writing it; "
            f"if none is, delete {lock_path(target)}",
            path=target,
        ) from None
    try:
        yield
    finally:
        lock.release()
