"""The HDF5 side of the archive: which datasets a file holds and how they are read.

::

    /index            uint8[]  zlib-compressed UTF-8 JSON: node tree, classes, metadata, environment
    /heap_<n>         uint8[]  packed blobs, small arrays, opaque pickles (16-byte aligned)
    /array_<n>        big arrays, one dataset each (attr "key": the entry's key)

Every h5py/HDF5 failure on open or read becomes :class:`CorruptFileError` naming the file.
"""

from __future__ import annotations

import contextlib
import json
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ...errors import CorruptFileError, StorageError
from .encoder import ArrayOut
from .tree import walk

__all__ = ["FORMAT", "FORMAT_VERSION", "Reader", "live_resources", "open_reader", "write_file", "write_index"]

FORMAT = "storage_nodes-h5"
FORMAT_VERSION = 1
INDEX = "index"
#: HDF5 file-format bounds (readable by HDF5 >= 1.10) and a small metadata block: small files
FILE_OPTIONS: dict[str, Any] = {"libver": ("v110", "v110"), "meta_block_size": 256}


def _corrupt(path: Path, exc: BaseException | str) -> CorruptFileError:
    detail = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return CorruptFileError(
        f"{path} is not a readable h5 archive of storage_nodes ({detail}); it is damaged or was cut "
        "short (storage_nodes itself never leaves a half-written file): restore it from a copy",
        path=path,
    )


def dump_index(index: dict[str, Any]) -> np.ndarray:
    text = json.dumps(index, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return np.frombuffer(zlib.compress(text, 1), dtype=np.uint8)


def write_index(f: h5py.File, index: dict[str, Any]) -> None:
    """(Re)write the index dataset of an open file."""
    if INDEX in f:
        del f[INDEX]
    f.create_dataset(INDEX, data=dump_index(index))


def write_data(
    f: h5py.File, heap_name: str, heap: np.ndarray | None, arrays: Iterable[ArrayOut], compression: Any
) -> None:
    """Write one heap segment and the big arrays of an encoding into an open file."""
    if heap is not None:
        f.create_dataset(heap_name, data=heap)
    for a in arrays:
        ds = (
            f.create_dataset(a.name, data=a.data, compression=compression)
            if compression
            else f.create_dataset(a.name, data=a.data)
        )
        ds.attrs["key"] = a.key


def write_file(
    path: Path, index: dict[str, Any], heap_name: str, heap: np.ndarray | None, arrays: list[ArrayOut], compression: Any
) -> None:
    """Create the archive ``path`` (a new file)."""
    with h5py.File(path, "w", **FILE_OPTIONS) as f:
        write_data(f, heap_name, heap, arrays, compression)
        f.create_dataset(INDEX, data=dump_index(index))


def read_index(f: h5py.File, path: Path) -> dict[str, Any]:
    try:
        raw = f[INDEX][()]
        index = json.loads(zlib.decompress(raw.tobytes()).decode("utf-8"))
        if not isinstance(index, dict) or index.get("format") != FORMAT or not isinstance(index.get("root"), dict):
            raise ValueError("no storage_nodes index")
    except (KeyError, OSError, ValueError, TypeError, AttributeError, UnicodeDecodeError, zlib.error) as exc:
        raise _corrupt(path, exc) from None
    version = index.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise StorageError(
            f"{path} uses h5 archive format {version}; this storage_nodes reads up to {FORMAT_VERSION}: upgrade it",
            path=path,
        )
    return index


class Reader:
    """Read access to an open archive: the index, heap slices and big arrays."""

    def __init__(self, f: h5py.File, path: Path, index: dict[str, Any]) -> None:
        self.f = f
        self.path = path
        self.index = index
        self._heaps: dict[str, np.ndarray] = {}
        self._spans: dict[str, tuple[int, np.ndarray]] = {}
        self._ids: dict[int, dict[str, Any]] | None = None

    def prefetch(self, slices: list[list[Any]], *, whole: bool = False) -> None:
        """Read what ``slices`` need in one read per heap segment (the whole segment if ``whole``)."""
        by_name: dict[str, list[list[Any]]] = {}
        for s in slices:
            by_name.setdefault(s[0], []).append(s)
        for name, group in by_name.items():
            if name in self._heaps:
                continue
            ds = self._dataset(name)
            start = min(s[1] for s in group)
            end = max(s[1] + s[2] for s in group)
            needed = sum(s[2] for s in group)
            try:
                if whole or (start == 0 and end >= ds.shape[0]):
                    self._heaps[name] = ds[()]
                elif end - start <= 2 * needed + 65536:
                    self._spans[name] = (start, ds[start:end])
            except (OSError, ValueError, TypeError) as exc:
                raise _corrupt(self.path, exc) from None

    def prefetch_all(self) -> None:
        """Read every heap segment whole (for a full load)."""
        for name in self.f:
            if name.startswith("heap_") and name not in self._heaps:
                try:
                    self._heaps[name] = self._dataset(name)[()]
                except (OSError, ValueError, TypeError) as exc:
                    raise _corrupt(self.path, exc) from None

    def heap(self, s: list[Any]) -> np.ndarray:
        try:
            name, offset, nbytes = s
            offset, nbytes = int(offset), int(nbytes)
        except (TypeError, ValueError) as exc:
            raise _corrupt(self.path, exc) from None
        whole = self._heaps.get(name)
        if whole is not None:
            out = whole[offset : offset + nbytes]
        else:
            span = self._spans.get(name)
            if span is not None and span[0] <= offset and offset + nbytes <= span[0] + span[1].shape[0]:
                out = span[1][offset - span[0] : offset - span[0] + nbytes]
            else:
                try:
                    out = self._dataset(name)[offset : offset + nbytes]
                except (OSError, ValueError, TypeError) as exc:
                    raise _corrupt(self.path, exc) from None
        if out.shape[0] != nbytes or offset < 0:
            raise _corrupt(self.path, f"heap slice {name}[{offset}:+{nbytes}] lies outside the heap")
        return out

    def _dataset(self, name: str) -> h5py.Dataset:
        try:
            ds = self.f[name]
        except (KeyError, OSError, ValueError, TypeError) as exc:
            raise _corrupt(self.path, f"missing dataset {name!r}: {exc}") from None
        if not isinstance(ds, h5py.Dataset):
            raise _corrupt(self.path, f"{name!r} is not a dataset")
        return ds

    def dataset(self, name: str) -> np.ndarray:
        try:
            return np.asarray(self._dataset(name)[()])
        except (OSError, ValueError, TypeError) as exc:
            raise _corrupt(self.path, exc) from None

    def definition(self, target: int) -> dict[str, Any] | None:
        if self._ids is None:
            self._ids = {n["id"]: n for n in walk(self.index["root"]) if "id" in n}
        return self._ids.get(target)


@contextlib.contextmanager
def open_reader(path: Path) -> Iterator[Reader]:
    """Open ``path`` for reading; h5py errors become :class:`CorruptFileError`."""
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise _corrupt(path, exc) from None
    try:
        yield Reader(f, path, read_index(f, path))
    finally:
        f.close()


def heap_slices(node: dict[str, Any]) -> list[list[Any]]:
    """Every heap slice the subtree of ``node`` refers to."""
    return [n["h"] for n in walk(node) if "h" in n]


def live_resources(root: dict[str, Any]) -> tuple[set[str], set[str], int]:
    """(heap segments used, array datasets used, live bytes) of a node tree."""
    heaps: set[str] = set()
    arrays: set[str] = set()
    live = 0
    for n in walk(root):
        if "h" in n:
            heaps.add(n["h"][0])
            live += int(n["h"][2])
        if "ds" in n:
            arrays.add(n["ds"])
            live += int(n.get("n", 0))
    return heaps, arrays, live


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
        _, arrays, _ = live_resources(index["root"])
        with h5py.File(dst, "w", **FILE_OPTIONS) as out:
            if heap is not None:
                out.create_dataset("heap_0", data=heap)
            for name in sorted(arrays):
                r.f.copy(r.f[name], out, name)
            out.create_dataset(INDEX, data=dump_index(index))
