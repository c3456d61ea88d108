"""Change notification for directories (Linux inotify through ctypes), so that the git state
of a package can be kept between saves instead of stat'ing every tracked file each time.

:func:`watcher` gives the process's :class:`Watcher`, or None where inotify is missing, on
another platform, or after it failed once. A watch only counts on a local file system
(ext4, xfs, btrfs, tmpfs, ...): on NFS and other network file systems an edit made on
another host sends no event, so :meth:`Watcher.watch` refuses such directories and the
caller stats the files as before. After ``fork`` the child makes its own instance (the
parent's queue would be shared).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import sys
import threading
from collections.abc import Iterable

from .._mounts import LOCAL_FILE_SYSTEMS, filesystem_of, read_mounts

__all__ = ["LOCAL_FILE_SYSTEMS", "Watcher", "watcher"]

_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
#: content or metadata changed, an entry created, deleted or moved, the directory itself gone
_MASK = 0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800
_IN_ONLYDIR = 0x01000000


class Watcher:
    """One inotify instance: :meth:`watch` directories; :meth:`generation` grows with every
    batch of events, so what was computed at one generation holds while it stays."""

    def __init__(self, libc: ctypes.CDLL, fd: int) -> None:
        self._libc = libc
        self.fd = fd
        self.pid = os.getpid()
        self._watched: set[str] = set()
        self._mounts = read_mounts()
        self._generation = 0
        self._lock = threading.Lock()
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)

    def _local(self, directory: str) -> bool:
        return filesystem_of(directory, self._mounts) in LOCAL_FILE_SYSTEMS

    def watch(self, directories: Iterable[str]) -> bool:
        """Watch each directory; False if one cannot be watched (then rely on nothing)."""
        with self._lock:
            for directory in directories:
                if directory in self._watched:
                    continue
                if not self._local(directory):
                    return False
                wd = self._libc.inotify_add_watch(self.fd, os.fsencode(directory), _MASK | _IN_ONLYDIR)
                if wd < 0:
                    return False
                self._watched.add(directory)
            return True

    def generation(self) -> int:
        """A counter that grows when events arrive (reads the queue empty): a value kept with
        the generation it was computed at is still good while the generation is the same.
        Every reader sees every change (unlike a read-and-clear flag)."""
        with self._lock:
            if not self._poll.poll(0):  # nothing queued (a failed read would cost an exception)
                return self._generation
            while True:
                try:
                    data = os.read(self.fd, 65536)
                except BlockingIOError:
                    return self._generation
                except OSError:  # the queue cannot be read: trust nothing kept so far
                    self._generation += 1
                    self._watched.clear()
                    return self._generation
                if not data:
                    return self._generation
                self._generation += 1
                # a removed watch (its directory deleted or moved) must be added again
                self._watched.clear()

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


_lock = threading.Lock()
_instance: Watcher | None = None
_failed = False


def watcher() -> Watcher | None:
    """The process's :class:`Watcher`, made on first use; None where inotify is not available."""
    global _instance, _failed
    with _lock:
        if _instance is not None and _instance.pid != os.getpid():  # forked: the queue is the parent's
            _instance = None
        if _instance is not None or _failed:
            return _instance
        if not sys.platform.startswith("linux"):
            _failed = True
            return None
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            libc.inotify_init1.argtypes = [ctypes.c_int]
            libc.inotify_init1.restype = ctypes.c_int
            libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            libc.inotify_add_watch.restype = ctypes.c_int
            fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        except (OSError, AttributeError):
            fd = -1
        if fd < 0:
            _failed = True
            return None
        _instance = Watcher(libc, fd)
        return _instance


def reset() -> None:
    """Drop the process's instance (tests; a later :func:`watcher` makes a new one)."""
    global _instance, _failed
    with _lock:
        if _instance is not None:
            _instance.close()
        _instance = None
        _failed = False
