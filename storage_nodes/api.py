"""The plain API: ``save``, ``load``, ``inspect``, ``environment``, ``backends``.

Every function checks its arguments (typeguard) and raises a :class:`StorageError`
subclass naming the file and key when something is wrong. Whole-file saves are atomic:
the data goes to a temporary file that replaces the target only when complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from . import registry
from ._validation import validated
from .atomic import atomic_path
from .backends.base import Backend
from .errors import (
    BackendNotFoundError,
    CorruptFileError,
    FileExistsStorageError,
    FileNotFoundStorageError,
    InvalidArgumentError,
    SerializationError,
    StorageError,
    UnsafeLoadError,
    UnsupportedOperationError,
    no_space,
)
from .keys import split, suggest
from .listing import Listing
from .provenance.metadata import PolicyCallable, validate_metadata
from .provenance.versioning import Difference, VersionPolicy, check_environment, evaluate, mismatch

__all__ = ["Recorder", "backends", "environment", "inspect", "load", "resolve_backend", "save", "set_catalog_opener"]

PathLike = str | os.PathLike[str]


@runtime_checkable
class Recorder(Protocol):
    """What ``save(..., catalog=)`` and ``save_workflow(..., catalog=)`` call after the file is written.

    :class:`storage_nodes.Catalog` is one; the core only knows this duck type, so it never
    imports the catalog subsystem. ``record_save`` is called after a plain save,
    ``record_workflow`` after a workflow save (with the stored recipe and port values).
    """

    def record_save(
        self,
        path: PathLike,
        *,
        obj: Any = None,
        key: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        backend: str | None = None,
    ) -> None: ...

    def record_workflow(
        self,
        path: PathLike,
        *,
        label: str,
        recipe: str,
        nodes: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        backend: str | None = None,
    ) -> None: ...


_catalog_opener: Callable[[str], Recorder] | None = None


def set_catalog_opener(opener: Callable[[str], Recorder] | None) -> None:
    """Install what turns a ``catalog="path-or-URL"`` string into a :class:`Recorder`.

    ``storage_nodes/__init__.py`` installs one that imports the catalog subsystem on first
    use, so the core never imports it.
    """
    global _catalog_opener
    _catalog_opener = opener


def recorder(catalog: Recorder | str | os.PathLike[str] | None) -> Recorder | None:
    """``catalog=`` as given to a save: ``None``, a :class:`Recorder`, or a path/URL opened by the hook."""
    if catalog is None or isinstance(catalog, Recorder):
        return catalog
    if isinstance(catalog, str | os.PathLike):
        if _catalog_opener is None:
            raise InvalidArgumentError(f"catalog={os.fspath(catalog)!r}: no catalog opener installed; pass a Catalog")
        return _catalog_opener(os.fspath(catalog))
    raise InvalidArgumentError(
        f"catalog= takes a Catalog, a path or a database URL (or None), got {type(catalog).__name__}"
    )


def record_failed(exc: BaseException, path: Path, catalog: Any) -> StorageError:
    """The error of a save whose file was written but could not be recorded."""
    from .errors import CatalogError, CatalogReadOnlyError

    detail = str(exc) if isinstance(exc, StorageError) else f"{type(exc).__name__}"
    read_only = isinstance(exc, CatalogReadOnlyError)
    what, when = (
        (f"{catalog!r} may only be read by you", "with a catalog you may write to, e.g.")
        if read_only
        else (f"recording it in {catalog!r} failed", "later with")
    )
    return (CatalogReadOnlyError if read_only else CatalogError)(
        f"{path} was saved, but {what} ({detail}); the file is intact: "
        f"record it {when} `storage-nodes catalog index {path.parent}`",
        path=path,
    )


def backends() -> list[str]:
    """Names of the registered backends, sorted.

    >>> backends()  # doctest: +SKIP
    ['cloudpickle', 'h5', 'json', 'pickle']
    """
    return registry.names()


def _backend_named(name: str, path: Path) -> Backend:
    try:
        return registry.get(name)
    except BackendNotFoundError as exc:
        hint = suggest(name, registry.names())
        if not hint and name:  # load(path, "energy") passes a key as the backend
            hint = f"; the argument after the path is the backend: to select an entry, pass key={name!r}"
        raise BackendNotFoundError(f"{exc} (file {path}){hint}", path=path) from None


def resolve_backend(path: PathLike, backend: str | None = None) -> Backend:
    """The backend for an existing file: ``backend`` if given (checked against the file's
    bytes), else detected from the content."""
    p = Path(path)
    detected = registry.detect(p) if backend is None else None
    chosen = _backend_named(backend or detected or "", p)
    if backend is not None:
        head = registry.read_head(p)
        if not chosen.sniff(head):
            try:
                actual = registry.detect(p)
            except StorageError:
                actual = None
            hint = f"; it was written by the {actual!r} backend" if actual else ""
            raise CorruptFileError(f"{p} is not a file of the {backend!r} backend{hint}", path=p)
    return chosen


def written_by(path: Path, backend: str | None) -> str:
    """The name of the backend that just wrote ``path``: the one asked for (a save that used
    another would have failed), else detected from the file."""
    return _backend_named(backend, path).name if backend is not None else resolve_backend(path).name


@contextlib.contextmanager
def _read_errors(p: Path, key: str | None, action: str, *, unexpected: type[StorageError]) -> Iterator[None]:
    """Turn whatever a backend lets escape while reading ``p`` into a StorageError naming it.

    ``unexpected`` is the class for other exceptions: a plain StorageError where user code
    may have run (a class's ``__setstate__``), CorruptFileError where none can.
    """
    try:
        yield
    except UnsupportedOperationError as exc:
        raise _naming_capable(exc) from exc.__cause__
    except StorageError:
        raise
    except OSError as exc:
        raise StorageError(f"cannot read {p}: {exc}", path=p, key=key) from exc
    except RecursionError:
        raise StorageError(f"{p} holds data nested too deeply to {action}", path=p, key=key) from None
    except MemoryError:
        raise StorageError(f"not enough memory to {action} {p}", path=p, key=key) from None
    except Exception as exc:
        raise unexpected(f"cannot {action} {p}: {type(exc).__name__}: {exc}", path=p, key=key) from exc


def _naming_capable(exc: UnsupportedOperationError) -> UnsupportedOperationError:
    """``exc`` with the registered backends that have its missing capability named."""
    if exc.capability is None:
        return exc
    found = registry.names_with(exc.capability)
    names = ", ".join(repr(n) for n in found) if found else "(none installed)"
    return UnsupportedOperationError(f"{exc.message}: {names}", path=exc.path, key=exc.key)


def _exists(p: Path) -> bool:
    """Whether the save target exists; a directory or an inaccessible path is an error."""
    try:
        st = os.stat(p)
    except FileNotFoundError:  # the common case of a new file, without building an error
        return False
    except OSError:
        st = None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        return True
    try:
        registry.check_readable_file(p)
    except FileNotFoundStorageError:
        return False
    except CorruptFileError:  # a directory
        raise StorageError(f"cannot save to {p}: it is a directory; give a file name", path=p) from None
    return True


@validated
def save(
    obj: Any,
    path: PathLike,
    backend: str | None = None,
    *,
    key: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = True,
    catalog: Recorder | str | os.PathLike[str] | None = None,
    **options: Any,
) -> Path:
    """Save ``obj`` to ``path`` and return the path written.

    ``backend=None`` picks by suffix (``.pkl``/``.pickle`` pickle, ``.cpkl`` cloudpickle,
    ``.json`` json, ``.h5``/``.hdf5`` h5) and falls back to ``h5``. With ``key=`` the object
    replaces or adds one entry of an existing file (backends with
    ``supports_partial_write``). ``metadata`` (JSON-able dict) is stored beside the data.
    ``overwrite=False`` refuses to replace an existing file (or entry). The write is atomic:
    a save that dies halfway (exception, SIGKILL) leaves the previous file intact;
    ``durable=True`` also fsyncs, so the file survives a power loss. Other keyword
    ``options`` go to the backend (e.g. ``compression="gzip"`` for h5, ``indent`` for json);
    one the backend does not take raises :class:`InvalidArgumentError`. ``catalog`` (a
    :class:`~storage_nodes.Catalog`, a path or a database URL) records the save there once
    the file is written; if recording fails the file stays and a ``CatalogError`` says so.

    >>> save({"energy": -3.2}, "result.json", metadata={"sample": "Cu-3"})  # doctest: +SKIP
    PosixPath('result.json')
    """
    rec = recorder(catalog)
    written = _save(obj, path, backend, key=key, metadata=metadata, overwrite=overwrite, options=options)
    if rec is not None:
        try:
            rec.record_save(written, obj=obj, key=key, metadata=metadata, backend=written_by(written, backend))
        except Exception as exc:
            raise record_failed(exc, written, rec) from None
    return written


def _save(
    obj: Any,
    path: PathLike,
    backend: str | None,
    *,
    key: str | None,
    metadata: Mapping[str, Any] | None,
    overwrite: bool,
    options: dict[str, Any],
) -> Path:
    p = Path(path).expanduser()
    user_metadata = validate_metadata(metadata, path=p)
    try:
        try:
            _write(obj, p, backend, key, user_metadata, overwrite, options)
        except SerializationError as exc:
            if not _changed_while_read(exc):
                raise
            # another thread changed a container while it was read (it has no snapshot of
            # its own): once more, then the error stands (docs/reliability.md)
            _write(obj, p, backend, key, user_metadata, overwrite, options)
    except RecursionError:  # e.g. a key of thousands of levels into a missing file
        raise SerializationError(f"cannot save to {p}: the object or key is nested too deeply", path=p) from None
    except Exception as exc:
        full = no_space(exc, p, key)
        if full is None:
            raise
        raise full from exc
    return p


def _changed_while_read(exc: BaseException) -> bool:
    """Whether a save failed because a container changed size while it was being read."""
    cause = exc.__cause__
    return isinstance(cause, RuntimeError) and "changed size during iteration" in str(cause)


def _write(
    obj: Any,
    p: Path,
    backend: str | None,
    key: str | None,
    user_metadata: dict[str, Any],
    overwrite: bool,
    options: dict[str, Any],
) -> None:
    segments = split(key)
    exists = _exists(p)
    if segments:
        # an existing file keeps its backend (detected, or the given one checked against it)
        chosen = resolve_backend(p, backend) if exists else _backend_named(backend or registry.for_suffix(p), p)
        _check_options(chosen, options, p)
        if not exists and not p.parent.is_dir():  # the writer lock would create the directory
            raise StorageError(
                f"cannot write {p}: directory {p.parent} does not exist; create it first", path=p, key=key
            )
        try:
            chosen.update(obj, p, key=key or "", metadata=user_metadata, options={**options, "overwrite": overwrite})
        except UnsupportedOperationError as exc:
            raise _naming_capable(exc) from exc.__cause__
        return
    chosen = _backend_named(backend or registry.for_suffix(p), p)
    _check_options(chosen, options, p)
    if exists and not overwrite:
        raise FileExistsStorageError(f"{p} exists and overwrite=False; pass overwrite=True to replace it", path=p)
    durable = bool(options.pop("durable", False))
    with atomic_path(p, durable=durable) as tmp:
        try:
            chosen.write(obj, tmp, metadata=user_metadata, options=options)
        except StorageError as exc:
            raise _retarget(exc, tmp, p) from exc.__cause__
        except RecursionError:
            raise SerializationError(f"cannot save to {p}: the object is nested too deeply", path=p) from None
        except Exception as exc:
            raise SerializationError(
                f"the {chosen.name!r} backend cannot save this {type(obj).__name__} to {p}: "
                f"{type(exc).__name__}: {exc}",
                path=p,
            ) from exc


def _check_options(chosen: Backend, options: Mapping[str, Any], p: Path) -> None:
    """Refuse keyword options the backend does not take (a typo would else be ignored)."""
    known = chosen.save_options
    if known is None:
        return
    unknown = sorted(set(options) - {"durable"} - known)
    if unknown:
        takes = ", ".join(sorted({"durable", *known}))
        raise InvalidArgumentError(
            f"save(): the {chosen.name!r} backend takes no option {', '.join(map(repr, unknown))} "
            f"(saving {p}); its options: {takes}",
            path=p,
        )


def _retarget(exc: StorageError, tmp: Path, target: Path) -> StorageError:
    """Name the target file, not the temporary file a backend wrote to, in an error."""
    exc.message = exc.message.replace(str(tmp), str(target))
    if str(target) not in exc.message:
        exc.message = f"cannot save to {target}: {exc.message}"
    exc.args = (exc.message,)
    exc.path = str(target)
    return exc


@validated
def load(
    path: PathLike,
    backend: str | None = None,
    *,
    key: str | None = None,
    version_policy: VersionPolicy | Callable[[dict[str, Any], dict[str, Any]], Any] = "warn",
    safe: bool = False,
    raw: bool = False,
    refused: Literal["error", "placeholder"] = "error",
) -> Any:
    """Load the object stored in ``path`` (or only its entry ``key``).

    The backend is detected from the file's bytes unless given. ``version_policy`` says
    how the stored environment record is checked (``"ignore"``, ``"warn"``,
    ``"compatible"``, ``"strict"`` or a callable). ``safe=True`` never imports a module or
    calls anything the file names: pickle and cloudpickle files are refused, h5 entries
    that need code raise :class:`UnsafeLoadError` (values of safe types, e.g. DataFrames,
    are rebuilt by their fixed constructors). ``raw=True`` returns safe-type values as their
    stored data (:class:`storage_nodes.Raw`: arrays and plain data, no pandas/ase/scipy
    needed). ``refused="placeholder"`` puts a :class:`storage_nodes.Refused` (naming the
    class and key) where an entry is refused or needs a package that is not installed.

    >>> load("result.json", key="energy")  # doctest: +SKIP
    -3.2
    >>> load("results.h5", safe=True, refused="placeholder")  # doctest: +SKIP
    {'energy': -3.2, 'calc': <refused mylib.Calc at 'calc': safe=True: it holds an instance of mylib.Calc>}
    """
    p = Path(path).expanduser()
    try:
        chosen = resolve_backend(p, backend)
    except StorageError as exc:
        exc.key = key
        raise
    split(key)  # validate the key syntax before reading
    if safe and not chosen.supports_safe_load:
        raise UnsafeLoadError(
            f"refusing to load {p} with safe=True: the {chosen.name!r} backend can run code while "
            "loading; load with safe=False only if you trust the file",
            path=p,
            key=key,
        )

    if refused not in ("error", "placeholder"):
        raise InvalidArgumentError(f"refused must be 'error' or 'placeholder', got {refused!r}", path=p, key=key)
    options: dict[str, Any] = {}
    if raw:
        options["raw"] = True
    if refused != "error":
        options["refused"] = refused
    unknown = sorted(set(options) - chosen.read_options)
    if unknown:
        raise InvalidArgumentError(
            f"the {chosen.name!r} backend does not take {', '.join(unknown)}= when loading {p}", path=p, key=key
        )

    def check(env: dict[str, Any] | None, modules: Any) -> None:
        check_environment(env, version_policy, path=p, key=key, modules=modules, allow_import=not safe)

    with _read_errors(p, key, "load", unexpected=StorageError):
        return chosen.read(p, key=key, safe=safe, check=check, **options)


@validated
def inspect(path: PathLike, *, key: str | None = None, depth: int | None = None, full: bool = False) -> Listing:
    """Describe what ``path`` holds — entries, types, shapes, sizes, metadata, environment —
    without rebuilding objects or importing stored modules.

    ``depth`` limits how many levels below ``key`` are listed (0: the entry alone, with
    its children counted in ``truncated``); ``None`` lists everything the backend can.
    Printing the listing summarises long runs of same-shaped entries (one line
    ``0..4999: dict(id, name, e, tags) x 5000``) unless ``full``; the listing itself
    (``listing[key]``, ``keys()``, ``to_dict()``) is always complete, its entries built
    when first reached.

    >>> print(inspect("results.h5"))  # doctest: +SKIP
    results.h5 [h5, format 2]
    metadata: {"sample": "Cu-3"}
    saved 2026-11-25T16:08:33Z with storage_nodes 0.1.0, Python 3.11.7
    /: dict, len=2
    ├── energy: float, 24 B
    └── forces: ndarray (numpy), shape=(4, 3), dtype=float64, 96 B
    >>> inspect("results.h5", key="forces").root.shape  # doctest: +SKIP
    (4, 3)
    """
    p = Path(path).expanduser()
    if depth is not None and depth < 0:
        raise InvalidArgumentError(f"depth must be None or >= 0, got {depth}")
    chosen = resolve_backend(p)
    with _read_errors(p, key, "list", unexpected=CorruptFileError):
        listing = chosen.list(p, key=key, depth=depth)
    return dataclasses.replace(listing, full=True) if full else listing


@validated
def environment(path: PathLike) -> dict[str, Any]:
    """The environment record stored in ``path`` (versions, git state, source hashes).

    It describes the environment that *saved* the file; compare it with the current one
    with :func:`verify`.

    >>> environment("results.h5")["python"]["version"]  # doctest: +SKIP
    '3.11.7'
    """
    return inspect(path).environment


def check_record(path: PathLike, policy: str | PolicyCallable = "strict") -> tuple[list[Difference], list[Difference]]:
    """(every difference between the record stored in ``path`` and now, those ``policy`` refuses).

    Reads only the record (never the data), imports nothing. :func:`verify` raises on the
    refused ones; ``storage-nodes verify FILE`` prints both and exits 1 when any is refused.

    >>> diffs, refused = check_record("result.pkl", "compatible")  # doctest: +SKIP
    """
    return evaluate(environment(path), policy, path)


def verify(path: PathLike, *, policy: str | PolicyCallable = "warn") -> list[Difference]:
    """Compare the environment ``path`` was saved in with the current one, without loading it.

    Returns every difference. Raises :class:`VersionMismatchError` when ``policy``
    refuses them (``"strict"``: any, ``"compatible"``: breaking ones, a callable: by
    raising or returning ``False``); ``"warn"`` and ``"ignore"`` only return them (the
    list is the report: no warning is emitted).

    >>> import storage_nodes as sn
    >>> for d in sn.verify("result.pkl"):  # doctest: +SKIP
    ...     print(d)
    mypkg.core: stored mypkg==1.2.0, now mypkg==1.3.0
    """
    diffs, refuse = check_record(path, policy)
    if refuse:
        raise mismatch(path, policy, refuse)
    return diffs
