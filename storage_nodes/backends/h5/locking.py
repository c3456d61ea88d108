"""HDF5's own file locks, following the user and the file system.

HDF5 (1.10+) locks every file it opens with ``flock``. On a cluster file system mounted
without locks (Lustre ``noflock``, NFS without a lock daemon, GPFS through Cray DVS) that
fails (``ENOLCK``, ``ENOSYS``, ``EOPNOTSUPP``) and HDF5 refuses to open a healthy file: h5py
issues 1082 and 1101, "unable to lock file". Here:

- ``HDF5_USE_FILE_LOCKING`` set: HDF5 does as it says (``FALSE``: no locks; ``TRUE``:
  locks, and a file system without them is an error that says so, never "corrupt");
- unset: the archive opens with HDF5's locks; where they fail for want of locks it opens
  again without them (as h5py's ``locking=False``), from then on for that file system in
  this process, and warns once per mount, naming the mount and the variable. Our own
  locks (the writer lock, the readers' lock of in-place updates) carry on regardless:
  :mod:`storage_nodes.locks` and ``docs/reliability.md``, "On cluster file systems".
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ...errors import StorageError
from ...locks import LOCKS_UNAVAILABLE, note_no_locks

__all__ = ["ENV", "forced", "lock_failure", "locked_open", "no_locks_error", "use_locks"]

#: HDF5's own switch, read by the library at every open (it overrides what a program asks)
ENV = "HDF5_USE_FILE_LOCKING"

T = TypeVar("T")
_lock = threading.Lock()
_unlocked: set[int] = set()  # st_dev of file systems found without locks in this process


def forced() -> str | None:
    """What the user set ``HDF5_USE_FILE_LOCKING`` to (upper case), or ``None``."""
    value = os.environ.get(ENV)
    return value.strip().upper() if value is not None else None


def lock_failure(exc: BaseException) -> bool:
    """Whether an error of HDF5 opening a file is its lock failing for want of locks."""
    if not isinstance(exc, OSError):
        return False
    return exc.errno in LOCKS_UNAVAILABLE or "unable to lock file" in str(exc)


def _device(path: Path) -> int | None:
    for where in (path, path.parent):
        try:
            return os.stat(where).st_dev
        except OSError:
            continue
    return None


def use_locks(path: Path) -> bool:
    """Whether to ask HDF5 for its locks on ``path`` (not on a file system found without them)."""
    return _device(path) not in _unlocked


def locked_open(path: Path, attempt: Callable[[bool], T]) -> T:
    """``attempt(locking)``: first with HDF5's locks (unless this file system is known to have
    none), again without them when they fail for want of locks and the user did not ask for
    them; a failure that remains is raised as it is."""
    locking = use_locks(path)
    try:
        return attempt(locking)
    except OSError as exc:
        if not locking or not lock_failure(exc) or forced() is not None:
            raise
        device = _device(path)
        if device is not None:
            with _lock:
                _unlocked.add(device)
        note_no_locks(
            path.parent,
            exc,
            what="HDF5",
            instead=f"no HDF5 file locks (set {ENV}=FALSE to say so and skip this try)",
        )
        return attempt(False)


def no_locks_error(path: Path, exc: BaseException, *, key: str | None = None) -> StorageError:
    """The error for HDF5's lock failing on ``path`` while ``HDF5_USE_FILE_LOCKING`` asks for locks."""
    return StorageError(
        f"cannot open {path}: HDF5 could not lock it ({exc}); the file system has no file locks "
        f"and {ENV}={os.environ.get(ENV)!r} asks for them: set {ENV}=FALSE (or unset it) to read "
        "and write there without HDF5's locks",
        path=path,
        key=key,
    )
