"""Git state of a source file: the checked-out commit and whether the files of its package
differ from it.

:func:`git_state` answers, for one tracked file: which commit is checked out, and whether
the files of its package differ from that commit (an uncommitted edit, staged or not).
Untracked files are ignored, like ``git status --untracked-files=no``. Content filters and
end-of-line conversion are not applied here: where they may apply
(:func:`._gitfiles.conversions`), a package whose files' bytes differ from the index is
checked with ``git status`` (:class:`MayConvert`).

Where it comes from (:mod:`._gitfiles`): HEAD and refs are read by hand on every look (a
few small files); the index and the committed tree are read with dulwich, imported only
when the index or HEAD changed. A repository whose format this does not fully understand
(reftable refs, an unknown ``extensions.*`` or format version: :func:`._gitfiles.read_layout`)
is asked of the ``git`` program as a whole; an index or objects it cannot read (split or
sparse index, a missing object) or a submodule in the scope only for the dirty state.
Where git is missing or fails too, the record says so: ``dirty: None`` (and ``commit:
None`` when HEAD could not be read) with a ``note`` saying why. Never a guess.

>>> git_state("/path/to/repo/mypkg/core.py")  # doctest: +SKIP
{'commit': '3f2a9c...', 'dirty': False}
"""

from __future__ import annotations

import functools
import os
import struct
import threading
from pathlib import Path
from typing import Any

from . import _gitcli, _watch
from ._gitcli import MAX_CHANGED
from ._gitfiles import (
    GitFormatError,
    IndexEntry,
    Layout,
    Repository,
    blob_id,
    committed_blobs,
    conversions,
    find_repository,
    index_key,
    read_head,
    read_index,
    read_layout,
    read_small,
)

__all__ = ["GitFormatError", "git_state", "find_repository"]

#: what a failed read of the repository files raises (dulwich's own errors become GitFormatError)
_READ_ERRORS = (OSError, GitFormatError, ValueError, struct.error, IndexError)


@functools.lru_cache(maxsize=64)
def _plan(
    repo: Repository, layout: Layout, index_path: str, key: tuple[int, int, int], commit: str | None, prefix: str
) -> tuple[tuple[str, ...], tuple[tuple[str, str, IndexEntry, int], ...]]:
    """(paths differing between index and ``commit``, (path, full path, entry, its :func:`_kind`)
    to stat) under ``prefix``."""
    index = read_index(index_path, key, layout.object_format)
    under = prefix + "/"
    mine = {p: e for p, e in index.items() if not prefix or p == prefix or p.startswith(under)}
    if any(e.mode & 0o170000 == 0o160000 for e in mine.values()):
        # git status counts new commits and edits inside a submodule: that is git's to tell
        raise GitFormatError("a submodule lies in the scope")
    committed = committed_blobs(repo.common_dir, layout.object_format, commit, prefix) if commit else {}
    staged = {p for p, e in mine.items() if e.stage or committed.get(p) != e.sha}  # change, conflict, new
    staged.update(p for p in committed if p not in mine)  # staged deletion
    root = str(repo.work_tree)
    to_stat = tuple(
        (p, os.path.join(root, p), e, _kind(e.mode, layout.file_mode)) for p, e in mine.items() if p not in staged
    )
    return tuple(sorted(staged)), to_stat


def _changed_files(
    repo: Repository, layout: Layout, commit: str | None, prefix: str, index_path: str, key: tuple[int, int, int]
) -> list[str]:
    """Tracked files under ``prefix`` that differ from ``commit`` (in the index, whose stat
    ``key`` the caller took, or in the work tree)."""
    staged, to_stat = _plan(repo, layout, index_path, key, commit, prefix)
    changed = list(staged)
    by_content = False
    index_mtime = key[0]
    file_mode = layout.file_mode
    for path, full, entry, kind in to_stat:
        try:
            fst = os.lstat(full)
        except OSError:
            changed.append(path)  # deleted in the work tree
            continue
        mode = fst.st_mode  # _kind inline: this loop runs for every tracked file at every save
        if (mode & 0o170100 if file_mode and mode & 0o170000 == 0o100000 else mode & 0o170000) != kind:
            changed.append(path)  # a file made executable or not, or turned into a symlink
            continue
        # hash only when the stat data says edited, or is too recent to be trusted ("racy git")
        suspect = fst.st_mtime_ns != entry.mtime_ns or fst.st_mtime_ns >= index_mtime
        if fst.st_size != entry.size or (
            suspect and blob_id(full, (fst.st_mtime_ns, fst.st_size), layout.object_format) != entry.sha
        ):
            changed.append(path)
            by_content = True
    if by_content:
        reason = conversions(repo, layout, index_path, key)
        if reason:  # git may hash other bytes than the file's (end of lines, filters)
            raise MayConvert(f"{reason}: a file whose bytes changed may be unchanged for git")
    return sorted(changed)


class MayConvert(GitFormatError):
    """Bytes differ from the index where git may convert them: git status tells (and its
    answer is kept like one read from the files: the same directories are watched)."""


def _kind(mode: int, file_mode: bool) -> int:
    """What git compares of a mode: the file type, and the owner's executable bit where
    ``core.fileMode`` (index modes are 0o100644, 0o100755, 0o120000 or 0o160000)."""
    if file_mode and mode & 0o170000 == 0o100000:
        return mode & 0o170100
    return mode & 0o170000


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


def git_state(file: str | os.PathLike[str], scope: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """Commit and dirty state for the tracked ``file``, or None when it is not tracked by git.

    ``scope`` (a file or directory, default ``file``) is what "dirty" covers: typically
    the top-level package directory, so an edit in a sibling module counts too.
    The result is plain data: ``{"commit": str | None, "dirty": bool | None}``, plus
    ``"changed"`` (up to 10 changed paths relative to the work tree) when dirty, and
    ``"note"`` when the dirty state (or also the commit: then ``commit`` is None) could not
    be determined.

    On Linux, with the repository and the scope on a local file system, the answer is kept
    while inotify reports no change in the git directory, the directory of HEAD's branch
    or any directory of the scope's tracked files; anything else (another platform, a
    network file system) is determined afresh on every call, by stat'ing each tracked file
    of the scope, and a state that came from the ``git`` program is asked of it again.

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
def _scope_directories(
    work_tree: str, index_path: str, key: tuple[int, int, int], object_format: str, prefix: str
) -> tuple[str, ...]:
    """Every directory holding a tracked file under ``prefix``, and those between them and it."""
    index = read_index(index_path, key, object_format)
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
    layout = read_layout(repo.common_dir)
    if layout.problem:  # asked of git: never kept
        return False
    head = read_small(os.path.join(repo.git_dir, "HEAD")) or ""
    if head.startswith("ref:"):
        ref = head.split(":", 1)[1].strip()
        refs = {_nearest_directory(os.path.dirname(os.path.join(base, ref))) for base in git_dirs}
        if not w.watch(sorted(refs)):
            return False
    try:
        directories = _scope_directories(str(repo.work_tree), *index_key(repo), layout.object_format, prefix)
    except _READ_ERRORS:
        return False
    return w.watch(directories)


def _watch_attributes(repo: Repository, prefix: str) -> bool:
    """Watch where else attributes may be (the directories above the scope, ``info/``), so
    that git's answer for :class:`MayConvert` can be kept; False if that is not possible."""
    w = _watch.watcher()
    if w is None:
        return False
    above = [str(repo.work_tree)]
    for part in prefix.split("/")[:-1]:
        above.append(os.path.join(above[-1], part))
    info = os.path.join(repo.common_dir, "info")
    return w.watch([*above, *([info] if os.path.isdir(info) else [])])


def _determine(repo: Repository, relative: str, prefix: str) -> tuple[dict[str, Any] | None, bool]:
    """(the git state, whether it may be kept while the watches report no change: read from
    the repository files, or told by git for :class:`MayConvert` with the attributes watched)."""
    try:
        layout = read_layout(repo.common_dir)
    except OSError as exc:
        layout = Layout("sha1", f"its config could not be read ({exc})")
    if layout.problem:  # a format these readers do not understand: git answers, or nobody
        return _gitcli.state(repo, relative, prefix, layout.problem), False
    # untracked files first (e.g. a site-packages inside a repository's ignored .venv):
    # one stat of the index, no reading of HEAD and refs for them
    unreadable: Exception | None = None
    try:
        index_path, key = index_key(repo)
        if relative not in read_index(index_path, key, layout.object_format):
            return None, True
    except _READ_ERRORS as exc:
        unreadable = exc
    try:
        commit = read_head(repo, layout)
    except GitFormatError as exc:  # HEAD is not what a files ref store holds
        return _gitcli.state(repo, relative, prefix, str(exc)), False
    except OSError:
        return None, False
    state: dict[str, Any] = {"commit": commit}
    try:
        if unreadable is not None:
            raise unreadable
        changed = _changed_files(repo, layout, commit, prefix, index_path, key)
    except _READ_ERRORS as exc:
        # the index or objects cannot be read here: the file lies in the work tree, so
        # report the commit and ask git (when installed) for the dirty state
        keep = isinstance(exc, MayConvert) and _watch_attributes(repo, prefix)
        try:
            _, changed = _gitcli.status(repo, prefix)
        except _gitcli.GitFailed as failed:
            state["dirty"] = None
            state["note"] = f"dirty state unknown: {exc} and {failed}"
            return state, False
        _fill(state, changed)
        return state, keep
    _fill(state, changed)
    return state, True


def _fill(state: dict[str, Any], changed: list[str]) -> None:
    state["dirty"] = bool(changed)
    if changed:
        state["changed"] = changed[:MAX_CHANGED]
