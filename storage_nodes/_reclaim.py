"""Freeing a replaced file's blocks after the save that replaced it has returned.

Renaming a new file over a big old one frees the old file's blocks inside ``rename``: on
ext4 that waits for pages of the old file still being written back (the previous save's
rename started their writeback) and took 15-40 ms of a 73 MB save here. :func:`hold` opens
the file about to be replaced; the open descriptor keeps its inode, so the rename only
drops a name. :func:`release` gives the descriptor to one background thread whose
``close`` is the last reference: the blocks are freed there, while the caller goes on.

Only for files of at least :data:`MIN_BYTES` on local file systems (on NFS an open file
that is replaced becomes a ``.nfsXXXX`` file until it is closed), on Linux. At most
:data:`MAX_PENDING` descriptors wait; beyond that :func:`release` closes at once, so a loop
of saves never keeps more than a few old versions' space. A forked child closes the ones it
inherited; at exit the kernel closes the rest. A save into a file system with less free
space than four times what they will free waits for them first (:func:`make_room`), as does
the h5 backend's space check (:func:`drain`). Nothing here can fail a save: any error means the old
behaviour (the rename frees the blocks itself).
"""

from __future__ import annotations

import os
import queue
import stat
import sys
import threading
import time

from ._mounts import LOCAL_FILE_SYSTEMS, filesystem_of, free_bytes, read_mounts

__all__ = ["MAX_PENDING", "MIN_BYTES", "drain", "hold", "make_room", "pending", "release"]

#: smaller files are freed in a few microseconds: not worth a descriptor
MIN_BYTES = 8 << 20
#: descriptors waiting to be closed at most; :func:`release` closes at once beyond this
MAX_PENDING = 2

_lock = threading.Lock()
_local: dict[int, bool] = {}  # st_dev -> on a local file system
_queue: queue.SimpleQueue[int] = queue.SimpleQueue()
_sizes: dict[int, int] = {}  # descriptor from hold() -> bytes of its file
_queued: dict[int, int] = {}  # descriptors waiting in the queue -> bytes
_closing = 0  # taken from the queue, being closed
_closing_bytes = 0
_worker: threading.Thread | None = None


def _is_local(st_dev: int, path: str) -> bool:
    known = _local.get(st_dev)
    if known is None:
        known = _local[st_dev] = filesystem_of(path, read_mounts()) in LOCAL_FILE_SYSTEMS
    return known


def hold(path: str | os.PathLike[str], st: os.stat_result) -> int | None:
    """A read-only descriptor of ``path`` (whose ``os.stat`` is ``st``) if its blocks are worth
    freeing after the replacing rename, else ``None``.

    >>> import os, tempfile
    >>> small = tempfile.NamedTemporaryFile()
    >>> hold(small.name, os.stat(small.name)) is None  # smaller than MIN_BYTES
    True
    """
    if sys.platform != "linux" or not stat.S_ISREG(st.st_mode) or st.st_size < MIN_BYTES or st.st_nlink != 1:
        return None
    try:
        if not _is_local(st.st_dev, os.fspath(path)):
            return None
        # O_NONBLOCK: a FIFO swapped in since ``st`` must not block the open (the inode check drops it)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        same = os.fstat(fd).st_ino == st.st_ino
    except OSError:
        same = False
    if not same:  # replaced since ``st``: nothing of ours to keep
        os.close(fd)
        return None
    with _lock:
        _sizes[fd] = st.st_size
    return fd


def release(fd: int | None) -> None:
    """Close ``fd`` (from :func:`hold`) in the background thread, or now when too many wait."""
    global _worker
    if fd is None:
        return
    with _lock:
        size = _sizes.pop(fd, 0)
        later = len(_queued) + _closing < MAX_PENDING
        if later:
            if _worker is None or not _worker.is_alive():
                _worker = threading.Thread(target=_close_loop, name="storage_nodes-reclaim", daemon=True)
                _worker.start()
            _queued[fd] = size
            _queue.put(fd)
    if not later:
        _close(fd)


def pending() -> int:
    """How many descriptors wait to be closed or are being closed."""
    return len(_queued) + _closing


def make_room(directory: str) -> None:
    """Before a write into ``directory``: wait for the frees when its file system has less
    free space than four times what they will give back (a loop of big saves on a nearly
    full disk then finds the old versions' blocks free, as it did before they were deferred)."""
    if not pending():
        return
    free = free_bytes(directory)
    if free is not None and free < 4 * (sum(_queued.values()) + _closing_bytes):
        drain()


def drain() -> None:
    """Wait until every descriptor handed to :func:`release` is closed (before measuring free
    space: :func:`storage_nodes.atomic.ensure_space`)."""
    while pending() and _worker is not None and _worker.is_alive():
        time.sleep(0.001)


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _close_loop() -> None:
    global _closing, _closing_bytes
    while True:
        fd = _queue.get()
        with _lock:
            # no longer listed while it is closed: a fork in between leaves the child one open
            # descriptor of a deleted file until it exits, never one closed twice
            size = _queued.pop(fd, 0)
            _closing += 1
            _closing_bytes += size
        _close(fd)
        with _lock:
            _closing -= 1
            _closing_bytes -= size


def _after_fork() -> None:
    """The child inherited the queued descriptors but not the thread: close them here."""
    global _worker, _queue, _lock, _queued, _closing, _closing_bytes
    inherited, _queued, _closing, _closing_bytes = _queued, {}, 0, 0
    inherited.update(_sizes)  # held by a save of the parent's, which goes on there, not here
    _sizes.clear()
    _queue, _worker, _lock = queue.SimpleQueue(), None, threading.Lock()
    for fd in inherited:
        _close(fd)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
