"""Register the ``"storage_nodes"`` fleche storage type without importing fleche.

``import storage_nodes`` calls :func:`install`. If fleche's storage registry is already
imported, the storage type is registered at once; otherwise a :data:`sys.meta_path` finder
waits for ``fleche.storage`` to be imported (by ``import fleche``, pyiron_workflow, or
unpickling a cache in a worker) and registers right after that module has run, before any
``fleche.toml`` can be read. fleche itself has no plugin hook for storage types (its
``fleche``/``digest`` entry points are read only when a value cannot be digested), hence
this import hook. The classes are duck-typed (no importlib.abc, which costs ~2 ms to import):
importing this module takes well under a millisecond.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

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


class _RegisteringLoader:
    """Runs the real loader of ``fleche.storage``, then registers our storage type."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        # hand the module back to its real loader (reload, get_source, ... see no trace of us)
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        _uninstall()
        _register()

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ... of the real loader
        return getattr(self._loader, name)


class _FlecheFinder:
    """A finder that only answers for ``fleche.storage``, wrapping the real spec's loader."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != _TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RegisteringLoader(spec.loader)  # type: ignore[assignment]
                return spec
        return None


_finder = _FlecheFinder()


def _uninstall() -> None:
    try:
        sys.meta_path.remove(_finder)
    except ValueError:
        pass


def install() -> None:
    """Register now if ``fleche.storage`` is imported, else wait for its import."""
    module = sys.modules.get(_TARGET)
    if module is not None and hasattr(module, "register_storage"):
        _register()
    elif _finder not in sys.meta_path and not _registered:
        sys.meta_path.insert(0, _finder)
