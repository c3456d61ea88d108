"""In-place updates of an h5 archive that a crash (SIGKILL, power loss) cannot leave half done.

HDF5 modifies its metadata (superblock, object headers, B-trees, heaps) in place, so an
update is made safe here, below HDF5, at the byte level. h5py writes through a
:class:`JournaledFile` (its ``fileobj`` driver):

* bytes at or beyond ``base`` (the end of allocated space recorded in the superblock,
  which no committed object refers to) are written to the file at once: appends;
* bytes below ``base`` (the committed version) are kept in memory, and reads see them.

:meth:`JournaledFile.commit` then takes the archive's exclusive lock, writes an undo
journal (``.<name>.sn-journal``: the original bytes of every range about to be
overwritten) and a hard link ``.<name>.sn-journal-file`` to the archive, applies the
kept writes, and removes the journal: that removal is the commit. A journal left by a
killed writer is rolled back (:func:`recover`) by the next reader or writer. Readers
(:func:`reading`) hold a shared ``flock`` on the archive while they read it, so they never
see the few milliseconds in which old bytes are overwritten. The format and the
protocol are described in ``docs/format.md`` (section *In-place updates*).
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import time
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock, so no in-place updates (writers copy) and no reader lock
    fcntl = None  # type: ignore[assignment]

from ... import atomic
from ...atomic import ensure_space, fsync_dir
from ...errors import CorruptFileError, StorageError
from .lookup3 import lookup3

__all__ = ["Busy", "JournaledFile", "journal_path", "pin_path", "reading", "recover", "stored_eoa", "supported", "tidy"]

JOURNAL_SUFFIX = ".sn-journal"
PIN_SUFFIX = ".sn-journal-file"
MAGIC = b"SNJRNL\x00\x01"
HEADER = struct.Struct("<8sQQQ")  # magic, size to truncate to, st_dev, st_ino of the archive
RECORD = struct.Struct("<QII")  # offset, length, crc32 of the 16 header bytes' first 12 and the data
#: writes below ``base`` kept in memory at most; an update that needs more is done by copying
MAX_KEPT_BYTES = 64 << 20
#: how long a writer waits for readers (and other programs holding the file open through HDF5)
#: to let go before it updates by copying instead
LOCK_WAIT = 5.0
#: how long a reader waits for a lock held by another program (no journal beside the file)
#: before it opens the file without one, as it would without storage_nodes
FOREIGN_WAIT = 1.0
#: how long a rollback waits for other programs to close the file
RECOVER_WAIT = 30.0

#: called with a label before each step that changes the archive, the journal or its link
#: (tests set it to kill the process at every step)
step_hook: Callable[[str], None] | None = None


def _step(label: str) -> None:
    if step_hook is not None:
        step_hook(label)


def supported() -> bool:
    """Whether in-place updates are possible here (POSIX ``flock`` and hard links)."""
    return fcntl is not None


def journal_path(path: Path) -> Path:
    """The undo journal of an in-place update of ``path``: a hidden file beside it."""
    return path.with_name("." + path.name + JOURNAL_SUFFIX)


def pin_path(path: Path) -> Path:
    """The hard link to the archive kept while its journal exists (its inode cannot be reused)."""
    return path.with_name("." + path.name + PIN_SUFFIX)


class Busy(Exception):
    """The archive cannot be updated in place now (held open elsewhere, too big a change)."""


def stored_eoa(fd: int) -> int | None:
    """The end of allocated space recorded in the HDF5 superblock (version 2 or 3 at offset 0,
    8-byte addresses, checksum valid), or ``None`` for other layouts (older superblocks, a user
    block), which are updated by copying."""
    head = os.pread(fd, 48, 0)
    if len(head) < 48 or head[:8] != b"\x89HDF\r\n\x1a\n" or head[8] not in (2, 3) or head[9:11] != b"\x08\x08":
        return None
    base, _ext, eoa = struct.unpack_from("<QQQ", head, 12)
    if base != 0 or lookup3(head[:44]) != struct.unpack_from("<I", head, 44)[0]:
        return None
    return int(eoa)


def _write_all(fd: int, data: bytes | bytearray | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def _lock(fd: int, exclusive: bool, wait: float | None) -> bool:
    """``flock`` ``fd``; with ``wait`` give up (``False``) after that many seconds."""
    assert fcntl is not None
    op = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    if wait is None:
        fcntl.flock(fd, op)
        return True
    deadline = time.monotonic() + wait
    delay = 0.0005
    while True:
        try:
            fcntl.flock(fd, op | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


class JournaledFile:
    """A file object for h5py's ``fileobj`` driver that keeps writes below ``base`` in memory.

    ``path`` is opened read-write; :meth:`commit` makes the update permanent, :meth:`abandon`
    drops it (the file is then as it was, up to bytes beyond ``base`` that nothing refers to).
    """

    def __init__(self, path: Path, fd: int, base: int) -> None:
        self.path = path
        self.fd = fd
        self.base = base
        self.size0 = os.fstat(fd).st_size
        self._eof = self.size0
        self._pos = 0
        self._starts: list[int] = []  # kept writes: sorted, disjoint, not touching
        self._chunks: list[bytearray] = []
        self.kept = 0
        self.finished = False  # committed or abandoned: no more writes
        self.overflow = False  # more than MAX_KEPT_BYTES to keep: the update is done by copying
        self.error: OSError | None = None  # the last failed write or truncation (HDF5 reports its own)

    def __repr__(self) -> str:  # h5py names the open file (FileID.name) by it: errors and space checks use it
        return os.fspath(self.path)

    # -- the file-object protocol h5py's fileobj driver uses ---------------------------------
    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = offset if whence == 0 else (self._pos + offset if whence == 1 else self._eof + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buf: memoryview) -> int:
        view = memoryview(buf).cast("B")
        n = len(view)
        start = self._pos
        got = os.preadv(self.fd, [view], start) if n else 0
        if got < n:
            view[got:] = bytes(n - got)
        end = start + n
        if start < self.base and self._starts:
            i = max(bisect_right(self._starts, start) - 1, 0)
            while i < len(self._starts) and self._starts[i] < end:
                s, chunk = self._starts[i], self._chunks[i]
                lo, hi = max(s, start), min(s + len(chunk), end)
                if lo < hi:
                    view[lo - start : hi - start] = chunk[lo - s : hi - s]
                i += 1
        self._pos = end
        return n

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = max(self._eof - self._pos, 0)
        buf = bytearray(n)
        self.readinto(memoryview(buf))
        return bytes(buf)

    def write(self, data: memoryview | bytes) -> int:
        if self.finished:  # HDF5 flushing after the commit would bypass the journal
            raise OSError(errno.EBADF, f"the update of {self.path} is finished")
        view = memoryview(data).cast("B")
        n = len(view)
        start = self._pos
        cut = min(max(self.base - start, 0), n)  # the part below base is kept
        if cut:
            self._keep(start, view[:cut])
        if cut < n:
            _step("append")
            try:
                _write_all(self.fd, view[cut:], start + cut)
            except OSError as exc:
                self.error = exc
                raise
        self._pos = start + n
        self._eof = max(self._eof, self._pos)
        return n

    def truncate(self, size: int | None = None) -> int:
        if self.finished:
            raise OSError(errno.EBADF, f"the update of {self.path} is finished")
        size = self._pos if size is None else size
        self._eof = size
        # the committed version lies below base: the file is never cut shorter than that
        # (bytes between the new end and base are left as unused space)
        physical = max(size, self.base)
        if physical != os.fstat(self.fd).st_size:
            _step("truncate")
            try:
                os.ftruncate(self.fd, physical)
            except OSError as exc:
                self.error = exc
                raise
        return size

    def flush(self) -> None:
        """Nothing to do: appends are written at once, kept writes at :meth:`commit`."""

    # -- kept writes -------------------------------------------------------------------------
    def _keep(self, start: int, data: memoryview) -> None:
        end = start + len(data)
        lo = bisect_left(self._starts, start)
        if lo and self._starts[lo - 1] + len(self._chunks[lo - 1]) >= start:
            lo -= 1
        hi = bisect_right(self._starts, end)
        if lo == hi:  # touches nothing kept
            self._starts.insert(lo, start)
            self._chunks.insert(lo, bytearray(data))
            self.kept += len(data)
        else:
            first = min(self._starts[lo], start)
            last = max(max(s + len(c) for s, c in zip(self._starts[lo:hi], self._chunks[lo:hi])), end)
            merged = bytearray(last - first)
            for s, c in zip(self._starts[lo:hi], self._chunks[lo:hi]):
                merged[s - first : s - first + len(c)] = c
                self.kept -= len(c)
            merged[start - first : end - first] = data
            self._starts[lo:hi] = [first]
            self._chunks[lo:hi] = [merged]
            self.kept += len(merged)
        if self.kept > MAX_KEPT_BYTES:
            self.overflow = True
            raise OSError(errno.EFBIG, f"the update rewrites more than {MAX_KEPT_BYTES} bytes of {self.path}")

    # -- end of the update -------------------------------------------------------------------
    def abandon(self) -> None:
        """Drop the kept writes and the appended bytes: the file is as before."""
        self.finished = True
        self._starts, self._chunks, self.kept = [], [], 0
        with contextlib.suppress(OSError):
            if os.fstat(self.fd).st_size != self.size0:
                _step("abandon")
                os.ftruncate(self.fd, self.size0)

    def commit(self, *, durable: bool) -> None:
        """Journal the bytes about to be overwritten, write the kept writes, remove the journal.

        Holds the exclusive lock of the archive meanwhile (waiting at most :data:`LOCK_WAIT`
        for readers, else :class:`Busy`). On an error everything is undone before it is raised.
        """
        self.finished = True
        if not self._starts:
            if durable:
                os.fsync(self.fd)
            return
        if durable:
            atomic.fsync_path(self.path)  # the appended data is on disk before anything refers to it
        try:
            locked = _lock(self.fd, True, LOCK_WAIT)
        except OSError as exc:  # a file system without flock (readers could not be kept away)
            raise Busy(f"cannot lock {self.path}: {exc}") from None
        if not locked:
            raise Busy(f"{self.path} is held open by a reader or another program")
        try:
            self._commit_locked(durable)
        finally:
            assert fcntl is not None
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def _commit_locked(self, durable: bool) -> None:
        path = self.path
        journal, pin = journal_path(path), pin_path(path)
        originals = [os.pread(self.fd, len(c), s) for s, c in zip(self._starts, self._chunks)]
        st = os.fstat(self.fd)
        parts = [HEADER.pack(MAGIC, self.size0, st.st_dev, st.st_ino)]
        for s, old in zip(self._starts, originals):
            head = struct.pack("<QI", s, len(old))
            parts += [RECORD.pack(s, len(old), zlib.crc32(old, zlib.crc32(head)) & 0xFFFFFFFF), old]
        blob = b"".join(parts)
        ensure_space(path, len(blob))
        written = False
        try:
            _step("pin")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(pin)
            try:
                os.link(path, pin, follow_symlinks=False)
            except OSError as exc:  # a file system without hard links: update by copying
                raise Busy(f"cannot link {pin.name}: {exc}") from None
            if os.stat(pin, follow_symlinks=False).st_ino != st.st_ino:
                raise Busy(f"{path} was replaced during the update: update the new file, by copying")
            _step("journal")
            jfd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
            try:
                _write_all(jfd, blob, 0)
                if durable:
                    os.fsync(jfd)
            finally:
                os.close(jfd)
            if durable:
                fsync_dir(path.parent)
            written = True
            for s, c in zip(self._starts, self._chunks):
                _step("overwrite")
                _write_all(self.fd, c, s)
            if durable:
                atomic.fsync_path(self.path)  # (the file we hold: the link's inode was checked)
            _bump_mtime(self.fd)
            _step("commit")
            os.unlink(journal)  # the commit point
        except BaseException:
            if written:  # put the original bytes back before the error reaches the caller
                # (should that fail too, the journal stays and the next open rolls back)
                for s, old in zip(self._starts, originals):
                    _write_all(self.fd, old, s)
                os.ftruncate(self.fd, self.size0)
                os.fsync(self.fd)
            _remove(journal, pin)
            raise
        _step("unpin")
        with contextlib.suppress(OSError):  # a link left behind is removed by the next reader
            os.unlink(pin)
        if durable:
            fsync_dir(path.parent)


def _bump_mtime(fd: int) -> None:
    """Give the file a modification time later than before, to the nanosecond: listings cache
    parsed indexes by (inode, size, mtime), and an update in place keeps the inode and may keep
    the size within one tick of the coarse kernel clock."""
    with contextlib.suppress(OSError):
        st = os.fstat(fd)
        now = max(time.time_ns(), st.st_mtime_ns + 1)
        os.utime(fd, ns=(st.st_atime_ns, now))


def _remove(journal: Path, pin: Path) -> None:
    """Remove the journal (the commit point, or the end of a rollback), then the link."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(journal)
    _step("unpin")
    with contextlib.suppress(OSError):  # a link left behind is removed by the next reader
        os.unlink(pin)


def tidy(path: Path) -> None:
    """Roll back a journal, or drop a link left by a writer killed right after its commit
    (before an update, under the writer lock, or by a reader holding the shared lock)."""
    if os.path.lexists(journal_path(path)) or os.path.lexists(pin_path(path)):
        recover(path)


def _records(blob: bytes) -> tuple[tuple[int, int, int], list[tuple[int, bytes]]] | None:
    """(truncate-to size, st_dev, st_ino) and the valid records of a journal; ``None`` if its
    header is incomplete (it was never followed by an overwrite)."""
    if len(blob) < HEADER.size:
        return None
    magic, size, dev, ino = HEADER.unpack_from(blob, 0)
    if magic != MAGIC:
        return None
    out: list[tuple[int, bytes]] = []
    pos = HEADER.size
    while pos + RECORD.size <= len(blob):
        offset, length, crc = RECORD.unpack_from(blob, pos)
        data = blob[pos + RECORD.size : pos + RECORD.size + length]
        head = struct.pack("<QI", offset, length)
        if len(data) != length or zlib.crc32(data, zlib.crc32(head)) & 0xFFFFFFFF != crc:
            break  # torn: the overwrite it protects never started
        out.append((offset, data))
        pos += RECORD.size + length
    return (size, dev, ino), out


def recover(path: Path) -> bool:
    """Roll back an in-place update of ``path`` whose writer was killed (``True`` if one was).

    The original bytes are written back, the file is cut to its old size, then the journal and
    its link are removed; a journal for another file (the archive was replaced since) is removed.
    Safe to repeat after a crash during the rollback itself.
    """
    journal, pin = journal_path(path), pin_path(path)
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        fd = -1
    except PermissionError:
        if not os.path.lexists(journal):
            return False  # only the link is left: harmless, it stays
        raise CorruptFileError(
            f"{path} has an unfinished update (journal {journal.name}): open it once with write permission "
            "to roll it back (docs/format.md, section 'In-place updates')",
            path=path,
        ) from None
    try:
        if fd >= 0 and fcntl is not None and not _lock(fd, True, RECOVER_WAIT):
            raise CorruptFileError(
                f"{path} has an unfinished update (journal {journal.name}) and another program holds it open: "
                "close it there, then open it with storage_nodes to roll the update back",
                path=path,
            )
        try:
            blob = journal.read_bytes()
        except FileNotFoundError:  # rolled back meanwhile, or the writer was killed right after its commit
            with contextlib.suppress(OSError):
                os.unlink(pin)  # (under the exclusive lock: no writer is between linking and journaling)
            return False
        parsed = _records(blob)
        same = False
        if fd >= 0 and parsed is not None:
            st = os.fstat(fd)
            same = (st.st_dev, st.st_ino) == parsed[0][1:]
        if same and parsed is not None:
            (size, _, _), records = parsed
            for offset, data in records:
                _step("rollback")
                _write_all(fd, data, offset)
            _step("rollback-truncate")
            os.ftruncate(fd, size)
            os.fsync(fd)
            _bump_mtime(fd)
        _step("rollback-remove")
        _remove(journal, pin)
        fsync_dir(path.parent)
        return same
    finally:
        if fd >= 0:
            os.close(fd)


def _shared(fd: int, path: Path) -> bool:
    """Take a shared lock on ``fd``: ``True`` once held, ``False`` if another program (not an
    update of storage_nodes, which holds it only while its journal exists) keeps it locked."""
    assert fcntl is not None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        pass
    pin = pin_path(path)
    deadline = time.monotonic() + FOREIGN_WAIT
    delay = 0.0002
    while True:
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if os.path.lexists(pin):  # an update is being applied or rolled back: wait for it
                deadline = time.monotonic() + FOREIGN_WAIT
            elif time.monotonic() > deadline:
                return False


@contextlib.contextmanager
def reading(path: Path) -> Iterator[int | None]:
    """Hold a shared lock on ``path`` while reading it (an in-place update waits for it); a
    journal left by a killed writer is rolled back first. Yields the inode locked (``None``
    when nothing could be locked: no ``flock`` here, an unreadable file, or a file that
    another program keeps locked, whose HDF5 lock then decides as it always did)."""
    if fcntl is None:
        yield None
        return
    tidied = False
    for _ in range(100):
        try:
            # (non-blocking: a FIFO given as the path must not hang here; HDF5 then refuses it)
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            raise
        except OSError:  # not readable: opening it through HDF5 says so as it always did
            yield None
            return
        try:
            try:
                held = _shared(fd, path)
            except OSError:  # a file system without flock: no in-place update can happen there either
                held = False
            if not held:
                yield None
                return
            # the link lives a little longer than the journal; a lone link that cannot be
            # removed (a read-only directory) is harmless and read past
            if os.path.lexists(pin_path(path)) and (not tidied or os.path.lexists(journal_path(path))):
                os.close(fd)
                fd = -1
                tidy(path)
                tidied = True
                continue
            yield os.fstat(fd).st_ino
            return
        finally:
            if fd >= 0:
                os.close(fd)
    raise StorageError(f"cannot read {path}: its journal {journal_path(path).name} keeps coming back", path=path)
