"""The backend protocol: a small abstract core plus capability flags.

A backend turns one Python object into one file and back. It implements three
primitives — :meth:`Backend.sniff`, :meth:`Backend.write`, :meth:`Backend.read` — and
:meth:`Backend.list` for ``inspect``. Capabilities are declared as class flags, so callers
ask ``backend.supports_partial_write`` instead of checking types; a default method for an
optional capability raises :class:`UnsupportedOperationError` carrying the flag, and the
public API names the registered backends that have it.

Whole-file writes are made atomic by the caller (:func:`storage_nodes.save` hands
``write`` a temporary path and replaces the target afterwards). ``update`` (a partial
write into an existing file) must be crash-safe on its own.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from ..errors import UnsupportedOperationError
from ..listing import Listing

__all__ = ["Backend", "CheckCallback"]

# Called by ``read`` with (stored environment record, modules the entry needs or None)
# before any object is rebuilt; it raises or warns according to the version policy.
CheckCallback = Callable[[dict[str, Any] | None, Iterable[str] | None], None]


class Backend(abc.ABC):
    """One storage format. Subclass, set the flags, implement the primitives, register."""

    #: registry name, e.g. ``"pickle"``
    name: ClassVar[str]
    #: file suffixes that select this backend on save (lower case, with dot); the built-in
    #: backends' are in :mod:`storage_nodes.registry`'s table, so that choosing by suffix imports nothing
    suffixes: ClassVar[tuple[str, ...]] = ()
    #: version of the on-disk format this backend writes
    format_version: ClassVar[int] = 1
    #: ``inspect`` can list entries inside the stored object without rebuilding it
    supports_browse: ClassVar[bool] = False
    #: ``load(key=...)`` reads only that entry (others always read everything, then select)
    supports_partial_read: ClassVar[bool] = False
    #: ``save(key=...)`` replaces or adds one entry of an existing file
    supports_partial_write: ClassVar[bool] = False
    #: ``load(safe=True)`` is possible (the format can be read without importing or calling)
    supports_safe_load: ClassVar[bool] = True
    #: loading may import modules and call code named by the file (when not ``safe``)
    can_run_code: ClassVar[bool] = False
    #: keyword options of ``save(..., **options)`` that ``write``/``update`` understand
    #: (``durable`` is always accepted); ``None``: not declared, passed on unchecked
    save_options: ClassVar[frozenset[str] | None] = None
    #: keyword options of ``load`` beyond ``key``/``safe`` that ``read`` takes (``raw``:
    #: safe-type values as their stored data; ``refused``: ``"placeholder"`` puts a
    #: placeholder where a value is refused); others are refused by ``load``
    read_options: ClassVar[frozenset[str]] = frozenset()

    @abc.abstractmethod
    def sniff(self, head: bytes) -> bool:
        """Whether a file starting with ``head`` (up to 1024 bytes) is in this format."""

    @abc.abstractmethod
    def write(self, obj: Any, path: Path, *, metadata: dict[str, Any], options: dict[str, Any]) -> None:
        """Write ``obj`` with its metadata and environment record to the new file ``path``."""

    @abc.abstractmethod
    def read(self, path: Path, *, key: str | None, safe: bool, check: CheckCallback) -> Any:
        """Read the object (or the entry ``key``) from ``path``.

        Must call ``check(environment_record, modules)`` before rebuilding any object.
        """

    @abc.abstractmethod
    def list(self, path: Path, *, key: str | None = None, depth: int | None = None) -> Listing:
        """Describe what ``path`` holds (below ``key``) without rebuilding objects.

        ``depth`` limits the levels of children listed (0: the entry alone, its children
        counted in ``truncated``); ``None`` lists as deep as the backend goes. Every backend
        takes it (:func:`storage_nodes.listing.prune` cuts a full listing to a depth).
        """

    def update(self, obj: Any, path: Path, *, key: str, metadata: dict[str, Any], options: dict[str, Any]) -> None:
        """Replace or add the entry ``key`` of the existing file ``path``."""
        raise UnsupportedOperationError(
            f"the {self.name!r} backend cannot update one entry of {path}; save the whole "
            "object again, or use a backend that can",
            path=path,
            key=key,
            capability="supports_partial_write",
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
