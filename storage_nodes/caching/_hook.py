"""Register the ``"storage_nodes"`` fleche storage type without importing fleche.

``import storage_nodes`` calls :func:`install`. If fleche's storage registry is already
imported, the storage type is registered at once; otherwise a :data:`sys.meta_path` finder
waits for ``fleche.storage`` to be imported (by ``import fleche``, pyiron_workflow, or
unpickling a cache in a worker) and registers right after that module has run, before any
``fleche.toml`` can be read. fleche itself has no plugin hook for storage types (its
``fleche``/``digest`` entry points are read only when a value cannot be digested), hence
this import hook (:func:`~storage_nodes.caching._import_watch.when_imported`). Importing
this module takes well under a millisecond.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import ModuleType

from ._import_watch import when_imported

_TARGET = "fleche.storage"
_lock = threading.Lock()
_registered = False
logger = logging.getLogger(__name__)


def _register() -> None:
    """Import our storage module (which imports fleche) and register it; idempotent."""
    global _registered
    with _lock:
        if _registered:
            return
        _registered = True
    module = sys.modules.get(f"{__package__}.storage")
    if module is not None and not hasattr(module, "register"):
        # storage.py is being imported right now (its `import fleche` brought us here):
        # it registers itself when it has finished
        return
    try:
        from . import storage

        storage.register()
    except Exception:  # a broken fleche must not break `import fleche` for its users
        logger.warning("storage_nodes could not register its fleche storage type", exc_info=True)


def _on_fleche_storage(module: ModuleType) -> None:
    if hasattr(module, "register_storage"):
        _register()


def install() -> None:
    """Register now if ``fleche.storage`` is imported, else wait for its import."""
    if not _registered:
        when_imported(_TARGET, _on_fleche_storage)
