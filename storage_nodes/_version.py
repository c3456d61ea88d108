"""The installed version of storage_nodes, for the modules that record it in files.

A module of its own so that the subsystems can name the version without importing the
package's ``__init__`` (which imports them all).
"""

from __future__ import annotations

import importlib.metadata

try:
    __version__ = importlib.metadata.version("storage-nodes")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source checkout
    __version__ = "0.0.0+unknown"
