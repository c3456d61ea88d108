"""Writer locks that work where ``flock`` does not: cluster file systems without file locks.

:func:`writer_lock` serialises the writers of one file across threads and processes. It
takes an ``flock`` on a hidden lock file beside the target (``filelock.FileLock``). Many
cluster file systems are mounted without ``flock`` support (Lustre ``noflock``, NFS without
a lock daemon, GPFS through Cray DVS): there ``flock()`` fails with ``ENOLCK``, ``ENOSYS`` or
``EOPNOTSUPP``. Then, and from then on for that file system in this process, the lock is a
lock file created with ``O_CREAT | O_EXCL`` (``filelock.SoftFileLock``), which works on such
mounts: it records host, process id and the process's start time, and a lock left by a
process of this host that no longer runs is taken over. A lock left by a process of
another host cannot be judged from here: it is waited for, and a timeout says which host
and process hold it and which file to delete when none does. A warning says once per mount
that the lock files are in use.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import filelock

from ._mounts import mount_of, read_mounts
from .errors import LockTimeoutError, StorageError

__all__ = [
    "LOCK_SUFFIX",
    "LOCKS_UNAVAILABLE",
    "NoFileLocksWarning",
    "lock_path",
    "locks_unavailable",
    "note_no_locks",
    "record_locks_refused",
    "writer_lock",
]

LOCK_SUFFIX = ".sn-lock"

#: the ``errno`` values with which ``flock``/``fcntl`` say that a file system has no locks
LOCKS_UNAVAILABLE = frozenset({errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", 95)})


class NoFileLocksWarning(RuntimeWarning):
    """A file system without ``flock``/``fcntl`` locks: storage_nodes uses what works there."""


_lock = threading.Lock()
#: st_dev of each file system probed in this process -> whether ``flock`` works there
_flock_on: dict[int, bool] = {}
_warned: set[tuple[str, str]] = set()


def locks_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` is a lock call refused because the file system has no locks."""
    return isinstance(exc, OSError) and exc.errno in LOCKS_UNAVAILABLE


_record_locks: dict[int, OSError | None] = {}


def record_locks_refused(directory: str | os.PathLike[str]) -> OSError | None:
    """The error with which ``fcntl`` record locks (SQLite's) fail on the file system of
    ``directory``, or ``None`` where they work or cannot be probed (probed once per file
    system and process, on a temporary file removed at once)."""
    try:
        device = os.stat(directory).st_dev
    except OSError:
        return None
    if device in _record_locks:
        return _record_locks[device]
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fd, name = tempfile.mkstemp(prefix=".sn-lockprobe-", dir=directory)
    except OSError:
        return None  # not writable here: SQLite will say what it finds
    refused: OSError | None = None
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.lockf(fd, fcntl.LOCK_UN)
    except OSError as exc:
        if locks_unavailable(exc):
            refused = exc
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(name)
    with _lock:
        _record_locks[device] = refused
    return refused


def lock_path(target: str | os.PathLike[str], *, soft: bool = False) -> Path:
    """The lock file used for ``target``: a hidden file beside it (``soft``: the O_EXCL one)."""
    target = Path(target)
    return target.with_name(f".{target.name}{'.soft' if soft else ''}{LOCK_SUFFIX}")


def _flock_works(lock_file: Path) -> bool:
    """Whether ``flock`` works on the file system of ``lock_file`` (probed once per file
    system and process, on the lock file itself, without waiting for anyone)."""
    try:
        device = os.stat(lock_file.parent).st_dev
    except OSError:
        return True  # the lock itself will say what is wrong
    known = _flock_on.get(device)
    if known is not None:
        return known
    try:
        import fcntl
    except ImportError:  # Windows: filelock locks there its own way
        return True
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError as exc:
        if locks_unavailable(exc):
            _remember_no_flock(lock_file, exc)
            return False
    finally:
        os.close(fd)
    with _lock:
        _flock_on[device] = True
    return True


def _remember_no_flock(lock_file: Path, exc: OSError) -> None:
    with contextlib.suppress(OSError), _lock:
        _flock_on[os.stat(lock_file.parent).st_dev] = False
    note_no_locks(lock_file.parent, exc, what="storage_nodes' writer lock", instead="lock files (O_EXCL)")


def note_no_locks(path: str | os.PathLike[str], exc: BaseException, *, what: str, instead: str) -> None:
    """Warn once per process and mount that ``what`` found no file locks at ``path``
    (``exc``), and that ``instead`` is used there."""
    point, kind = mount_of(path, read_mounts())
    key = (point or "?", what)
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    reason = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else str(exc)
    mount = f"{point} ({kind})" if point else "this file system"
    warnings.warn(
        f"{mount} has no file locks ({reason}): {what} uses {instead} there. See 'On cluster "
        "file systems' in docs/reliability.md (a group's catalog belongs in PostgreSQL)",
        NoFileLocksWarning,
        stacklevel=4,
    )


@contextlib.contextmanager
def writer_lock(target: str | os.PathLike[str], timeout: float = 600.0) -> Iterator[None]:
    """Hold the exclusive writer lock of ``target`` (threads and processes, also on file
    systems without ``flock``: see the module's docstring)."""
    flock_file = lock_path(target)
    if _flock_works(flock_file):
        lock = filelock.FileLock(str(flock_file), timeout=timeout, thread_local=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise _timeout(target, timeout, flock_file, None) from None
        except OSError as exc:
            if not locks_unavailable(exc):
                raise StorageError(f"cannot lock {target} ({flock_file}): {exc}", path=target) from None
            _remember_no_flock(flock_file, exc)  # a directory made since the probe, on such a mount
        else:
            try:
                yield
            finally:
                lock.release()
            return
    soft_file = lock_path(target, soft=True)
    soft = filelock.SoftFileLock(str(soft_file), timeout=timeout, thread_local=False)
    try:
        soft.acquire()
    except filelock.Timeout:
        raise _timeout(target, timeout, soft_file, _holder(soft_file)) from None
    except OSError as exc:
        raise StorageError(f"cannot lock {target} ({soft_file}): {exc}", path=target) from None
    try:
        yield
    finally:
        soft.release()


def _holder(soft_file: Path) -> str | None:
    """``host`` and ``pid`` recorded in a lock file, for the timeout message."""
    try:
        text = soft_file.read_text(errors="replace")
    except OSError:
        return None
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    if "host" in fields and "pid" in fields:
        return f"process {fields['pid']} on host {fields['host']}"
    lines = text.splitlines()
    return f"process {lines[0]} on host {lines[1]}" if len(lines) >= 2 and lines[0].isdigit() else None


def _timeout(target: str | os.PathLike[str], timeout: float, lock_file: Path, holder: str | None) -> LockTimeoutError:
    who = f"{holder} is writing it" if holder else "another process is writing it"
    return LockTimeoutError(
        f"could not lock {target} within {timeout} s: {who}; if none is, delete {lock_file}",
        path=target,
    )
