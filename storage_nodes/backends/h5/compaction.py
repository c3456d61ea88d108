"""Compaction: rewriting an archive with only its live data, and the counting that tells what is live.

An update replaces an entry without rewriting the file; the datasets only the replaced entry
used are deleted, but HDF5 does not give back their space, nor that of an old index. When a
file has grown beyond twice its live data plus :data:`SLACK_BYTES` (:func:`outgrown`), the
update compacts it on the way (:func:`compact_into`: the heap repacked into one segment, the
big arrays copied); :func:`compact` does so on demand. :class:`Resources` counts which heap
segments and arrays a node tree refers to, and its live bytes: the one count of both.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ...atomic import atomic_path, ensure_space, writer_lock
from . import journal, locking
from .datasets import FILE_OPTIONS, create_bytes, put_index
from .indexcodec import FORMAT_VERSION
from .reader import open_reader
from .tree import walk

__all__ = ["SLACK_BYTES", "Resources", "compact", "compact_into", "compact_over", "outgrown", "resources"]

#: slack an archive may have beyond twice its live data before an update compacts it
SLACK_BYTES = 1 << 20


def outgrown(path: Path, live: int) -> bool:
    """Whether the archive ``path``, holding ``live`` bytes of live data, is worth compacting."""
    return os.path.getsize(path) > 2 * live + SLACK_BYTES


@dataclass
class Resources:
    """How many nodes refer to each heap segment and array dataset, and the live bytes."""

    heaps: Counter[str] = field(default_factory=Counter)
    arrays: Counter[str] = field(default_factory=Counter)
    live: int = 0

    def add(self, node: dict[str, Any], sign: int = 1) -> None:
        """Count the subtree of ``node`` in (``sign=1``) or out (``sign=-1``)."""
        for n in walk(node):
            if "h" in n:
                self.heaps[n["h"][0]] += sign
                self.live += sign * int(n["h"][2])
            if "ds" in n:
                self.arrays[n["ds"]] += sign
                self.live += sign * int(n.get("n", 0))

    def release(self, old: Any) -> list[str]:
        """The heap segments and arrays the replaced subtree ``old`` (a node, or anything else
        for none) referred to that nothing counted refers to any more, sorted; these counts
        forget them."""
        dropped = resources(old) if isinstance(old, dict) else Resources()
        gone = [n for n in dropped.heaps if self.heaps[n] <= 0] + [n for n in dropped.arrays if self.arrays[n] <= 0]
        for name in sorted(gone):
            self.heaps.pop(name, None)
            self.arrays.pop(name, None)
        return sorted(gone)


def resources(root: dict[str, Any]) -> Resources:
    """The :class:`Resources` of a whole node tree."""
    r = Resources()
    r.add(root)
    return r


def compact_into(src: Path, dst: Path) -> None:
    """Write the live content of archive ``src`` into the new file ``dst`` (heap repacked)."""
    with open_reader(src) as r:
        index = r.index
        nodes = [n for n in walk(index["root"]) if "h" in n]
        r.prefetch([n["h"] for n in nodes], whole=True)
        offsets: dict[tuple[str, int], int] = {}
        chunks: list[np.ndarray] = []
        size = 0
        for n in nodes:
            key = (n["h"][0], int(n["h"][1]))
            if key not in offsets:
                data = r.heap(n["h"])
                offsets[key] = size
                chunks.append(data)
                size += data.shape[0] + (-data.shape[0] % 16)
        heap = np.zeros(size, dtype=np.uint8) if chunks else None
        if heap is not None:
            for off, data in zip(offsets.values(), chunks):
                heap[off : off + data.shape[0]] = data
        for n in nodes:
            n["h"] = ["heap_0", offsets[(n["h"][0], int(n["h"][1]))], n["h"][2]]
        index["next_heap"] = 1
        index["format_version"] = FORMAT_VERSION
        counts = resources(index["root"])
        ensure_space(dst, counts.live)
        def create(locks: bool) -> h5py.File:
            return h5py.File(dst, "w", locking=None if locks else False, **FILE_OPTIONS)

        with locking.locked_open(dst, create) as out:
            if heap is not None:
                create_bytes(out.id, "heap_0", heap)
            for name in sorted(counts.arrays):
                r.f.copy(r.f[name], out, name)
            put_index(out.id, index)


def compact_over(tmp: Path) -> None:
    """Compact the temporary file ``tmp`` of an update by copying (replaced by its compacted copy)."""
    with atomic_path(tmp, durable=False) as tmp2:
        compact_into(tmp, tmp2)


def compact(path: Path) -> None:
    """Rewrite the archive ``path`` keeping only live data."""
    with writer_lock(path):
        journal.tidy(path)
        with atomic_path(path) as tmp:
            compact_into(path, tmp)
