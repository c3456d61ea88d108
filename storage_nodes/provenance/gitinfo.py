"""Git state of a source file, read from the repository files (no ``git`` executable needed).

:func:`git_state` answers, for one tracked file: which commit is checked out, and whether
the files of its package differ from that commit (an uncommitted edit, staged or not).
It reads ``.git/HEAD``, refs, the index (versions 2-4) and loose or packed objects
(including deltas) with the standard library only. Untracked files are ignored, like
``git status --untracked-files=no``. Content filters (``autocrlf``, ``.gitattributes``
filters) are not applied: a file differing from the index only by such a conversion
counts as dirty.

When the repository uses something this reader does not know (SHA-256 object format,
split or sparse index, objects in alternates) it falls back to ``git status`` when the
executable exists, else reports ``dirty: None`` with a ``note`` saying why.

>>> git_state("/path/to/repo/mypkg/core.py")  # doctest: +SKIP
{'commit': '3f2a9c...', 'dirty': False}
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import struct
import subprocess
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _watch

__all__ = ["GitFormatError", "git_state", "find_repository"]

_MAX_CHANGED = 10  # changed files listed in a record


class GitFormatError(Exception):
    """The repository uses a layout this reader does not understand."""


@dataclass(frozen=True)
class Repository:
    """Where a work tree keeps its files: ``git_dir`` (HEAD, index) and ``common_dir`` (objects, refs)."""

    work_tree: Path
    git_dir: Path
    common_dir: Path


@functools.lru_cache(maxsize=256)
def find_repository(directory: str) -> Repository | None:
    """The git repository whose work tree contains ``directory``, or None.

    >>> find_repository("/path/to/repo/mypkg")  # doctest: +SKIP
    Repository(work_tree=PosixPath('/path/to/repo'), ...)
    """
    start = Path(directory)
    for d in (start, *start.parents):
        candidate = d / ".git"
        try:
            if candidate.is_dir():
                git_dir = candidate
            elif candidate.is_file():  # worktrees and submodules: "gitdir: <path>"
                text = candidate.read_text().strip()
                if not text.startswith("gitdir:"):
                    return None
                git_dir = (d / text.split(":", 1)[1].strip()).resolve()
            else:
                continue
            common = git_dir
            if (git_dir / "commondir").is_file():
                common = (git_dir / (git_dir / "commondir").read_text().strip()).resolve()
        except OSError:
            return None
        return Repository(d, git_dir, common)
    return None


def _read_small(path: str) -> str | None:
    """The stripped text of a small file, or None when it does not exist (binary read: fast)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "surrogateescape").strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def read_head(repo: Repository) -> str | None:
    """The commit HEAD points to (None on an unborn branch)."""
    head = _read_small(os.path.join(repo.git_dir, "HEAD"))
    if head is None:
        raise FileNotFoundError(f"{repo.git_dir} has no HEAD")
    if not head.startswith("ref:"):
        return head or None
    ref = head.split(":", 1)[1].strip()
    for base in (repo.git_dir, repo.common_dir):
        found = _read_small(os.path.join(base, ref))
        if found is not None:
            return found or None
    packed = _read_small(os.path.join(repo.common_dir, "packed-refs"))
    for line in (packed or "").splitlines():
        if line.endswith(" " + ref) and not line.startswith(("#", "^")):
            return line.split(" ", 1)[0]
    return None


# ---------------------------------------------------------------- index


@dataclass(frozen=True)
class IndexEntry:
    mtime_ns: int
    size: int
    mode: int
    sha: bytes
    stage: int


@functools.lru_cache(maxsize=16)
def _read_index(index_path: str, _stat_key: tuple[int, int, int]) -> dict[str, IndexEntry]:
    data = Path(index_path).read_bytes()
    if data[:4] != b"DIRC":
        raise GitFormatError("the index has no DIRC signature")
    version, count = struct.unpack(">II", data[4:12])
    if version not in (2, 3, 4):
        raise GitFormatError(f"index version {version} is not supported")
    entries: dict[str, IndexEntry] = {}
    pos = 12
    previous = b""
    for _ in range(count):
        (_cs, _cn, ms, mn, _dev, _ino, mode, _uid, _gid, size) = struct.unpack(">10I", data[pos : pos + 40])
        sha = data[pos + 40 : pos + 60]
        (flags,) = struct.unpack(">H", data[pos + 60 : pos + 62])
        cursor = pos + 62
        if flags & 0x4000:  # extended flags (v3+)
            (xflags,) = struct.unpack(">H", data[cursor : cursor + 2])
            cursor += 2
            if xflags & 0x4000:
                raise GitFormatError("the index has skip-worktree entries (sparse checkout)")
        if version == 4:
            strip, n = _varint_v4(data, cursor)
            cursor += n
            end = data.index(b"\0", cursor)
            name = previous[: len(previous) - strip] + data[cursor:end]
            previous = name
            pos = end + 1
        else:
            end = data.index(b"\0", cursor)
            name = data[cursor:end]
            pos += ((end - pos) // 8 + 1) * 8  # entries are NUL-padded to a multiple of 8
        if mode & 0o170000 == 0o040000:
            raise GitFormatError("the index is sparse (directory entries)")
        entries[name.decode("utf-8", "surrogateescape")] = IndexEntry(
            ms * 1_000_000_000 + mn, size, mode, sha, (flags >> 12) & 3
        )
    if data[pos : pos + 4] == b"link":
        raise GitFormatError("the index is split (core.splitIndex)")
    return entries


def _varint_v4(data: bytes, pos: int) -> tuple[int, int]:
    """The offset varint of index v4 path compression: (value, bytes used)."""
    byte = data[pos]
    value = byte & 0x7F
    n = 1
    while byte & 0x80:
        byte = data[pos + n]
        value = ((value + 1) << 7) | (byte & 0x7F)
        n += 1
    return value, n


# ---------------------------------------------------------------- objects


class _Objects:
    """Read-only access to loose and packed objects of one repository."""

    def __init__(self, objects_dir: Path) -> None:
        self.dir = objects_dir
        self._packs: list[tuple[Path, bytes]] | None = None

    def _pack_indexes(self) -> list[tuple[Path, bytes]]:
        if self._packs is None:
            packs = []
            pack_dir = self.dir / "pack"
            if pack_dir.is_dir():
                for idx in sorted(pack_dir.glob("*.idx")):
                    data = idx.read_bytes()
                    if data[:8] != b"\377tOc\0\0\0\2":
                        raise GitFormatError(f"pack index {idx.name} is not version 2")
                    packs.append((idx.with_suffix(".pack"), data))
            self._packs = packs
        return self._packs

    def read(self, sha: bytes) -> tuple[str, bytes]:
        hexsha = sha.hex()
        loose = self.dir / hexsha[:2] / hexsha[2:]
        if loose.is_file():
            raw = zlib.decompress(loose.read_bytes())
            header, _, body = raw.partition(b"\0")
            return header.split(b" ", 1)[0].decode(), body
        for pack, idx in self._pack_indexes():
            offset = _idx_lookup(idx, sha)
            if offset is not None:
                with open(pack, "rb") as f:
                    return self._read_packed(f, offset)
        raise GitFormatError(f"object {hexsha} not found (alternates are not supported)")

    def _read_packed(self, f: Any, offset: int) -> tuple[str, bytes]:
        f.seek(offset)
        head = f.read(32)
        byte = head[0]
        kind = (byte >> 4) & 7
        size = byte & 15
        shift, i = 4, 1
        while byte & 0x80:
            byte = head[i]
            size |= (byte & 0x7F) << shift
            shift += 7
            i += 1
        pos = offset + i
        if kind == 6:  # OFS_DELTA: base at a negative offset
            byte = head[i]
            rel = byte & 0x7F
            i += 1
            while byte & 0x80:
                byte = head[i]
                rel = ((rel + 1) << 7) | (byte & 0x7F)
                i += 1
            base_kind, base = self._read_packed(f, offset - rel)
            return base_kind, _apply_delta(base, _inflate(f, offset + i))
        if kind == 7:  # REF_DELTA: base named by sha
            base_sha = head[i : i + 20]
            base_kind, base = self.read(base_sha)
            return base_kind, _apply_delta(base, _inflate(f, offset + i + 20))
        names = {1: "commit", 2: "tree", 3: "blob", 4: "tag"}
        if kind not in names:
            raise GitFormatError(f"unknown pack object type {kind}")
        return names[kind], _inflate(f, pos)


def _inflate(f: Any, pos: int) -> bytes:
    f.seek(pos)
    d = zlib.decompressobj()
    out = []
    while not d.eof:
        chunk = f.read(65536)
        if not chunk:
            raise GitFormatError("truncated pack")
        out.append(d.decompress(chunk))
    return b"".join(out)


def _idx_lookup(idx: bytes, sha: bytes) -> int | None:
    fanout = 8
    first = sha[0]
    lo = struct.unpack_from(">I", idx, fanout + 4 * (first - 1))[0] if first else 0
    hi = struct.unpack_from(">I", idx, fanout + 4 * first)[0]
    total = struct.unpack_from(">I", idx, fanout + 4 * 255)[0]
    names = fanout + 1024
    while lo < hi:
        mid = (lo + hi) // 2
        candidate = idx[names + 20 * mid : names + 20 * mid + 20]
        if candidate < sha:
            lo = mid + 1
        elif candidate > sha:
            hi = mid
        else:
            offsets = names + 24 * total  # after names and CRCs
            off = struct.unpack_from(">I", idx, offsets + 4 * mid)[0]
            if off & 0x80000000:
                large = offsets + 4 * total
                off = struct.unpack_from(">Q", idx, large + 8 * (off & 0x7FFFFFFF))[0]
            return int(off)
    return None


def _delta_size(delta: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = delta[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _apply_delta(base: bytes, delta: bytes) -> bytes:
    _, pos = _delta_size(delta, 0)
    target_size, pos = _delta_size(delta, pos)
    out = bytearray()
    while pos < len(delta):
        op = delta[pos]
        pos += 1
        if op & 0x80:  # copy from base
            offset = size = 0
            for bit in range(4):
                if op & (1 << bit):
                    offset |= delta[pos] << (8 * bit)
                    pos += 1
            for bit in range(3):
                if op & (1 << (4 + bit)):
                    size |= delta[pos] << (8 * bit)
                    pos += 1
            out += base[offset : offset + (size or 0x10000)]
        elif op:  # insert literal bytes
            out += delta[pos : pos + op]
            pos += op
        else:
            raise GitFormatError("invalid delta opcode 0")
    if len(out) != target_size:
        raise GitFormatError("delta produced the wrong size")
    return bytes(out)


def _tree_entries(body: bytes) -> Iterator[tuple[int, str, bytes]]:
    pos = 0
    while pos < len(body):
        space = body.index(b" ", pos)
        nul = body.index(b"\0", space)
        yield (
            int(body[pos:space], 8),
            body[space + 1 : nul].decode("utf-8", "surrogateescape"),
            body[nul + 1 : nul + 21],
        )
        pos = nul + 21


@functools.lru_cache(maxsize=64)
def _head_blobs(objects_dir: str, commit: str, prefix: str) -> dict[str, bytes]:
    """``{path: blob sha}`` of the committed files under ``prefix`` (a file or directory)."""
    objects = _Objects(Path(objects_dir))
    kind, body = objects.read(bytes.fromhex(commit))
    if kind != "commit" or not body.startswith(b"tree "):
        raise GitFormatError(f"HEAD {commit} is not a commit")
    tree = bytes.fromhex(body[5:45].decode())
    parts = [p for p in prefix.split("/") if p]
    base = ""
    for i, part in enumerate(parts):
        kind, body = objects.read(tree)
        found = next(((m, s) for m, n, s in _tree_entries(body) if n == part), None)
        if found is None:
            return {}
        mode, sha = found
        base = "/".join(parts[: i + 1])
        if mode & 0o170000 != 0o040000:
            return {base: sha} if i == len(parts) - 1 else {}
        tree = sha
    result: dict[str, bytes] = {}
    stack = [(tree, base)]
    while stack:
        sha, where = stack.pop()
        _, body = objects.read(sha)
        for mode, name, child in _tree_entries(body):
            path = f"{where}/{name}" if where else name
            if mode & 0o170000 == 0o040000:
                stack.append((child, path))
            else:
                result[path] = child
    return result


# ---------------------------------------------------------------- work tree


@functools.lru_cache(maxsize=4096)
def _blob_sha(path: str, _stat_key: tuple[int, int]) -> bytes:
    p = Path(path)
    data = os.readlink(p).encode() if p.is_symlink() else p.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).digest()


def _index_key(repo: Repository) -> tuple[str, tuple[int, int, int]]:
    """The index file and its stat key (the parsed index is cached while the key holds)."""
    path = os.path.join(repo.git_dir, "index")
    st = os.stat(path)
    return path, (st.st_mtime_ns, st.st_size, st.st_ino)


@functools.lru_cache(maxsize=64)
def _plan(
    repo: Repository, index_path: str, key: tuple[int, int, int], commit: str | None, prefix: str
) -> tuple[tuple[str, ...], tuple[tuple[str, str, IndexEntry], ...]]:
    """(paths differing between index and ``commit``, (path, full path, entry) to stat) under ``prefix``."""
    index = _read_index(index_path, key)
    under = prefix + "/"
    mine = {p: e for p, e in index.items() if not prefix or p == prefix or p.startswith(under)}
    committed = _head_blobs(str(repo.common_dir / "objects"), commit, prefix) if commit else {}
    staged = {p for p, e in mine.items() if e.stage or committed.get(p) != e.sha}  # change, conflict, new
    staged.update(p for p in committed if p not in mine)  # staged deletion
    root = str(repo.work_tree)
    to_stat = tuple(
        (p, os.path.join(root, p), e)
        for p, e in mine.items()
        if p not in staged and e.mode & 0o170000 != 0o160000  # gitlinks (submodules) are not files
    )
    return tuple(sorted(staged)), to_stat


def _changed_files(repo: Repository, commit: str | None, prefix: str) -> list[str]:
    """Tracked files under ``prefix`` that differ from ``commit`` (in the index or the work tree)."""
    index_path, key = _index_key(repo)
    staged, to_stat = _plan(repo, index_path, key, commit, prefix)
    changed = list(staged)
    index_mtime = key[0]
    for path, full, entry in to_stat:
        try:
            fst = os.lstat(full)
        except OSError:
            changed.append(path)  # deleted in the work tree
            continue
        # hash only when the stat data says edited, or is too recent to be trusted ("racy git")
        suspect = fst.st_mtime_ns != entry.mtime_ns or fst.st_mtime_ns >= index_mtime
        if fst.st_size != entry.size or (suspect and _blob_sha(full, (fst.st_mtime_ns, fst.st_size)) != entry.sha):
            changed.append(path)
    return sorted(changed)


def _git_status(repo: Repository, prefix: str) -> list[str] | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        out = subprocess.run(
            [git, "-C", str(repo.work_tree), "status", "--porcelain", "--untracked-files=no", "--", prefix or "."],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sorted(line[3:] for line in out.splitlines() if line.strip())


@functools.lru_cache(maxsize=1024)
def _locate(file: str, scope: str | None) -> tuple[Repository, str, str] | None:
    """(repository, file and scope relative to its work tree) — paths do not move within a process."""
    path = Path(file).resolve()
    repo = find_repository(str(path.parent))
    if repo is None:
        return None
    work_tree = repo.work_tree.resolve()
    try:
        relative = path.relative_to(work_tree).as_posix()
        prefix = Path(scope or path).resolve().relative_to(work_tree).as_posix()
    except ValueError:
        return None
    return repo, relative, "" if prefix == "." else prefix


@functools.lru_cache(maxsize=64)
def _unsupported_format(common_dir: Path) -> str | None:
    try:
        config = (common_dir / "config").read_text(errors="replace").lower()
    except OSError:
        return None
    return "the repository uses a non-SHA-1 object format" if "objectformat" in config else None


def git_state(file: str | os.PathLike[str], scope: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """Commit and dirty state for the tracked ``file``, or None when it is not tracked by git.

    ``scope`` (a file or directory, default ``file``) is what "dirty" covers: typically
    the top-level package directory, so an edit in a sibling module counts too.
    The result is plain data: ``{"commit": str | None, "dirty": bool | None}``, plus
    ``"changed"`` (up to 10 changed paths relative to the work tree) when dirty, and
    ``"note"`` when the dirty state could not be determined.

    On Linux, with the repository and the scope on a local file system, the answer is kept
    while inotify reports no change in the git directory, the directory of HEAD's branch
    or any directory of the scope's tracked files; anything else (another platform, a
    network file system, a state that needed ``git status``) is determined afresh on every
    call, by stat'ing each tracked file of the scope.

    >>> git_state("src/mypkg/core.py", scope="src/mypkg")  # doctest: +SKIP
    {'commit': '3f2a9c...', 'dirty': True, 'changed': ['src/mypkg/util.py']}
    """
    global _generation
    key = (os.fspath(file), None if scope is None else os.fspath(scope))
    w = _watch.watcher()
    if w is not None:
        with _states_lock:
            if _owner[0] is not w:  # a new instance (e.g. after fork) saw none of the past changes
                _owner[0] = w
                _seen[0] = w.generation()
                _states.clear()
                _generation += 1
            elif _events(w):
                _states.clear()
                _generation += 1
            elif key in _states:
                return copy_state(_states[key])
            generation = _generation
    located = _locate(*key)
    if located is None:
        return None
    watched = w is not None and _watch_repository(w, *located)
    state, trusted = _determine(*located)
    if watched and trusted and w is not None:
        with _states_lock:
            if _events(w):  # something changed while we looked: the next call looks again
                _states.clear()
                _generation += 1
            elif generation == _generation:
                if len(_states) >= 4096:
                    _states.clear()
                _states[key] = copy_state(state)
    return state


_states: dict[tuple[str, str | None], dict[str, Any] | None] = {}
_states_lock = threading.Lock()
_generation = 0
_owner: list[_watch.Watcher | None] = [None]  # the watcher whose silence the kept states rely on
_seen = [0]  # the owner's generation the kept states were checked at


def _events(w: _watch.Watcher) -> bool:
    """Whether events arrived since the last look (under ``_states_lock``)."""
    generation = w.generation()
    if generation == _seen[0]:
        return False
    _seen[0] = generation
    return True


def copy_state(state: dict[str, Any] | None) -> dict[str, Any] | None:
    """A copy of a git state that shares nothing mutable with ``state``."""
    if state is None:
        return None
    out = dict(state)
    if "changed" in out:
        out["changed"] = list(out["changed"])
    return out


def kept(file: str | os.PathLike[str], scope: str | os.PathLike[str] | None = None) -> bool:
    """Whether :func:`git_state` of ``file`` answers from a kept state while inotify reports no
    change (or from nothing at all: ``file`` lies in no repository)."""
    key = (os.fspath(file), None if scope is None else os.fspath(scope))
    with _states_lock:
        if key in _states:
            return True
    return _locate(*key) is None


def forget() -> None:
    """Drop the kept git states (the next :func:`git_state` of each file looks again)."""
    global _generation
    with _states_lock:
        _states.clear()
        _generation += 1


def _nearest_directory(path: str) -> str:
    while not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


@functools.lru_cache(maxsize=64)
def _scope_directories(work_tree: str, index_path: str, key: tuple[int, int, int], prefix: str) -> tuple[str, ...]:
    """Every directory holding a tracked file under ``prefix``, and those between them and it."""
    index = _read_index(index_path, key)
    under = prefix + "/"
    top = prefix if prefix and any(p.startswith(under) for p in index) else os.path.dirname(prefix)
    found: set[str] = {top}
    for p in index:
        if prefix and p != prefix and not p.startswith(under):
            continue
        d = os.path.dirname(p)
        while d not in found and len(d) > len(top):
            found.add(d)
            d = os.path.dirname(d)
    return tuple(sorted(os.path.join(work_tree, d) if d else work_tree for d in found))


def _watch_repository(w: _watch.Watcher, repo: Repository, relative: str, prefix: str) -> bool:
    """Watch what :func:`_determine` reads (before it reads it); False if that is not possible."""
    del relative
    git_dirs = [str(repo.git_dir), str(repo.common_dir)]
    if not w.watch(git_dirs):  # HEAD, index, packed-refs, config
        return False
    head = _read_small(os.path.join(repo.git_dir, "HEAD")) or ""
    if head.startswith("ref:"):
        ref = head.split(":", 1)[1].strip()
        refs = {_nearest_directory(os.path.dirname(os.path.join(base, ref))) for base in git_dirs}
        if not w.watch(sorted(refs)):
            return False
    try:
        directories = _scope_directories(str(repo.work_tree), *_index_key(repo), prefix)
    except (OSError, GitFormatError, ValueError, struct.error, IndexError):
        return False
    return w.watch(directories)


def _determine(repo: Repository, relative: str, prefix: str) -> tuple[dict[str, Any] | None, bool]:
    """(the git state, whether it was read from the repository files rather than ``git status``)."""
    problem = _unsupported_format(repo.common_dir)
    if not problem:
        # untracked files first (e.g. a site-packages inside a repository's ignored .venv):
        # one stat of the index, no reading of HEAD and refs for them
        with contextlib.suppress(OSError, GitFormatError, ValueError, struct.error, IndexError):
            if relative not in _read_index(*_index_key(repo)):
                return None, True
    try:
        commit = read_head(repo)
    except OSError:
        return None, False
    state: dict[str, Any] = {"commit": commit}
    try:
        if problem:
            raise GitFormatError(problem)
        if relative not in _read_index(*_index_key(repo)):
            return None, True
        changed: list[str] | None = _changed_files(repo, commit, prefix)
    except (OSError, GitFormatError, ValueError, zlib.error, struct.error, IndexError) as exc:
        # the index or objects cannot be read here: the file lies in the work tree, so
        # report the commit and ask git (when installed) for the dirty state
        changed = _git_status(repo, prefix)
        if changed is None:
            state["dirty"] = None
            state["note"] = f"dirty state unknown: {exc} and the git executable was not found"
        else:
            state["dirty"] = bool(changed)
            if changed:
                state["changed"] = changed[:_MAX_CHANGED]
        return state, False
    state["dirty"] = bool(changed)
    if changed:
        state["changed"] = changed[:_MAX_CHANGED]
    return state, True
