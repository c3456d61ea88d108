"""Reading a big contiguous dataset with ``pread`` into a new array, around HDF5's read.

A dataset stored contiguously, unfiltered, in the file's own bytes, whose type is exactly
the standard HDF5 type of a numpy integer or float dtype, holds in the file precisely the
bytes of the numpy array: HDF5's ``H5Dread`` of it is a copy from the file plus its own
selection and conversion machinery (~1 ms of an 8 MB column here, a third of a one-column
load). :func:`read_contiguous` reads those bytes with ``os.preadv`` into ``numpy.empty``;
anything else (chunked, filtered, external, not yet written, enum, bool, compound, a
non-standard type, a small dataset, another driver than ``sec2``) returns ``None`` and HDF5
reads it. Offsets and sizes come from HDF5; bytes missing at the end of a truncated file are
a ``ValueError`` (the caller's ``CorruptFileError``), never zeros.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from h5py import h5d, h5f, h5fd, h5t

__all__ = ["MIN_BYTES", "read_contiguous", "vfd_of"]

#: smaller datasets are read by HDF5: the checks cost more than they save
MIN_BYTES = 1 << 18

_STANDARD: dict[np.dtype[Any], Any] = {}


def vfd_of(fid: h5f.FileID) -> int | None:
    """The descriptor HDF5 reads ``fid`` through, if it uses the POSIX ``sec2`` driver; else ``None``."""
    if not hasattr(os, "preadv"):
        return None
    try:
        if fid.get_access_plist().get_driver() != h5fd.SEC2:
            return None
        fd = fid.get_vfd_handle()
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


def _standard_type(dtype: np.dtype[Any]) -> Any:
    found = _STANDARD.get(dtype)
    if found is None:
        found = _STANDARD[dtype] = h5t.py_create(dtype)
    return found


def read_contiguous(ds: h5d.DatasetID, fd: int | None) -> np.ndarray | None:
    """The content of ``ds`` read with ``pread`` from ``fd`` (see the module), or ``None``."""
    if fd is None:
        return None
    try:
        stored = ds.get_storage_size()
        if stored < MIN_BYTES:
            return None
        dtype = ds.dtype
        if dtype.kind not in "iuf" or dtype.fields is not None or dtype.subdtype is not None:
            return None
        offset = ds.get_offset()  # None unless contiguous (so unfiltered), in this file, and written
        if offset is None or not ds.get_type().equal(_standard_type(dtype)):
            return None
        shape = ds.shape
    except (OSError, ValueError, TypeError, KeyError):
        return None
    count = 1
    for n in shape:
        count *= int(n)
    nbytes = count * dtype.itemsize
    if nbytes != stored:
        return None
    try:
        size = os.fstat(fd).st_size
    except OSError as exc:
        raise ValueError(f"cannot read the file's size: {exc.strerror}") from None
    if offset + nbytes > size:  # refused before allocating what a damaged header declares
        raise ValueError(f"the file ends inside a dataset of {nbytes} bytes at offset {offset} ({size} bytes long)")
    out = np.empty(shape, dtype=dtype)
    view = out.data.cast("B")  # C-contiguous: every byte in order
    done = 0
    while done < nbytes:
        try:
            got = os.preadv(fd, [view[done:]], offset + done)
        except OSError as exc:
            raise ValueError(f"cannot read {nbytes} bytes at offset {offset}: {exc.strerror}") from None
        if got <= 0:
            raise ValueError(f"the file ends inside a dataset of {nbytes} bytes at offset {offset}")
        done += got
    return out
