"""The exception family of storage_nodes.

Every error the package raises on purpose is a :class:`StorageError`. Each also
inherits the built-in exception a Python user would expect (``KeyError``,
``TypeError``, ``FileNotFoundError`` ...), so ``except KeyError`` keeps working.
Errors carry the file (``path``) and the entry (``key``) they are about.
"""

from __future__ import annotations

import errno
import os
from typing import Any

__all__ = [
    "BackendNotFoundError",
    "CorruptFileError",
    "FileExistsStorageError",
    "FileNotFoundStorageError",
    "InvalidArgumentError",
    "KeyNotFoundError",
    "LockTimeoutError",
    "MetadataError",
    "NoSpaceError",
    "SerializationError",
    "StorageError",
    "UnsafeLoadError",
    "UnsupportedOperationError",
    "VersionMismatchError",
    "VersionMismatchWarning",
    "DuplicateMemberError",
    "MissingPackageError",
    "CatalogError",
    "CatalogNotFoundError",
    "CatalogReadOnlyError",
    "StaleEntryError",
]


class StorageError(Exception):
    """Base class of every error raised by storage_nodes.

    ``path`` names the file and ``key`` the entry inside it, when known.
    """

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None, key: str | None = None) -> None:
        self.path = None if path is None else os.fspath(path)
        self.key = key
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across process pools
        return (_rebuild, (type(self), self.message, self.path, self.key))


def _rebuild(cls: type[StorageError], message: str, path: str | None, key: str | None) -> StorageError:
    err = cls.__new__(cls)
    StorageError.__init__(err, message, path=path, key=key)
    return err


class InvalidArgumentError(StorageError, TypeError):
    """An argument of a public function has the wrong type or value."""


class BackendNotFoundError(StorageError, ValueError):
    """No backend has this name, or the format of a file cannot be detected."""


class UnsupportedOperationError(StorageError, NotImplementedError):
    """The chosen backend cannot do what was asked.

    ``capability`` names the backend flag that would allow it (e.g. ``"supports_browse"``);
    the public functions of :mod:`storage_nodes.api` end the message with the registered
    backends that have it.
    """

    capability: str | None = None

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        key: str | None = None,
        capability: str | None = None,
    ) -> None:
        super().__init__(message, path=path, key=key)
        self.capability = capability


class FileNotFoundStorageError(StorageError, FileNotFoundError):
    """The file to read does not exist."""


class FileExistsStorageError(StorageError, FileExistsError):
    """The target exists and ``overwrite=False`` was given."""


class CorruptFileError(StorageError, ValueError):
    """The file is not a readable file of the expected format (damaged, truncated, foreign)."""


class KeyNotFoundError(StorageError, KeyError):
    """The key does not name an entry of the stored object."""


class SerializationError(StorageError, TypeError):
    """An object cannot be represented by the chosen backend (the message names where it sits)."""


class MetadataError(StorageError, TypeError):
    """User metadata is not plain JSON-able data."""


class UnsafeLoadError(StorageError):
    """A ``safe=True`` load met something that would import a module or run code."""


class MissingPackageError(StorageError, ImportError):
    """A stored value needs a package that is not installed (``package`` names it); its data
    stay readable as plain arrays with ``load(..., raw=True)``."""

    package: str | None = None


class LockTimeoutError(StorageError, TimeoutError):
    """Another writer held the file's lock for longer than the timeout."""


class VersionMismatchError(StorageError):
    """The stored environment record differs from the current one beyond the chosen policy.

    ``differences`` lists each difference as ``"module: stored X, now Y"``.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        key: str | None = None,
        differences: list[str] | None = None,
    ) -> None:
        super().__init__(message, path=path, key=key)
        self.differences = list(differences or [])


class VersionMismatchWarning(UserWarning):
    """The stored environment record differs from the current one (policy ``"warn"``)."""


class CodeNotStoredWarning(UserWarning):
    """``save_workflow`` could not store the code of a node function defined in the session
    (``__main__``, a notebook cell): the data stay loadable, rebuilding needs that code."""


class DuplicateMemberError(StorageError, ValueError):
    """A collection already has a member of this name (``key`` names it)."""


class NoSpaceError(StorageError, OSError):
    """The disk (or the quota) was full while writing; the file is as it was before the save.

    Also an ``OSError`` with ``errno`` ``ENOSPC`` (or ``EDQUOT``); it is neither a
    :class:`CorruptFileError` nor a :class:`SerializationError`: the data and the file are fine.
    """

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None, key: str | None = None) -> None:
        super().__init__(message, path=path, key=key)
        self.errno = errno.ENOSPC
        self.strerror = os.strerror(errno.ENOSPC)
        self.filename = self.path
        self.detail = ""  # e.g. " (2000000 bytes needed, 250000 free)"


#: errno values that mean "no space": a full device, an exceeded quota
_NO_SPACE = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
#: how HDF5 (through h5py, which passes no errno) reports them
_NO_SPACE_TEXT = ("No space left on device", "Disk quota exceeded", f"errno = {errno.ENOSPC},")


def _is_no_space(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
        return True
    text = str(exc)
    return isinstance(exc, OSError | StorageError | RuntimeError) and any(t in text for t in _NO_SPACE_TEXT)


def no_space(exc: BaseException, path: str | os.PathLike[str], key: str | None = None) -> NoSpaceError | None:
    """A :class:`NoSpaceError` for ``path`` if ``exc`` (or an exception it was raised from
    or while handling) says the device or quota is full, else ``None``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, NoSpaceError) or _is_no_space(current):
            detail = getattr(current, "detail", "") or " (or disk quota exceeded)"
            where = f" at {key!r}" if key else ""
            err = NoSpaceError(
                f"cannot save to {os.fspath(path)}{where}: no space left on device{detail}; "
                f"{os.fspath(path)} is as it was before this save: free some space and save again",
                path=path,
                key=key,
            )
            err.detail = detail
            return err
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


class CatalogError(StorageError):
    """The catalog database cannot be opened, read or written (the message names it, password hidden)."""


class CatalogReadOnlyError(CatalogError):
    """The catalog database refuses writes to this user: a read-only file (``mode=ro``), or a
    PostgreSQL role or server that may only read. Queries work; recording needs a writer."""


class CatalogNotFoundError(CatalogError):
    """A catalog opened for reading does not exist: no such SQLite file (the message names close
    names in its directory), or a database without the catalog's tables. A catalog is created by
    its first recording, or by ``Catalog(path, create=True)``."""


class StaleEntryError(CatalogError):
    """A catalog entry's file was moved, deleted or rewritten since it was recorded.

    ``storage-nodes catalog index DIR`` records the file again; ``catalog prune`` drops the entry.
    """
