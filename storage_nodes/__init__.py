"""storage_nodes: persistence as part of a pyiron_workflow graph.

>>> import storage_nodes as sn
>>> sn.save({"energy": -3.2}, "result.json", metadata={"sample": "Cu-3"})  # doctest: +SKIP
>>> sn.load("result.json")  # doctest: +SKIP
>>> print(sn.inspect("result.json"))  # doctest: +SKIP

The package is a small core (``api``, ``registry``, ``listing``, ``keys``, ``errors``,
``atomic``) with subsystems in subpackages: ``backends/``, ``provenance/``, ``graph/``
(pyiron_workflow), ``collections/``. ``docs/architecture.md`` draws the layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import api
from ._version import __version__
from .api import backends, environment, inspect, load, save, verify
from .archive import compact
from .backends.safetypes import Raw, Refused, SafeType, register_safe_type
from .caching import _hook as _fleche_hook
from .collections.collection import Collection
from .errors import (
    BackendNotFoundError,
    CatalogError,
    CatalogNotFoundError,
    CatalogReadOnlyError,
    CodeNotStoredWarning,
    CorruptFileError,
    DuplicateMemberError,
    FileExistsStorageError,
    FileNotFoundStorageError,
    InvalidArgumentError,
    KeyNotFoundError,
    LockTimeoutError,
    MetadataError,
    MissingPackageError,
    NoSpaceError,
    SerializationError,
    StaleEntryError,
    StorageError,
    UnsafeLoadError,
    UnsupportedOperationError,
    VersionMismatchError,
    VersionMismatchWarning,
)
from .graph.workflows import StoredWorkflow, load_outputs, load_workflow, save_outputs, save_workflow
from .listing import Entry, Listing
from .locks import NoFileLocksWarning
from .provenance.versioning import Difference
from .registry import register
from .writable import open

# The fleche value storage type "storage_nodes" (storage_nodes.caching) is registered when fleche
# is imported, or now if it already is; this imports no fleche (see storage_nodes/caching/_hook.py).
_fleche_hook.install()

# The pyiron_workflow nodes are imported on first use: pyiron_workflow takes seconds to
# import, and the plain API and the command line do not need it.
_LAZY = {
    "InspectNode": "nodes",
    "LoadNode": "nodes",
    "SaveNode": "nodes",
    "CollectNode": "collection_nodes",
    "FindNode": "nodes",
    # the catalog imports SQLAlchemy (~0.1 s): only when first used
    "Catalog": "catalog",
    "Hit": "catalog",
}


def _open_catalog(location: str) -> api.Recorder:
    """``catalog="path-or-URL"`` in ``save``/``save_workflow``: one shared Catalog per location."""
    from .catalog import open_catalog

    return open_catalog(location)


api.set_catalog_opener(_open_catalog)

if TYPE_CHECKING:
    from .catalog import Catalog, Hit
    from .collection_nodes import CollectNode
    from .nodes import FindNode, InspectNode, LoadNode, SaveNode


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'storage_nodes' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Every public name, the lazy ones too (Jupyter's tab completion asks ``dir``)."""
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "BackendNotFoundError",
    "CatalogError",
    "CodeNotStoredWarning",
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
    "MissingPackageError",
    "NoFileLocksWarning",
    "NoSpaceError",
    "SerializationError",
    "CatalogNotFoundError",
    "CatalogReadOnlyError",
    "StaleEntryError",
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
    # safe types (values stored as data, loadable with safe=True)
    "Raw",
    "Refused",
    "SafeType",
    "register_safe_type",
    # nodes
    "InspectNode",
    "LoadNode",
    "SaveNode",
    # whole workflows
    "StoredWorkflow",
    "load_outputs",
    "load_workflow",
    "save_outputs",
    "save_workflow",
    # collections
    "Collection",
    "CollectNode",
    "DuplicateMemberError",
    # the catalog
    "Catalog",
    "FindNode",
    "Hit",
]
