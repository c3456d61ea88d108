"""The exception family of storage_nodes.

Every error the package raises on purpose is a :class:`StorageError`. Each also
inherits the built-in exception a Python user would expect (``KeyError``,
``TypeError``, ``FileNotFoundError`` ...), so ``except KeyError`` keeps working.
Errors carry the file (``path``) and the entry (``key``) they are about.
"""

from __future__ import annotations

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
    "SerializationError",
    "StorageError",
    "UnsafeLoadError",
    "UnsupportedOperationError",
    "VersionMismatchError",
    "VersionMismatchWarning",
    "DuplicateMemberError",
    "CatalogError",
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
    """The chosen backend cannot do what was asked (the message names one that can)."""


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


class DuplicateMemberError(StorageError, ValueError):
    """A collection already has a member of this name (``key`` names it)."""


class CatalogError(StorageError):
    """The catalog database cannot be opened, read or written (the message names it, password hidden)."""


class StaleEntryError(CatalogError):
    """A catalog entry's file was moved, deleted or rewritten since it was recorded.

    ``storage-nodes catalog index DIR`` records the file again; ``catalog prune`` drops the entry.
    """
