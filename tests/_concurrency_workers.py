"""Process-pool workers for the concurrency tests (light imports: no pyiron_workflow)."""

from __future__ import annotations

import numpy as np

import storage_nodes as sn


def many_updates(path: str, worker: int, count: int, backend: str) -> None:
    """``count`` partial writes of distinct keys ``w<worker>/<i>`` into ``path``."""
    for i in range(count):
        sn.save(np.full(3, worker * 1000 + i), path, backend, key=f"w{worker}/{i}")
