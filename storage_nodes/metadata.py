"""Metadata beside the data: user metadata and the environment record.

The environment record is plain JSON-able data written with every save::

    {"record_version": 1, "storage_nodes": "0.1.0", "backend": "h5", "format_version": 1,
     "python": {"version": "3.11.7", "implementation": "CPython"}, "platform": "...",
     "timestamp": "2026-11-25T12:00:00Z",
     "modules": {"mypkg.core": {"package": "mypkg", "distribution": "mypkg", "version": "1.2.0",
                                "git": {"commit": "3f2a...", "dirty": false},
                                "sources": {"Model": "<sha256 of the class source>"}}}}

``modules`` lists every non-standard-library module whose classes or functions were met
while serialising. What does not change within a process (distribution versions, git
state, source hashes) is cached per process, so recording is cheap.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import importlib.metadata
import importlib.util
import inspect
import json
import platform
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import MetadataError

__all__ = [
    "RECORD_VERSION",
    "ObjectCollector",
    "environment_record",
    "module_record",
    "validate_metadata",
]

RECORD_VERSION = 1

_SKIP_MODULES = frozenset({"builtins", "__main__", "__mp_main__", "copyreg", "_codecs"})
_lock = threading.RLock()


def validate_metadata(metadata: Mapping[str, Any] | None, *, path: Any = None) -> dict[str, Any]:
    """Return user metadata as plain JSON data, or raise :class:`MetadataError`.

    Keys must be strings; values must be JSON-able (str, int, float, bool, None, lists,
    dicts with str keys).
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise MetadataError(f"metadata must be a dict of JSON-able values, got {type(metadata).__name__}", path=path)
    try:
        text = json.dumps(dict(metadata), allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise MetadataError(
            f"metadata for {path} is not JSON-able ({exc}); use str, int, float, bool, None, "
            "lists and dicts with string keys",
            path=path,
        ) from None
    result: dict[str, Any] = json.loads(text)
    return result


class ObjectCollector:
    """Collects the ``(module, qualname)`` of classes and functions met while serialising."""

    __slots__ = ("objects",)

    def __init__(self) -> None:
        self.objects: set[tuple[str, str]] = set()

    def add_type(self, cls: type) -> None:
        module = getattr(cls, "__module__", None)
        if module and module not in _SKIP_MODULES:
            self.objects.add((module, getattr(cls, "__qualname__", cls.__name__)))

    def add_object(self, obj: Any) -> None:
        """Record ``obj``'s class, or ``obj`` itself when it is a class or function."""
        if isinstance(obj, type) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
            module = getattr(obj, "__module__", None)
            qualname = getattr(obj, "__qualname__", None)
            if module and qualname and module not in _SKIP_MODULES:
                self.objects.add((module, qualname))
        else:
            self.add_type(type(obj))

    def add_name(self, module: str, qualname: str) -> None:
        if module and module not in _SKIP_MODULES:
            self.objects.add((module, qualname))


@functools.cache
def _packages_distributions() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _is_stdlib(module: str) -> bool:
    top = module.split(".", 1)[0]
    return top in sys.stdlib_module_names or (top.startswith("_") and top[1:] in sys.stdlib_module_names)


@functools.cache
def _dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _uncached_dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _module_file(module: str, *, allow_import: bool) -> str | None:
    mod = sys.modules.get(module)
    if mod is not None:
        return getattr(mod, "__file__", None)
    if not allow_import and "." in module:
        return None  # find_spec of a submodule would import its parents
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None and spec.has_location else None


def _find_git_dir(start: Path) -> Path | None:
    for directory in [start, *start.parents]:
        candidate = directory / ".git"
        if candidate.is_dir():
            return candidate
        if candidate.is_file():  # worktrees and submodules: "gitdir: <path>"
            text = candidate.read_text().strip()
            if text.startswith("gitdir:"):
                return (directory / text.split(":", 1)[1].strip()).resolve()
    return None


def _read_head(git_dir: Path) -> str | None:
    """The commit HEAD points to, read from the repository files (no git executable)."""
    try:
        head = (git_dir / "HEAD").read_text().strip()
    except OSError:
        return None
    if not head.startswith("ref:"):
        return head or None
    ref = head.split(":", 1)[1].strip()
    common = git_dir
    commondir = git_dir / "commondir"
    if commondir.is_file():
        common = (git_dir / commondir.read_text().strip()).resolve()
    for base in (git_dir, common):
        ref_file = base / ref
        if ref_file.is_file():
            return ref_file.read_text().strip() or None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split(" ", 1)[0]
    return None


def _git_dirty(work_tree: Path) -> bool | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        out = subprocess.run(
            [git, "-C", str(work_tree), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.strip())


@functools.cache
def _git_info_cached(directory: str) -> dict[str, Any] | None:
    return _git_info(directory)


def _git_info(directory: str) -> dict[str, Any] | None:
    git_dir = _find_git_dir(Path(directory))
    if git_dir is None:
        return None
    work_tree = git_dir.parent if git_dir.name == ".git" else Path(directory)
    info: dict[str, Any] = {"commit": _read_head(git_dir), "dirty": _git_dirty(work_tree)}
    if info["dirty"] is None:
        info["note"] = "dirty state unknown: the git executable was not found"
    return info


def _source_hash(module: str, qualname: str, *, allow_import: bool) -> str | None:
    mod = sys.modules.get(module)
    if mod is None:
        if not allow_import:
            return None
        try:
            mod = importlib.import_module(module)
        except Exception:
            return None
    obj: Any = mod
    for part in qualname.split("."):
        if part == "<locals>":
            return None
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError):
        return None
    return hashlib.sha256(source.encode()).hexdigest()


@functools.cache
def _source_hash_cached(module: str, qualname: str) -> str | None:
    return _source_hash(module, qualname, allow_import=False)


def module_record(
    module: str, qualnames: Iterable[str] = (), *, fresh: bool = False, allow_import: bool = False
) -> dict[str, Any]:
    """The record of one module: package, distribution, version, git state, source hashes.

    ``fresh=True`` bypasses the per-process caches (used when checking at load time).
    ``allow_import=False`` never imports anything (submodules not yet imported get no file
    and so no git state or source hashes).
    """
    top = module.split(".", 1)[0]
    dists = _packages_distributions().get(top, [])
    record: dict[str, Any] = {"package": top, "distribution": dists[0] if dists else None}
    version = None
    if dists:
        version = _uncached_dist_version(dists[0]) if fresh else _dist_version(dists[0])
    if version is None:
        top_mod = sys.modules.get(top)
        version = getattr(top_mod, "__version__", None) if top_mod is not None else None
        version = str(version) if version is not None else None
    record["version"] = version
    file = _module_file(module, allow_import=allow_import)
    if file is None and "." in module:
        file = _module_file(top, allow_import=allow_import)
    if file is not None:
        directory = str(Path(file).resolve().parent)
        record["git"] = _git_info(directory) if fresh else _git_info_cached(directory)
    else:
        record["git"] = None
        record["found"] = _importable(module)
    sources = {}
    for q in sorted(set(qualnames)):
        h = _source_hash(module, q, allow_import=allow_import) if fresh else _source_hash_cached(module, q)
        if h is not None:
            sources[q] = h
    record["sources"] = sources
    return record


def _importable(module: str) -> bool:
    """Whether the top-level package of ``module`` can be found, without importing it."""
    top = module.split(".", 1)[0]
    if top in sys.modules:
        return True
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def _group(objects: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    grouped: dict[str, set[str]] = {}
    for module, qualname in objects:
        if _is_stdlib(module):
            continue
        grouped.setdefault(module, set()).add(qualname)
    return grouped


def environment_record(
    objects: Iterable[tuple[str, str]] = (),
    *,
    backend: str | None = None,
    format_version: int | None = None,
) -> dict[str, Any]:
    """Build the environment record for a save that stored ``objects`` (module, qualname)."""
    from . import __version__

    with _lock:
        modules = {m: module_record(m, q) for m, q in sorted(_group(objects).items())}
    return {
        "record_version": RECORD_VERSION,
        "storage_nodes": __version__,
        "backend": backend,
        "format_version": format_version,
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation()},
        "platform": _platform(),
        "timestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "modules": modules,
    }


@functools.cache
def _platform() -> str:
    return platform.platform()


def current_record(
    stored: Mapping[str, Any], *, modules: Iterable[str] | None = None, allow_import: bool = False
) -> dict[str, Any]:
    """The current environment's record for the modules named in ``stored`` (or ``modules``)."""
    stored_modules: Mapping[str, Any] = stored.get("modules") or {}
    names = list(stored_modules) if modules is None else [m for m in modules if m in stored_modules]
    result = {}
    for name in names:
        rec = stored_modules.get(name) or {}
        result[name] = module_record(name, (rec.get("sources") or {}).keys(), fresh=True, allow_import=allow_import)
        result[name].setdefault("found", _importable(name))
    return {
        "record_version": RECORD_VERSION,
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation()},
        "platform": _platform(),
        "modules": result,
    }


# Type of a user-supplied policy callable: (stored record, current record) -> None
PolicyCallable = Callable[[dict[str, Any], dict[str, Any]], Any]
