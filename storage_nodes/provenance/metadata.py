"""Metadata beside the data: user metadata and the environment record.

The environment record is plain JSON-able data written with every save::

    {"record_version": 1, "storage_nodes": "0.1.0", "backend": "pickle", "format_version": 1,
     "python": {"version": "3.11.7", "implementation": "CPython"}, "platform": "Linux-...",
     "timestamp": "2026-11-25T12:00:00.000000Z",
     "modules": {"mypkg.core": {"package": "mypkg", "distribution": "mypkg", "version": "1.2.0",
                                "git": {"commit": "3f2a...", "dirty": false},
                                "sources": {"Model": "<sha256 of the class source>"}}}}

``modules`` lists every non-standard-library module whose classes or functions were met
while serialising. ``git`` is null outside a git work tree (or for untracked files);
``dirty`` covers the tracked files of the module's top-level package and is null, with a
``note``, when it cannot be determined. ``sources`` hashes each stored class or function's
definition lines (decorators included) as they stand in the module's file.

Gathering the record never imports anything. What cannot change while a process runs
(distribution versions of imported packages, platform) is cached per process; source
hashes are cached per file state (size and mtime) and git state while inotify reports no
change (:func:`~storage_nodes.provenance.gitinfo.git_state`), and so is the whole
``modules`` part while no event arrives in the module files' directories: an edit is seen
at the next save.
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import datetime
import functools
import hashlib
import importlib.machinery
import importlib.metadata
import importlib.util
import itertools
import json
import os
import platform
import re
import sys
import threading
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import MetadataError
from . import _watch, gitinfo
from .gitinfo import git_state
from .session_code import is_session_module, session_hashes

__all__ = [
    "RECORD_VERSION",
    "ObjectCollector",
    "current_record",
    "environment_record",
    "merge_records",
    "module_record",
    "objects_from_recipe",
    "recorded_objects",
    "validate_metadata",
]

RECORD_VERSION = 1

# ``__main__`` is recorded: a notebook's node functions and classes live there (session_code)
_SKIP_MODULES = frozenset({"builtins", "copyreg", "_codecs"})
_lock = threading.RLock()
_CODE_TYPES = (types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def validate_metadata(metadata: Mapping[str, Any] | None, *, path: Any = None) -> dict[str, Any]:
    """Return user metadata as plain JSON data, or raise :class:`MetadataError`.

    Keys must be strings; values must be JSON-able (str, int, float, bool, None, lists,
    dicts with str keys); NaN and infinities are refused.

    >>> validate_metadata({"sample": "Cu-3", "T": 300})
    {'T': 300, 'sample': 'Cu-3'}
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise MetadataError(
            f"metadata for {path} must be a dict of JSON-able values, got {type(metadata).__name__}", path=path
        )
    bad = _non_string_key(metadata)
    if bad is not None:
        raise MetadataError(
            f"metadata for {path} has the non-string key {bad!r}; JSON keys are strings: convert it", path=path
        )
    try:
        text = json.dumps(dict(metadata), allow_nan=False, sort_keys=True, default=_numpy_scalar)
    except (TypeError, ValueError, RecursionError) as exc:
        raise MetadataError(
            f"metadata for {path} is not JSON-able ({exc}); use str, int, float, bool, None, "
            "lists and dicts with string keys",
            path=path,
        ) from None
    result: dict[str, Any] = json.loads(text)
    return result


def _numpy_scalar(value: Any) -> Any:
    """A numpy scalar's Python value (``np.int64(3)`` -> ``3``), as ``np.float64`` is a float already."""
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == () and hasattr(value, "item"):
        item = value.item()
        if isinstance(item, str | int | float | bool):
            return item
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _non_string_key(value: Any, depth: int = 0) -> Any:
    """The first dict key that is not a string, anywhere in ``value`` (JSON would stringify it)."""
    if depth > 100:
        return None  # json.dumps reports the nesting
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                return k
            found = _non_string_key(v, depth + 1)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for v in value:
            found = _non_string_key(v, depth + 1)
            if found is not None:
                return found
    return None


class ObjectCollector:
    """Collects the ``(module, qualname)`` of classes and functions met while serialising.

    >>> c = ObjectCollector()
    >>> c.add_object(ObjectCollector())
    >>> sorted(c.objects)
    [('storage_nodes.provenance.metadata', 'ObjectCollector')]
    """

    __slots__ = ("_seen_types", "objects")

    def __init__(self) -> None:
        self.objects: set[tuple[str, str]] = set()
        self._seen_types: set[type] = set()

    def add_type(self, cls: type) -> None:
        """Record the class ``cls``."""
        module = getattr(cls, "__module__", None)
        if isinstance(module, str) and module not in _SKIP_MODULES:
            self.objects.add((module, getattr(cls, "__qualname__", cls.__name__)))

    def add_object(self, obj: Any) -> None:
        """Record ``obj``'s class, or ``obj`` itself when it is a class or function."""
        t = type(obj)
        if t in self._seen_types:
            return
        if isinstance(obj, (type, *_CODE_TYPES)):
            module = getattr(obj, "__module__", None)
            qualname = getattr(obj, "__qualname__", None)
            if isinstance(module, str) and isinstance(qualname, str) and module not in _SKIP_MODULES:
                self.objects.add((module, qualname))
            return
        self._seen_types.add(t)
        self.add_type(t)

    def add_name(self, module: str, qualname: str) -> None:
        """Record a class or function known by name (e.g. from a workflow recipe)."""
        if module and module not in _SKIP_MODULES:
            self.objects.add((module, qualname))


def objects_from_recipe(recipe: str | Mapping[str, Any] | Any) -> Iterator[tuple[str, str]]:
    """The ``(module, qualname)`` of every function a pyiron_workflow recipe refers to.

    Accepts the recipe JSON text, its parsed dict, or a pydantic recipe model. Every
    mapping holding string ``module`` and ``qualname`` entries (atomic nodes keep them
    under ``reference.info``) counts, at any depth (macros, loops, nested workflows).

    >>> recipe = {"nodes": {"a": {"type": "atomic", "reference": {"info": {"module": "m", "qualname": "f"}}}}}
    >>> list(objects_from_recipe(recipe))
    [('m', 'f')]
    """
    if hasattr(recipe, "model_dump"):
        recipe = recipe.model_dump(mode="json")
    if isinstance(recipe, str | bytes):
        recipe = json.loads(recipe)
    seen: set[tuple[str, str]] = set()
    stack: list[Any] = [recipe]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            module, qualname = item.get("module"), item.get("qualname")
            if isinstance(module, str) and isinstance(qualname, str) and (module, qualname) not in seen:
                seen.add((module, qualname))
                yield module, qualname
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list | tuple):
            stack.extend(reversed(item))


_EXTRA_OBJECTS: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar(
    "storage_nodes_recorded_objects", default=()
)


@contextlib.contextmanager
def recorded_objects(objects: Iterable[tuple[str, str]]) -> Iterator[None]:
    """Add ``(module, qualname)`` pairs to the environment record of every save inside the block.

    For code a file refers to by name without storing it, e.g. the node functions of a
    workflow recipe stored as JSON text. Per thread and per asyncio task (a context variable):
    saves running elsewhere at the same time are not affected.

    >>> import storage_nodes as sn
    >>> with recorded_objects(objects_from_recipe(recipe_json)):  # doctest: +SKIP
    ...     sn.save(document, "wf.h5")
    """
    token = _EXTRA_OBJECTS.set((*_EXTRA_OBJECTS.get(), *objects))
    try:
        yield
    finally:
        _EXTRA_OBJECTS.reset(token)


# ---------------------------------------------------------------- locating modules without importing


def _is_stdlib(module: str) -> bool:
    top = module.split(".", 1)[0]
    return top in sys.stdlib_module_names or (top.startswith("_") and top[1:] in sys.stdlib_module_names)


def _module_spec(module: str) -> importlib.machinery.ModuleSpec | None:
    """Find ``module`` without importing it (not even its parent packages)."""
    parts = module.split(".")
    try:
        top_mod = sys.modules.get(parts[0])
        spec: importlib.machinery.ModuleSpec | None = (
            getattr(top_mod, "__spec__", None) if top_mod is not None else importlib.util.find_spec(parts[0])
        )
        for i in range(1, len(parts)):
            search = spec.submodule_search_locations if spec is not None else None
            if not search:
                return None
            name = ".".join(parts[: i + 1])
            loaded = sys.modules.get(name)
            if loaded is not None and getattr(loaded, "__spec__", None) is not None:
                spec = loaded.__spec__
            else:
                spec = importlib.machinery.PathFinder.find_spec(name, list(search))
    except (ImportError, ValueError, AttributeError):
        return None
    return spec


def _module_file(module: str) -> str | None:
    """The source file of ``module``: the loaded module's, else where an import would find it."""
    mod = sys.modules.get(module)
    if mod is not None:
        file = getattr(mod, "__file__", None)
        return file if isinstance(file, str) else None
    spec = _module_spec(module)
    return spec.origin if spec is not None and spec.has_location else None


@functools.lru_cache(maxsize=1024)
def _package_scope(module: str, file: str) -> str:
    """The directory of ``module``'s top-level package (or its file for a top-level module)."""
    p = Path(file)
    if p.stem == "__init__":
        p = p.parent
    for _ in range(module.count(".")):
        p = p.parent
    return str(p)


# ---------------------------------------------------------------- distributions


@functools.cache
def _packages_distributions() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _name_version(dist: importlib.metadata.Distribution) -> tuple[str | None, str | None]:
    """Name and version from the metadata headers only: ``dist.metadata`` parses the whole
    file with the email parser (~2 ms for a long README), the headers take microseconds."""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    head = text.split("\n\n", 1)[0]
    name = re.search(r"^Name:[ \t]*(\S+)", head, re.M)
    version = re.search(r"^Version:[ \t]*(\S+)", head, re.M)
    if name and version:
        return name.group(1), version.group(1)
    meta = dist.metadata
    return meta["Name"], meta["Version"]


def _distribution(top: str) -> tuple[str | None, str | None]:
    """(distribution name, version) providing the top-level package ``top``."""
    try:  # most distributions are named like their package (normalised): one directory scan
        return _name_version(importlib.metadata.distribution(top))
    except (importlib.metadata.PackageNotFoundError, ValueError):
        pass
    if not _beside_distributions(top):  # a module beside a notebook or script: no distribution has it
        return None, None
    # a full scan (~0.1 s), once per process: a distribution installed under another name
    # while the process runs is seen by the next process
    names = _packages_distributions().get(top) or []
    for name in names:
        try:
            return name, importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None, None


_cached_distribution = functools.lru_cache(maxsize=1024)(_distribution)


def _beside_distributions(top: str) -> bool:
    """Whether the directory an import finds ``top`` in holds installed distributions (a
    site-packages directory), or where it is cannot be told. A package in a plain directory
    (a notebook's folder, a source tree on ``PYTHONPATH``) is in no distribution's file list,
    so the full scan of every installed distribution (0.5-1.5 s) cannot find it and is skipped."""
    file = _module_file(top)
    if file is None:
        return True
    entry = Path(file).parent
    if Path(file).stem == "__init__":
        entry = entry.parent
    return _holds_distributions(str(entry))


@functools.lru_cache(maxsize=64)
def _holds_distributions(directory: str) -> bool:
    try:
        with os.scandir(directory) as entries:
            return any(e.name.endswith((".dist-info", ".egg-info")) for e in entries)
    except OSError:
        return True


# ---------------------------------------------------------------- source hashes


@functools.lru_cache(maxsize=512)
def _definitions(file: str, _stat_key: tuple[int, ...]) -> dict[str, str]:
    """``{qualname: sha256}`` of every class and function defined in ``file`` (not in function bodies)."""
    try:
        text = Path(file).read_text(encoding="utf-8")
        tree = ast.parse(text)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return {}
    lines = text.splitlines(keepends=True)
    result: dict[str, str] = {}
    stack: list[tuple[ast.AST, str]] = [(tree, "")]
    while stack:
        node, prefix = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                qualname = f"{prefix}{child.name}"
                start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                end = child.end_lineno or child.lineno
                result[qualname] = hashlib.sha256("".join(lines[start - 1 : end]).encode()).hexdigest()
                if isinstance(child, ast.ClassDef):
                    stack.append((child, qualname + "."))
            elif isinstance(child, ast.If | ast.Try | ast.With):  # definitions under `if TYPE_CHECKING:` etc.
                stack.append((child, prefix))
    return result


@functools.lru_cache(maxsize=512)
def _defined_names(file: str, _stat_key: tuple[int, ...]) -> frozenset[str]:
    """Names after ``class``/``def`` in ``file``: a cheap test before parsing it."""
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return frozenset()
    return frozenset(re.findall(r"^[ \t]*(?:async[ \t]+)?(?:class|def)[ \t]+(\w+)", text, re.M))


def _source_hashes(file: str | None, qualnames: Iterable[str]) -> dict[str, str]:
    if file is None or not file.endswith(".py"):
        return {}
    try:
        st = os.stat(file)
    except OSError:
        return {}
    key = (st.st_mtime_ns, st.st_size, st.st_ino)  # the inode: an editor renames a new file over it
    wanted = sorted(set(qualnames))
    names = _defined_names(file, key)
    if not any(q.split(".", 1)[0] in names for q in wanted):
        return {}  # e.g. a C type exported by a package's __init__.py: skip parsing that file
    defs = _definitions(file, key)
    return {q: defs[q] for q in wanted if q in defs}


# ---------------------------------------------------------------- records


def module_record(
    module: str,
    qualnames: Iterable[str] = (),
    *,
    fresh: bool = False,
    with_git: bool = True,
    _git_cache: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The record of one module: package, distribution, version, git state, source hashes.

    ``fresh=True`` (used when checking at load time) looks distribution versions up again
    for packages not imported yet. ``with_git=False`` leaves ``git`` null (the catalog
    needs only version and source hashes, per node of every recorded run). Never imports
    anything.

    >>> module_record("storage_nodes.provenance.metadata", ["ObjectCollector"])["package"]
    'storage_nodes'
    """
    top = module.split(".", 1)[0]
    if is_session_module(module):  # no file, no distribution: the live source is all there is
        return {
            "package": top,
            "distribution": None,
            "version": None,
            "git": None,
            "sources": session_hashes(module, qualnames),
            "session": True,
        }
    # an imported package runs the version it was imported at: the cached answer is the true one
    if fresh and top not in sys.modules:
        distribution, version = _distribution(top)
    else:
        distribution, version = _cached_distribution(top)
    if version is None:
        top_mod = sys.modules.get(top)
        found = getattr(top_mod, "__version__", None) if top_mod is not None else None
        version = str(found) if found is not None else None
    record: dict[str, Any] = {"package": top, "distribution": distribution, "version": version, "git": None}
    file = _module_file(module)
    if file is not None and with_git:
        scope = _package_scope(module, file)
        cache = _git_cache if _git_cache is not None else {}
        if scope not in cache:
            cache[scope] = git_state(file, scope)
        record["git"] = cache[scope]
    record["sources"] = _source_hashes(file, qualnames)
    return record


def _group(objects: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    grouped: dict[str, set[str]] = {}
    for module, qualname in objects:
        if module in _SKIP_MODULES or _is_stdlib(module):
            continue
        grouped.setdefault(module, set()).add(qualname)
    return grouped


#: the ``modules`` part of records, by the objects they were made for: (watcher, its
#: generation when the record was made, record); kept only where every input of the record
#: is watched (the module files' directories, and the git states gitinfo keeps)
_modules_kept: dict[frozenset[tuple[str, str]], tuple[_watch.Watcher, int, dict[str, Any]]] = {}


def _modules(objects: frozenset[tuple[str, str]]) -> dict[str, Any]:
    """The ``modules`` of the environment record of ``objects`` (called under ``_lock``).

    A record is made again only when inotify reports a change in a directory it was read
    from (module files, git directories, the directories of the packages' tracked files);
    without inotify, on a network file system or for a module not imported, on every call."""
    w = _watch.watcher()
    hit = _modules_kept.get(objects) if w is not None else None
    if hit is not None and w is not None and hit[0] is w and hit[1] == w.generation():
        return _copy_modules(hit[2])
    grouped = _group(objects)
    files = {m: _module_file(m) for m in grouped}
    # the generation first, then the watches, then the reading: an event after the first
    # look (even one that removed a watch) keeps this record from being kept
    before = w.generation() if w is not None else None
    watched = w is not None and w.watch(sorted({os.path.dirname(f) for f in files.values() if f}))
    git_cache: dict[str, Any] = {}
    modules = {m: module_record(m, q, _git_cache=git_cache) for m, q in sorted(grouped.items())}
    if (
        watched
        and w is not None
        and all(m in sys.modules for m in files)  # else where an import would find it may change
        and not any(r.get("session") for r in modules.values())  # a cell run again is not a file event
        and _git_kept(files)
        and w.generation() == before
    ):
        if len(_modules_kept) >= 256:
            _modules_kept.clear()
        _modules_kept[objects] = (w, before, _copy_modules(modules))
    return modules


def _git_kept(files: dict[str, str | None]) -> bool:
    """Whether the git state of each package scope, asked for by the first of its modules (as
    :func:`module_record` does with its ``_git_cache``), is one gitinfo keeps."""
    asked: set[str] = set()
    for module, file in sorted(files.items()):
        if file is None:
            continue
        scope = _package_scope(module, file)
        if scope not in asked:
            asked.add(scope)
            if not gitinfo.kept(file, scope):
                return False
    return True


def _copy_modules(modules: dict[str, Any]) -> dict[str, Any]:
    return {m: {**r, "git": gitinfo.copy_state(r["git"]), "sources": dict(r["sources"])} for m, r in modules.items()}


def _python() -> dict[str, str]:
    return {"version": platform.python_version(), "implementation": platform.python_implementation()}


@functools.cache
def _platform() -> str:
    # not platform.platform(): on Linux it runs `uname -p` in a subprocess (~5 ms)
    return f"{platform.system()}-{platform.release()}-{platform.machine()}"


def _timestamp() -> str:
    """Now in UTC, as ``2026-11-25T12:00:00.000000Z`` (isoformat: half the time of strftime)."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def environment_record(
    objects: Iterable[tuple[str, str]] = (),
    *,
    backend: str | None = None,
    format_version: int | None = None,
) -> dict[str, Any]:
    """The environment record for a save that stored ``objects`` (``(module, qualname)`` pairs),
    plus those of any enclosing :func:`recorded_objects` block.

    >>> where = "storage_nodes.provenance.metadata"
    >>> rec = environment_record([(where, "ObjectCollector")], backend="pickle", format_version=1)
    >>> rec["modules"][where]["package"], rec["backend"]
    ('storage_nodes', 'pickle')
    """
    from .._version import __version__

    with _lock:
        modules = _modules(frozenset(itertools.chain(objects, _EXTRA_OBJECTS.get())))
    return {
        "record_version": RECORD_VERSION,
        "storage_nodes": __version__,
        "backend": backend,
        "format_version": format_version,
        "python": _python(),
        "platform": _platform(),
        "timestamp": _timestamp(),
        "modules": modules,
    }


def current_record(
    stored: Mapping[str, Any], *, modules: Iterable[str] | None = None, allow_import: bool = False
) -> dict[str, Any]:
    """The current environment's record for the modules named in ``stored`` (or only ``modules``).

    Each module gets ``found``: whether an import would find it. Nothing is imported
    (``allow_import`` is accepted for the backends' sake; the record never needs it).

    >>> current_record({"modules": {"json": {}}})["modules"]["json"]["found"]
    True
    """
    del allow_import  # locating, hashing and git reads never import
    stored_modules: Mapping[str, Any] = stored.get("modules") or {}
    names = list(stored_modules) if modules is None else [m for m in modules if m in stored_modules]
    git_cache: dict[str, Any] = {}
    result: dict[str, Any] = {}
    invalidated = False
    wanted = {name: _stored_qualnames(stored_modules.get(name)) for name in names}
    with _lock:
        # imported modules: the record a save from them would get (kept while nothing changes;
        # standard-library modules are left out of it, as of every record, and looked up below)
        kept = _modules(
            frozenset((name, q) for name, qualnames in wanted.items() if name in sys.modules for q in qualnames)
        )
        for name in names:
            if name in kept:
                result[name] = {**kept[name], "found": True}
                continue
            found = name in sys.modules or _module_spec(name) is not None
            if not found and not invalidated:  # the import system caches directory listings: look again
                importlib.invalidate_caches()
                invalidated = True
                found = _module_spec(name) is not None
            if not found:
                top = name.split(".", 1)[0]
                result[name] = {"package": top, "distribution": None, "version": None, "git": None, "sources": {}}
                result[name]["found"] = False
                continue
            result[name] = {**module_record(name, wanted[name], fresh=True, _git_cache=git_cache), "found": True}
    return {"record_version": RECORD_VERSION, "python": _python(), "platform": _platform(), "modules": result}


def _stored_qualnames(rec: Any) -> list[str]:
    """The names a stored module record hashed the sources of (none if it is malformed)."""
    sources = rec.get("sources") if isinstance(rec, Mapping) else None
    return [q for q in sources if isinstance(q, str)] if isinstance(sources, Mapping) else []


def merge_records(stored: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The record of a file after a partial write: ``new`` wins, earlier modules and source hashes stay.

    For a module in both, version and git state come from ``new`` and the ``sources``
    are united (a class stored by an earlier save keeps its hash). Inputs are not changed.

    >>> old = {"modules": {"m": {"version": "1", "sources": {"A": "a"}}}}
    >>> merge_records(old, {"modules": {"m": {"version": "2", "sources": {"B": "b"}}}})["modules"]
    {'m': {'version': '2', 'sources': {'A': 'a', 'B': 'b'}}}
    """
    merged = {**stored, **new}
    modules = {name: dict(rec) for name, rec in (stored.get("modules") or {}).items()}
    for name, rec in (new.get("modules") or {}).items():
        sources = {**(modules.get(name, {}).get("sources") or {}), **(rec.get("sources") or {})}
        modules[name] = {**rec, "sources": sources}
    merged["modules"] = modules
    return merged


# Type of a user-supplied policy callable: (stored record, current record) -> None
PolicyCallable = Callable[[dict[str, Any], dict[str, Any]], Any]
