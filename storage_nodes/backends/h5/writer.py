"""Writing a new archive file whole: the index, one heap segment and the big arrays.

A small file without big arrays is assembled in memory and written with one write (by
:func:`.image.build_image` in pure Python where it models the file, else by HDF5's core
driver); any other file is created through HDF5 (:mod:`.datasets`). Updates of an existing
file are :mod:`.update`'s.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
from h5py import h5f

from ...atomic import ensure_space, open_new
from .datasets import create_file, data_bytes, plist, put_index, write_data
from .encoder import ArrayOut
from .image import build_image
from .indexcodec import dump_index

__all__ = ["BUILD_IMAGES", "IN_MEMORY_BYTES", "write_file"]

#: a new file without big arrays whose heap and index take at most this many bytes is built in
#: memory (HDF5's core driver, the same bytes) and written with one write, instead of HDF5's
#: dozen small writes and a truncation of the file (~0.05 ms of a small save)
IN_MEMORY_BYTES = 1 << 22

_memory_files = itertools.count()

#: build those files' bytes in pure Python (:mod:`.image`, the same bytes as HDF5's, ~0.7 ms
#: less per small save); ``False`` makes HDF5 write them (tests compare the two)
BUILD_IMAGES = True


def write_file(
    path: Path, index: dict[str, Any], heap_name: str, heap: np.ndarray | None, arrays: list[ArrayOut], compression: Any
) -> None:
    """Create the archive ``path`` (a new file).

    A small file without big arrays is built in memory -- by :func:`.image.build_image` when
    it models the file (unless :data:`BUILD_IMAGES` is off), else by HDF5's core driver -- and
    written with one write. The index is packed first (a too large one is refused before the
    file is touched) and the free space checked once for data and index."""
    dumped = dump_index(index)
    size = data_bytes(heap, arrays) + dumped[0].nbytes
    ensure_space(path, size)
    if not arrays and size <= IN_MEMORY_BYTES:
        built = build_image(heap_name, heap, dumped[0], dumped[1]) if BUILD_IMAGES else None
        if built is not None:
            with open_new(path) as f:
                f.write(built)
            return
        fid = h5f.create(b"storage_nodes-%d" % next(_memory_files), h5f.ACC_TRUNC, fapl=plist("memory"))
        try:
            write_data(fid, heap_name, heap, arrays, compression, check_space=False)
            put_index(fid, index, dumped=dumped, check_space=False)
            h5f.flush(fid)
            built = fid.get_file_image()
        finally:
            fid.close()
        with open_new(path) as f:
            f.write(built)
        return
    fid = create_file(path)
    try:
        write_data(fid, heap_name, heap, arrays, compression, check_space=False)
        put_index(fid, index, dumped=dumped, check_space=False)
    finally:
        fid.close()
