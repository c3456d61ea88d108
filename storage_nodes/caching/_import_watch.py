"""Run a callback right after a module is imported, without importing it: :func:`when_imported`.

A :data:`sys.meta_path` finder answers only for the watched module names and wraps the real
loader, which runs the callbacks once the module has executed (and hands the module back
to its real loader). Used to register our fleche storage type when fleche is imported
(:mod:`~storage_nodes.caching._hook`) and to give the digest hook the types of ase, scipy
and pandas when those are imported (:mod:`~storage_nodes.caching.scientific_digests`). The
classes are duck-typed (no importlib.abc, which costs ~2 ms to import): importing this
module takes well under a millisecond.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

_lock = threading.Lock()
logger = logging.getLogger(__name__)


class _RegisteringLoader:
    """Runs the real loader of a watched module, then the callbacks waiting for it."""

    def __init__(self, loader: Any, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        # hand the module back to its real loader (reload, get_source, ... see no trace of us)
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        _run_callbacks(self._name, module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ... of the real loader
        return getattr(self._loader, name)


class _WatchingFinder:
    """A finder that only answers for the watched module names, wrapping the real spec's loader."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in _pending:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RegisteringLoader(spec.loader, fullname)  # type: ignore[assignment]
                return spec
        return None


_finder = _WatchingFinder()
#: module name -> callbacks to run once right after that module has been executed
_pending: dict[str, list[Callable[[ModuleType], None]]] = {}


def _run_callbacks(name: str, module: ModuleType) -> None:
    with _lock:
        callbacks = _pending.pop(name, [])
        if not _pending:
            _uninstall()
    for callback in callbacks:
        try:
            callback(module)
        except Exception:  # a failing callback must not break the import for its users
            logger.warning("storage_nodes: a callback on the import of %s failed", name, exc_info=True)


def _uninstall() -> None:
    try:
        sys.meta_path.remove(_finder)
    except ValueError:
        pass


def when_imported(name: str, callback: Callable[[ModuleType], None]) -> None:
    """Run ``callback(module)`` once module ``name`` is imported: now if it is, else right after its import.

    Imports nothing itself. Used for fleche (register the storage type) and for the
    scientific packages whose types get digest hooks (ase, scipy.sparse, pandas).
    """
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    initializing = module is not None and getattr(spec, "_initializing", False)
    if module is not None and not initializing:
        callback(module)
        return
    with _lock:
        _pending.setdefault(name, []).append(callback)
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)
