"""Backend registry: names to backends, suffixes and content detection, plugins.

Built-in backends are imported lazily on first use: their suffixes are in this module's
table, so choosing a backend by file name imports none of the others (saving ``x.json``
does not import h5py). Third-party backends register through the entry-point group
``storage_nodes.backends`` (the entry point names a
:class:`~storage_nodes.backends.base.Backend` subclass, whose ``suffixes`` it declares) or
by calling :func:`register`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import stat
import threading
from pathlib import Path

from .backends.base import Backend
from .errors import (
    BackendNotFoundError,
    CorruptFileError,
    FileNotFoundStorageError,
    InvalidArgumentError,
    StorageError,
)

__all__ = ["ENTRY_POINT_GROUP", "detect", "for_suffix", "get", "names", "names_with", "register", "suffixes"]

ENTRY_POINT_GROUP = "storage_nodes.backends"
DEFAULT_BACKEND = "h5"

#: name -> (the class, as "module:attribute"; the file suffixes that select it on save)
_BUILTIN: dict[str, tuple[str, tuple[str, ...]]] = {
    "pickle": ("storage_nodes.backends.pickle:PickleBackend", (".pkl", ".pickle")),
    "cloudpickle": ("storage_nodes.backends.cloudpickle:CloudpickleBackend", (".cpkl", ".cloudpickle")),
    "json": ("storage_nodes.backends.json:JsonBackend", (".json",)),
    "h5": ("storage_nodes.backends.h5:H5Backend", (".h5", ".hdf5")),
}
BUILTIN_NAMES: tuple[str, ...] = tuple(sorted(_BUILTIN))

_lock = threading.RLock()
_specs: dict[str, str | type[Backend]] = {}
_instances: dict[str, Backend] = {}
_loaded_plugins = False


def _ensure() -> None:
    global _loaded_plugins
    with _lock:
        if _loaded_plugins:
            return
        for name, (spec, _) in _BUILTIN.items():
            _specs.setdefault(name, spec)
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            _specs.setdefault(ep.name, ep.value)
        _loaded_plugins = True


def register(backend: type[Backend], *, replace: bool = False) -> None:
    """Register a backend class under its ``name`` (``replace=True`` swaps an existing one).

    Packages can also register through the ``storage_nodes.backends`` entry point group.

    >>> register(MyBackend)  # doctest: +SKIP
    >>> "mine" in names()  # doctest: +SKIP
    True
    """
    if not (isinstance(backend, type) and issubclass(backend, Backend)):
        raise InvalidArgumentError(f"register() takes a Backend subclass, got {backend!r}")
    _ensure()
    with _lock:
        if backend.name in _specs and not replace and _specs[backend.name] is not backend:
            raise StorageError(f"a backend named {backend.name!r} is already registered; pass replace=True")
        _specs[backend.name] = backend
        _instances.pop(backend.name, None)


def names() -> list[str]:
    """Names of all registered backends, sorted."""
    _ensure()
    return sorted(_specs)


def get(name: str) -> Backend:
    """The backend called ``name``; an unknown name raises :class:`BackendNotFoundError`."""
    _ensure()
    with _lock:
        if name in _instances:
            return _instances[name]
        spec = _specs.get(name) if isinstance(name, str) else None
        if spec is None:
            raise BackendNotFoundError(f"unknown backend {name!r}; valid backends are {names()}", key=None)
        if isinstance(spec, str):
            module_name, _, attr = spec.partition(":")
            cls = getattr(importlib.import_module(module_name), attr)
        else:
            cls = spec
        instance = cls()
        _instances[name] = instance
        return instance


def names_with(flag: str) -> list[str]:
    """Names of the backends whose capability ``flag`` is true (e.g. ``"supports_browse"``)."""
    return [n for n in names() if getattr(get(n), flag, False)]


def suffixes(name: str) -> tuple[str, ...]:
    """The file suffixes that select backend ``name`` on save (lower case, with the dot).

    A built-in backend's come from this module's table (nothing imported); another
    backend's from its class's ``suffixes``.
    """
    _ensure()
    with _lock:
        spec = _specs.get(name)
    builtin = _BUILTIN.get(name)
    if builtin is not None and spec == builtin[0]:
        return builtin[1]
    if isinstance(spec, type):
        return tuple(spec.suffixes)
    return tuple(get(name).suffixes)


def for_suffix(path: str | os.PathLike[str]) -> str:
    """The backend a save picks from the file name; :data:`DEFAULT_BACKEND` if none matches.

    >>> for_suffix("results.json"), for_suffix("run.pkl"), for_suffix("notes.txt")
    ('json', 'pickle', 'h5')
    """
    suffix = Path(path).suffix.lower()
    for n in names():
        if suffix in suffixes(n):
            return n
    return DEFAULT_BACKEND


def check_readable_file(path: Path) -> None:
    """Raise a clear :class:`StorageError` unless ``path`` is an existing regular file."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise FileNotFoundStorageError(f"no such file: {path}", path=path) from None
    except PermissionError:
        raise StorageError(f"permission denied: cannot access {path}", path=path) from None
    except OSError as exc:
        raise StorageError(f"cannot access {path}: {exc}", path=path) from None
    if stat.S_ISDIR(st.st_mode):
        raise CorruptFileError(f"{path} is a directory, not a stored file", path=path)
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path)


def _not_regular(path: Path) -> CorruptFileError:
    # a FIFO or a character device would block the read (or never end): refused up front
    return CorruptFileError(
        f"{path} is not a regular file (a FIFO, socket or device): storage_nodes reads stored files only; "
        "copy the data into a file first",
        path=path,
    )


def read_head(path: Path, size: int = 1024) -> bytes:
    """The first bytes of ``path``, with clear errors for missing or unreadable files."""
    check_readable_file(path)
    try:
        # O_NONBLOCK: a FIFO swapped in after the check must not block the open
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        try:  # one read of the descriptor: a buffered file object costs more than the read (cold loads)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _not_regular(path)
            return os.read(fd, size)
        finally:
            os.close(fd)
    except PermissionError:
        raise StorageError(f"permission denied reading {path}", path=path) from None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}", path=path) from None


def detect(path: str | os.PathLike[str]) -> str:
    """Name the backend that wrote ``path``, from the file's own bytes."""
    p = Path(path)
    head = read_head(p)
    if not head:
        raise CorruptFileError(f"{p} is empty: it holds no stored object", path=p)
    for n in names():
        if get(n).sniff(head):
            return n
    raise BackendNotFoundError(
        f"cannot tell which backend wrote {p}: its first bytes match none of {names()}, so it was "
        "not written by storage_nodes (or its start is damaged); files of other tools, e.g. a plain "
        "pickle, are not read by storage_nodes",
        path=p,
    )
