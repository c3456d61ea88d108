"""storage_nodes: persistence as part of a pyiron_workflow graph.

>>> import storage_nodes as sn
>>> sn.save({"energy": -3.2}, "result.json", metadata={"sample": "Cu-3"})  # doctest: +SKIP
>>> sn.load("result.json")  # doctest: +SKIP
>>> print(sn.inspect("result.json"))  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.metadata

try:
    __version__ = importlib.metadata.version("storage-nodes")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source checkout
    __version__ = "0.0.0+unknown"

from .api import backends, environment, inspect, load, save
from .archive import compact, open
from .errors import (
    BackendNotFoundError,
    CorruptFileError,
    FileExistsStorageError,
    FileNotFoundStorageError,
    InvalidArgumentError,
    KeyNotFoundError,
    LockTimeoutError,
    MetadataError,
    SerializationError,
    StorageError,
    UnsafeLoadError,
    UnsupportedOperationError,
    VersionMismatchError,
    VersionMismatchWarning,
)
from .listing import Entry, Listing
from .registry import register
from .versioning import Difference, verify

__all__ = [
    "BackendNotFoundError",
    "CorruptFileError",
    "Difference",
    "Entry",
    "FileExistsStorageError",
    "FileNotFoundStorageError",
    "InvalidArgumentError",
    "KeyNotFoundError",
    "Listing",
    "LockTimeoutError",
    "MetadataError",
    "SerializationError",
    "StorageError",
    "UnsafeLoadError",
    "UnsupportedOperationError",
    "VersionMismatchError",
    "VersionMismatchWarning",
    "__version__",
    "backends",
    "compact",
    "environment",
    "inspect",
    "load",
    "open",
    "register",
    "save",
    "verify",
]

# collections (issue #6)
from .collection import Collection
from .errors import DuplicateMemberError

__all__ += ["Collection", "DuplicateMemberError"]
