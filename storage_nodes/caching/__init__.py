"""caching: the fleche integration — our h5 archive as a fleche value storage.

Open :mod:`storage_nodes.caching.storage` first: :class:`ValueArchive`, the value storage
registered with fleche under the type name ``"storage_nodes"`` (one h5 archive per cached
value, written through :func:`storage_nodes.save`, browsable with :func:`storage_nodes.inspect`).
:mod:`~storage_nodes.caching.digests` holds the opt-in exact float digests,
:mod:`~storage_nodes.caching.scientific_digests` the canonical digests of arrays, pandas,
scipy sparse and ase.Atoms (installed with the storage type), :mod:`~storage_nodes.caching.uncached`
the warning for calls fleche runs uncached, and
:mod:`~storage_nodes.caching._hook` the lazy registration that ``import storage_nodes``
installs (it registers the storage type when fleche is imported, never importing fleche itself).

This package's ``__init__`` imports nothing from fleche: the names below load on first use.

>>> from fleche.caches import Cache  # doctest: +SKIP
>>> cache = Cache.from_config({"values": {"type": "storage_nodes", "root": "cache/values"},
...                            "calls": {"type": "sql", "url": "sqlite:///cache/calls.db"}})  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_LAZY = {
    "ArchiveBackend": "storage",
    "ValueArchive": "storage",
    "register": "storage",
    "TYPE_NAME": "storage",
    "exact_float_digest": "digests",
    "enable_exact_float_digests": "digests",
    "exact_float_digests_enabled": "digests",
    "scientific_digest": "scientific_digests",
    "array_digest": "scientific_digests",
    "scientific_digests_enabled": "scientific_digests",
    "UncachedCallWarning": "uncached",
}

if TYPE_CHECKING:
    from .digests import enable_exact_float_digests, exact_float_digest, exact_float_digests_enabled
    from .scientific_digests import array_digest, scientific_digest, scientific_digests_enabled
    from .storage import TYPE_NAME, ArchiveBackend, ValueArchive, register
    from .uncached import UncachedCallWarning


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'storage_nodes.caching' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "TYPE_NAME",
    "ArchiveBackend",
    "UncachedCallWarning",
    "ValueArchive",
    "array_digest",
    "enable_exact_float_digests",
    "exact_float_digest",
    "exact_float_digests_enabled",
    "register",
    "scientific_digest",
    "scientific_digests_enabled",
]
