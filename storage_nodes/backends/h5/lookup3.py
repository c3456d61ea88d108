"""Bob Jenkins' lookup3 hash (``hashlittle``): the checksum HDF5 puts on its metadata.

HDF5 (``H5_checksum_lookup3`` in ``H5checksum.c``) ends each superblock of version 2 or 3,
each version-2 object header and other metadata blocks with this 32-bit hash of the bytes
before it (initial value 0). :mod:`.image` computes it for the files it builds and
:mod:`.journal` checks the superblock with it. ``tests/backends/h5/test_h5_lookup3.py``
pins it to Jenkins' reference values and to checksums written by h5py.
"""

from __future__ import annotations

import struct

__all__ = ["lookup3"]

_M = 0xFFFFFFFF


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle`` of ``data``, as HDF5's ``H5_checksum_lookup3``."""
    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & _M
    if n == 0:
        return c
    tail = n % 12 or 12  # the last (zero-padded) block goes through the final mix only
    words = struct.unpack(f"<{(n - tail) // 4 + 3}I", data + bytes(12 - tail if tail < 12 else 0))
    last = len(words) - 3
    i = 0
    # the mix with masking deferred where it is exact: a value needs its low 32 bits only
    # where it is rotated or shifted; a and b leave each round unmasked, c masked
    while i < last:
        a += words[i]
        b += words[i + 1]
        c = (c + words[i + 2]) & _M
        a = ((a - c) ^ (c << 4) ^ (c >> 28)) & _M
        c += b
        b = ((b - a) ^ (a << 6) ^ (a >> 26)) & _M
        a += c
        c = ((c - b) ^ (b << 8) ^ (b >> 24)) & _M
        b += a
        a = ((a - c) ^ (c << 16) ^ (c >> 16)) & _M
        c += b
        b = ((b - a) ^ (a << 19) ^ (a >> 13)) & _M
        a += c
        c = ((c - b) ^ (b << 4) ^ (b >> 28)) & _M
        b += a
        i += 3
    a = (a + words[last]) & _M
    b = (b + words[last + 1]) & _M
    c = (c + words[last + 2]) & _M
    c ^= b
    c = (c - ((b << 14) | (b >> 18))) & _M
    a ^= c
    a = (a - ((c << 11) | (c >> 21))) & _M
    b ^= a
    b = (b - ((a << 25) | (a >> 7))) & _M
    c ^= b
    c = (c - ((b << 16) | (b >> 16))) & _M
    a ^= c
    a = (a - ((c << 4) | (c >> 28))) & _M
    b ^= a
    b = (b - ((a << 14) | (a >> 18))) & _M
    c ^= b
    c = (c - ((b << 24) | (b >> 8))) & _M
    return c
