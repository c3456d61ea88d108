"""Reading a git repository's own files: where they are, which format they are in, HEAD,
the index and the committed tree.

HEAD and loose or packed refs are read here by hand (a few small text files, read on every
save that is not answered from a kept state). The index and the objects (loose, packed,
deltas, alternates) are read with dulwich, imported only when the index or HEAD changed
(:func:`read_index` and :func:`committed_blobs` are cached by the index's stat data and the
commit). :func:`read_layout` tells which repositories these readers understand: anything
else (reftable refs, an extension or format version not listed in :data:`KNOWN_EXTENSIONS`)
is left to the ``git`` program (:mod:`._gitcli`), never guessed.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "GitFormatError",
    "IndexEntry",
    "KNOWN_EXTENSIONS",
    "Layout",
    "Repository",
    "blob_id",
    "committed_blobs",
    "conversions",
    "find_repository",
    "index_key",
    "read_head",
    "read_index",
    "read_layout",
    "read_small",
]

#: ``extensions.*`` whose meaning the readers here honour: the object format (SHA-1 or
#: SHA-256, both read by dulwich), per-worktree config and relative worktree paths (only
#: where config and worktree links live: :func:`find_repository` resolves relative paths),
#: precious objects (only forbids pruning). Any other one, notably ``refstorage`` (reftable),
#: makes :func:`read_layout` name it as a problem.
KNOWN_EXTENSIONS = frozenset({"objectformat", "worktreeconfig", "relativeworktrees", "preciousobjects"})

#: those of :data:`KNOWN_EXTENSIONS` that git also reads in a repository of format version 0
#: (``git sparse-checkout`` sets ``worktreeConfig`` there)
_KNOWN_IN_VERSION_0 = frozenset({"worktreeconfig", "preciousobjects"})

_ID_LENGTH = {"sha1": 40, "sha256": 64}


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


def read_small(path: str) -> str | None:
    """The stripped text of a small file, or None when it does not exist (binary read: fast)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "surrogateescape").strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


# ---------------------------------------------------------------- format


@dataclass(frozen=True)
class Layout:
    """What :func:`read_layout` found: the object format, and ``problem`` (why these readers
    must not be used) or None."""

    object_format: str
    problem: str | None = None
    #: ``core.fileMode``: whether a changed executable bit makes a file differ (git's default)
    file_mode: bool = True


def read_layout(common_dir: Path) -> Layout:
    """The repository's format from its config (``core.repositoryformatversion``,
    ``extensions.*``), re-read when the config file changes (one ``stat`` otherwise)."""
    path = _config_path(common_dir)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return Layout("sha1")  # git reads a missing config as an empty one
    return _layout(path, (st.st_mtime_ns, st.st_size, st.st_ino))


@functools.lru_cache(maxsize=64)
def _config_path(common_dir: Path) -> str:
    return os.path.join(common_dir, "config")


@functools.lru_cache(maxsize=64)
def _layout(path: str, _stat_key: tuple[int, int, int]) -> Layout:
    from dulwich.config import ConfigFile  # the cold path: only when the config changed

    try:
        # git reads the repository format from this file alone, without its includes
        config = ConfigFile.from_path(path, expand_includes=False)
        raw_version = config.get((b"core",), b"repositoryformatversion")
    except KeyError:
        raw_version = b"0"
    except Exception as exc:  # dulwich's parser refused it: git may still read it
        return Layout("sha1", f"its config could not be read here ({type(exc).__name__}: {exc})")
    try:
        version = int(raw_version)
    except ValueError:
        return Layout("sha1", f"core.repositoryformatversion is {raw_version!r}")
    extensions = {
        os.fsdecode(name).lower(): os.fsdecode(value).strip().lower() for name, value in config.items((b"extensions",))
    }
    if version not in (0, 1):
        return Layout("sha1", f"the repository format version is {version}")
    if version == 0 and set(extensions) - _KNOWN_IN_VERSION_0:
        # git honours only a few extensions in version 0 and refuses or ignores the others
        names = ", ".join(sorted(set(extensions) - _KNOWN_IN_VERSION_0))
        return Layout("sha1", f"extensions ({names}) in a repository of format version 0")
    object_format = extensions.get("objectformat", "sha1")
    if object_format not in _ID_LENGTH:
        return Layout("sha1", f"the object format is {object_format!r}")
    if extensions.get("refstorage") == "reftable":
        # dulwich can read reftable, but its reader creates files in the repository when it
        # is opened and reads no linked worktree's own HEAD: only git reads it here
        return Layout(object_format, "the repository keeps its refs in reftable (extensions.refstorage)")
    unknown = sorted(set(extensions) - KNOWN_EXTENSIONS)
    if unknown:
        listed = ", ".join(f"extensions.{name}" for name in unknown)
        return Layout(object_format, f"the repository uses {listed}, which this reader does not know")
    try:
        file_mode = config.get_boolean((b"core",), b"filemode", True)
    except ValueError:
        return Layout(object_format, "core.fileMode is not a boolean")
    return Layout(object_format, file_mode=file_mode)


# ---------------------------------------------------------------- HEAD


def read_head(repo: Repository, layout: Layout) -> str | None:
    """The commit HEAD points to (None on an unborn branch), read from the ``files`` ref store.

    Raises FileNotFoundError when there is no HEAD and :class:`GitFormatError` when HEAD
    resolves to something that is not an object id of the repository's format.
    """
    head = read_small(os.path.join(repo.git_dir, "HEAD"))
    if head is None:
        raise FileNotFoundError(f"{repo.git_dir} has no HEAD")
    seen: list[str] = []
    while head.startswith("ref:"):
        ref = head.split(":", 1)[1].strip()
        if ref in seen or len(seen) >= 5:
            raise GitFormatError(f"HEAD is a loop of symbolic refs ({' -> '.join(seen)})")
        seen.append(ref)
        found = _read_ref(repo, ref)
        if found is None:
            return None  # an unborn branch
        head = found
    if len(head) != _ID_LENGTH[layout.object_format] or head.strip("0123456789abcdef"):
        raise GitFormatError(f"HEAD resolves to {head[:80]!r}, not a {layout.object_format} object id")
    return head


def _read_ref(repo: Repository, ref: str) -> str | None:
    for base in (repo.git_dir, repo.common_dir):
        found = read_small(os.path.join(base, ref))
        if found is not None:
            return found or None
    packed = read_small(os.path.join(repo.common_dir, "packed-refs"))
    for line in (packed or "").splitlines():
        if line.endswith(" " + ref) and not line.startswith(("#", "^")):
            return line.split(" ", 1)[0]
    return None


# ---------------------------------------------------------------- index


@dataclass(frozen=True)
class IndexEntry:
    """What the dirty check needs of one index entry (``sha``: the object id, hex)."""

    mtime_ns: int
    size: int
    mode: int
    sha: bytes
    stage: int


def index_key(repo: Repository) -> tuple[str, tuple[int, int, int]]:
    """The index file and its stat key (the parsed index is cached while the key holds)."""
    path = os.path.join(repo.git_dir, "index")
    st = os.stat(path)
    return path, (st.st_mtime_ns, st.st_size, st.st_ino)


_MANDATORY_EXTENSIONS = {
    b"link": "the index is split (core.splitIndex)",
    b"sdir": "the index is sparse (directory entries)",
}


@functools.lru_cache(maxsize=16)
def read_index(index_path: str, _stat_key: tuple[int, int, int], object_format: str = "sha1") -> dict[str, IndexEntry]:
    """``{path: entry}`` of the index (versions 2-4), read with dulwich.

    Raises :class:`GitFormatError` for what the dirty check cannot rely on: another
    version, a split or sparse index, skip-worktree entries (sparse checkout), an index
    extension git requires readers to understand.
    """
    data = Path(index_path).read_bytes()  # one read: dulwich's many small reads then cost no calls
    if data[:4] != b"DIRC":
        raise GitFormatError("the index has no DIRC signature")
    (version,) = struct.unpack(">I", data[4:8])
    if version not in (2, 3, 4):
        raise GitFormatError(f"index version {version} is not supported")
    from dulwich.index import ConflictedIndexEntry, read_index_dict_with_version
    from dulwich.object_format import get_object_format

    fmt = get_object_format(object_format)
    f = io.BytesIO(data)
    try:
        raw, _, _ = read_index_dict_with_version(f, fmt)
    except Exception as exc:  # dulwich raises AssertionError, struct.error, ValueError...
        raise GitFormatError(f"the index could not be read ({type(exc).__name__}: {exc})") from exc
    # dulwich stops at an extension whose name is not upper case: those are the ones a
    # reader must understand (git's index-format), so one left unread is refused here
    rest = data[f.tell() :]
    if len(rest) > fmt.oid_length:
        signature = rest[:4]
        raise GitFormatError(
            _MANDATORY_EXTENSIONS.get(signature, f"the index has the extension {signature!r} this reader does not know")
        )
    entries: dict[str, IndexEntry] = {}
    for name, found in raw.items():
        stage = 0
        e = found
        if isinstance(found, ConflictedIndexEntry):  # a merge conflict: dirty whatever the files say
            stage = 1
            e = found.this or found.other or found.ancestor  # type: ignore[assignment]
            if e is None:
                raise GitFormatError(f"the index has an empty conflict entry for {name!r}")
        assert not isinstance(e, ConflictedIndexEntry)
        if e.extended_flags & 0x4000:
            raise GitFormatError("the index has skip-worktree entries (sparse checkout)")
        if e.mode & 0o170000 == 0o040000:
            raise GitFormatError("the index is sparse (directory entries)")
        seconds, nanos = e.mtime if isinstance(e.mtime, tuple) else (int(e.mtime), 0)
        entries[name.decode("utf-8", "surrogateescape")] = IndexEntry(
            seconds * 1_000_000_000 + nanos, e.size, e.mode, bytes(e.sha), stage
        )
    return entries


# ---------------------------------------------------------------- objects


def _replaced(common_dir: Path) -> str | None:
    """Why HEAD's tree may not be the one its commit names (grafts or replace refs), or None."""
    if (common_dir / "info" / "grafts").exists():
        return "the repository has grafts (info/grafts)"
    replace = common_dir / "refs" / "replace"
    if replace.is_dir() and any(replace.iterdir()):
        return "the repository replaces objects (refs/replace)"
    if " refs/replace/" in (read_small(str(common_dir / "packed-refs")) or ""):
        return "the repository replaces objects (refs/replace)"
    return None


@functools.lru_cache(maxsize=64)
def committed_blobs(common_dir: Path, object_format: str, commit: str, prefix: str) -> dict[str, bytes]:
    """``{path: object id (hex)}`` of the files ``commit`` holds under ``prefix`` (a file or
    directory; gitlinks included), read with dulwich (loose, packed, deltas, alternates)."""
    problem = _replaced(common_dir)
    if problem:
        raise GitFormatError(problem)
    from dulwich.object_format import get_object_format
    from dulwich.object_store import DiskObjectStore

    store = DiskObjectStore(str(common_dir / "objects"), object_format=get_object_format(object_format))
    try:
        return _files_under(store, commit, [p for p in prefix.split("/") if p])
    except GitFormatError:
        raise
    except Exception as exc:  # a missing object (partial clone), a damaged pack, ...
        raise GitFormatError(f"the objects could not be read ({type(exc).__name__}: {exc})") from exc
    finally:
        store.close()


def _files_under(store: Any, commit: str, parts: list[str]) -> dict[str, bytes]:
    from dulwich.object_store import iter_tree_contents
    from dulwich.objects import Commit, Tree

    head = store[commit.encode()]
    if not isinstance(head, Commit):
        raise GitFormatError(f"HEAD {commit} is not a commit")
    tree = head.tree
    for i, part in enumerate(parts):
        node = store[tree]
        if not isinstance(node, Tree) or part.encode("utf-8", "surrogateescape") not in node:
            return {}
        mode, sha = node[part.encode("utf-8", "surrogateescape")]
        if mode & 0o170000 != 0o040000:  # a file (or gitlink): the prefix names it, or nothing
            return {"/".join(parts): bytes(sha)} if i == len(parts) - 1 else {}
        tree = sha
    base = "/".join(parts)
    return {
        (f"{base}/" if base else "") + entry.path.decode("utf-8", "surrogateescape"): bytes(entry.sha)
        for entry in iter_tree_contents(store, tree)
    }


# ---------------------------------------------------------------- work tree


@functools.lru_cache(maxsize=4096)
def blob_id(path: str, _stat_key: tuple[int, int], object_format: str = "sha1") -> bytes:
    """The object id (hex) git gives the file (a symlink: its target) as a blob."""
    data = os.readlink(path).encode() if os.path.islink(path) else Path(path).read_bytes()
    return hashlib.new(object_format, b"blob %d\0" % len(data) + data).hexdigest().encode()


# ---------------------------------------------------------------- conversions


_ENVIRONMENT = ("HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM")


@functools.lru_cache(maxsize=16)
def _conversion_files(common_dir: Path, environment: tuple[str | None, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(attributes files, config files) git reads for the repository (git-config(1) and
    gitattributes(5), FILES), given the values of :data:`_ENVIRONMENT`."""
    home, xdg, global_config, system_config, no_system = environment
    home = home or os.path.expanduser("~")
    xdg = xdg or os.path.join(home, ".config")
    configs = [os.path.join(common_dir, "config")]
    if global_config is not None:
        configs.append(global_config)
    else:
        configs += [os.path.join(home, ".gitconfig"), os.path.join(xdg, "git", "config")]
    if system_config is not None:
        configs.append(system_config)
    elif no_system is None:
        configs.append("/etc/gitconfig")
    attributes = (os.path.join(common_dir, "info", "attributes"), os.path.join(xdg, "git", "attributes"))
    return attributes, tuple(configs)


def _stat_key(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def conversions(repo: Repository, layout: Layout, index_path: str, key: tuple[int, int, int]) -> str | None:
    """Why the bytes of a work-tree file may not be what git hashes for it (``.gitattributes``
    files, ``info/attributes``, a user attributes file, ``core.autocrlf``, filter drivers,
    ``core.attributesFile``), or None: then a file whose bytes differ from the index differs."""
    environ = os.environ
    attributes, configs = _conversion_files(repo.common_dir, tuple(environ.get(name) for name in _ENVIRONMENT))
    return _conversions(
        index_path,
        key,
        layout.object_format,
        tuple((f, _stat_key(f)) for f in attributes),
        tuple((f, _stat_key(f)) for f in configs),
    )


@functools.lru_cache(maxsize=16)
def _conversions(
    index_path: str,
    key: tuple[int, int, int],
    object_format: str,
    attributes: tuple[tuple[str, tuple[int, int, int] | None], ...],
    configs: tuple[tuple[str, tuple[int, int, int] | None], ...],
) -> str | None:
    for path, stat_key in attributes:
        if stat_key is not None:
            return f"attributes apply ({path})"
    if any(p == ".gitattributes" or p.endswith("/.gitattributes") for p in read_index(index_path, key, object_format)):
        return "the repository has .gitattributes files"
    from dulwich.config import ConfigFile

    for path, stat_key in configs:
        if stat_key is None:
            continue
        try:
            config = ConfigFile.from_path(path)
        except Exception as exc:  # unreadable here: git may read it and find a conversion
            return f"{path} could not be read here ({type(exc).__name__})"
        if any(section[0].lower() == b"filter" for section in config.sections()):
            return f"{path} configures filter drivers"
        for name in (b"autocrlf", b"attributesfile"):
            try:
                value = config.get((b"core",), name)
            except KeyError:
                continue
            if name == b"attributesfile" or value.strip().lower() not in (b"false", b"no", b"off", b"0", b""):
                return f"{path} sets core.{name.decode()}"
    return None
