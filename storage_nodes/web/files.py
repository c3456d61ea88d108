"""Which recorded file the web page may read: only the one a catalog record names, unchanged, under the roots.

A URL names a record (its id), never a path: the path comes from the catalog. It is still
checked, since a catalog is shared and files move: the recorded path must be absolute
with no ``..``, resolve (following every symlink) to itself, lie under one of the
``--root`` directories when any are given, be a regular file, and still have the
identity it was recorded with (a rewritten or replaced file is stale). The file is
opened without following a final symlink and its descriptor is checked to be the file
that was checked, so a swap between the check and the read is refused as well.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..catalog import Hit

__all__ = ["NotServed", "allowed_path", "open_recorded", "read_chunks"]

_CHUNK = 1 << 20


class NotServed(Exception):
    """A recorded file the page refuses to read; the message says why (shown as a 404)."""


def allowed_path(path: Path, roots: Sequence[Path]) -> Path:
    """``path`` if the page may read it (absolute, no ``..``, no symlink on the way, under ``roots``), else raise."""
    text = str(path)
    if not path.is_absolute() or ".." in path.parts or "\x00" in text:
        raise NotServed("the recorded path is not an absolute, plain path")
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise NotServed("the recorded file is gone") from None
    if real != path:
        raise NotServed("the recorded path leads elsewhere through a symlink")
    if roots and not any(real.is_relative_to(r) for r in roots):
        raise NotServed("the recorded file is outside the directories this page serves (--root)")
    return real


def open_recorded(hit: Hit, roots: Sequence[Path]) -> tuple[int, int]:
    """Open the file of ``hit`` for reading if it may be served; return ``(descriptor, size)``.

    Raises :class:`NotServed` for a path refused by :func:`allowed_path`, a file that is
    not regular, or one that changed since it was recorded.
    """
    real = allowed_path(hit.path, roots)
    if hit.is_stale():
        raise NotServed("the file was moved, deleted or rewritten since it was recorded")
    try:
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        raise NotServed("the recorded file cannot be opened") from None
    try:
        st = os.fstat(fd)
        now = os.stat(real, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (now.st_dev, now.st_ino):
            raise NotServed("the recorded path is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd, st.st_size


def read_chunks(fd: int) -> Iterator[bytes]:
    """The bytes of an open descriptor in chunks; closes it at the end (or when the reader stops)."""
    try:
        while chunk := os.read(fd, _CHUNK):
            yield chunk
    finally:
        os.close(fd)
