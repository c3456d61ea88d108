"""The ``h5`` archive backend (placeholder until the archive lands)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UnsupportedOperationError
from ..listing import Listing
from .base import Backend, CheckCallback

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class H5Backend(Backend):
    name = "h5"
    suffixes = (".h5", ".hdf5")

    def sniff(self, head: bytes) -> bool:
        return head[:8] == HDF5_MAGIC

    def _unavailable(self, path: Path) -> UnsupportedOperationError:
        return UnsupportedOperationError(
            f"the 'h5' archive backend is not available yet (file {path}); use 'pickle', "
            "'cloudpickle' or 'json' for now",
            path=path,
        )

    def write(self, obj: Any, path: Path, *, metadata: dict[str, Any], options: dict[str, Any]) -> None:
        raise self._unavailable(path)

    def read(self, path: Path, *, key: str | None, safe: bool, check: CheckCallback) -> Any:
        raise self._unavailable(path)

    def list(self, path: Path, *, key: str | None = None) -> Listing:
        raise self._unavailable(path)
