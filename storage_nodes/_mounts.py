"""The mount table (``/proc/mounts``): which file system holds a path, and what kind it is.

Used where the answer changes what is safe: SQLite's WAL needs a local file system
(``catalog``: :data:`NETWORK_FILESYSTEMS`), and inotify sees only local edits
(``provenance._watch``: :data:`LOCAL_FILE_SYSTEMS`). The two lists of file-system types
live here, side by side.
"""

from __future__ import annotations

import os
import re

__all__ = [
    "LOCAL_FILE_SYSTEMS", "NETWORK_FILESYSTEMS", "filesystem_of", "filesystem_type", "free_bytes", "mount_of",
    "network_filesystem", "read_mounts",
]  # fmt: skip

#: the mount table of this process's namespace (Linux)
MOUNTS = "/proc/mounts"

#: file systems whose every change is seen by inotify on this host
LOCAL_FILE_SYSTEMS = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "f2fs", "zfs", "overlay", "jfs", "reiserfs", "bcachefs"}
)

#: file system types where several machines may open one file: SQLite's WAL needs shared
#: memory between all its users, which these cannot give
NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph", "cephfs",
     "glusterfs", "ocfs2", "gfs2", "afs", "openafs", "panfs", "wekafs", "9p", "davfs", "orangefs", "pvfs2",
     "fuse.sshfs", "fuse.glusterfs", "fuse.ceph", "fuse.cephfs", "fuse.beegfs", "fuse.davfs", "fuse.s3fs",
     "fuse.gcsfuse", "fuse.rclone", "fuse.juicefs"}
)  # fmt: skip


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


def filesystem_type(path: str | os.PathLike[str], mounts: str | os.PathLike[str] | None = None) -> str | None:
    """The type of the file system holding ``path`` (the longest mount point above it), or ``None``.

    ``mounts`` is a table in ``/proc/mounts`` form (``device mountpoint type options 0 0``;
    default :data:`MOUNTS`); ``None`` when it cannot be read (not Linux) or no mount point
    covers ``path``.

    >>> filesystem_type("/", mounts="/nonexistent")  is None
    True
    """
    return filesystem_of(path, read_mounts(mounts))


def network_filesystem(path: str | os.PathLike[str], mounts: str | os.PathLike[str] | None = None) -> str | None:
    """The file system type if ``path`` is on a network/cluster file system (NFS, SMB, Lustre, ...), else ``None``."""
    kind = filesystem_type(path, mounts)
    if kind is None:
        return None
    return kind if kind in NETWORK_FILESYSTEMS or kind.split(".", 1)[0] in NETWORK_FILESYSTEMS else None


def free_bytes(directory: str | os.PathLike[str]) -> int | None:
    """Bytes this process may still write on the file system holding ``directory`` (what
    ``root`` may: the blocks reserved for it included); ``None`` when it cannot be asked
    (no ``statvfs`` here, or the directory is gone)."""
    try:
        st = os.statvfs(directory)
    except (OSError, AttributeError, ValueError):
        return None
    return (st.f_bfree if os.geteuid() == 0 else st.f_bavail) * st.f_frsize
