"""The mount table (``/proc/mounts``): which file system holds a path.

Used where the answer changes what is safe: SQLite's WAL needs a local file system
(``catalog``), and inotify sees only local edits (``provenance._watch``).
"""

from __future__ import annotations

import os
import re

__all__ = ["filesystem_of", "mount_of", "read_mounts"]

#: the mount table of this process's namespace (Linux)
MOUNTS = "/proc/mounts"


def _unescape(text: str) -> str:
    """``/proc/mounts`` writes space, tab, newline and backslash in paths as octal escapes (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def read_mounts(table: str | os.PathLike[str] | None = None) -> list[tuple[str, str]]:
    """(mount point, file system type) of each line of ``table`` (``/proc/mounts`` form:
    ``device mountpoint type options 0 0``), in its order; ``[]`` when it cannot be read.

    >>> read_mounts("/nonexistent")
    []
    """
    try:
        with open(MOUNTS if table is None else table, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    return [(_unescape(parts[1]), parts[2]) for parts in map(str.split, lines) if len(parts) >= 3]


def filesystem_of(path: str | os.PathLike[str], mounts: list[tuple[str, str]]) -> str | None:
    """The type of the file system holding ``path``: that of the longest mount point above
    its real path (of two on the same point, the later: it hides the earlier); ``None`` if
    no mount point covers it."""
    return mount_of(path, mounts)[1]


def mount_of(path: str | os.PathLike[str], mounts: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    """(mount point, file system type) holding ``path``, as :func:`filesystem_of` finds it;
    ``(None, None)`` if no mount point covers it.

    >>> mount_of("/data/run/r.h5", [("/", "ext4"), ("/data", "lustre")])
    ('/data', 'lustre')
    """
    target = os.path.realpath(os.fspath(path))
    best: int = -1
    found: tuple[str | None, str | None] = (None, None)
    for point, kind in mounts:
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best:
            best, found = len(point), (point, kind)
    return found
