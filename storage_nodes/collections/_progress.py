"""Progress bars for long operations (export, unpack, verify of large files), via ``tqdm``.

A bar is shown on a terminal only: ``show=None`` (the default everywhere) asks tqdm to
disable itself when stderr is not a TTY, and waits :data:`DELAY` seconds before drawing,
so quick operations stay silent. ``show=True`` forces a bar, ``show=False`` never draws one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import IO

__all__ = ["CHUNK", "DELAY", "bar", "copy_hashed", "sha256_file"]

CHUNK = 1 << 20
#: seconds before an automatic bar appears (quick operations never draw one)
DELAY = 0.5

Update = Callable[[int], object]


@contextlib.contextmanager
def bar(total: int, desc: str, *, show: bool | None = None) -> Iterator[Update]:
    """Yield ``update(n_bytes)`` for a byte-counting bar on stderr.

    >>> with bar(10, "copy", show=False) as update:
    ...     update(10)
    """
    if show is False:
        yield lambda n: None
        return
    from tqdm.auto import tqdm

    with tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=None if show is None else False,
        delay=DELAY if show is None else 0,
        leave=False,
    ) as progress:
        yield progress.update


def copy_hashed(src: IO[bytes], dst: IO[bytes] | None, update: Update, *, limit: int | None = None) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` (or only read it when ``dst`` is None); return (sha256 hex, size).

    Stops reading after ``limit + 1`` bytes, so a caller can refuse a stream longer than expected.
    """
    digest = hashlib.sha256()
    size = 0
    while True:
        want = CHUNK if limit is None else min(CHUNK, limit + 1 - size)
        if want <= 0:
            break
        chunk = src.read(want)
        if not chunk:
            break
        digest.update(chunk)
        size += len(chunk)
        if dst is not None:
            dst.write(chunk)
        update(len(chunk))
    return digest.hexdigest(), size


def sha256_file(path: str | os.PathLike[str], *, show: bool | None = None) -> tuple[str, int]:
    """The sha256 hex digest and size of a file, with a bar for large files on a terminal.

    >>> sha256_file("result.json")  # doctest: +SKIP
    ('9f86d0...', 1234)
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f, bar(size, f"sha256 {os.path.basename(path)}", show=show) as update:
        return copy_hashed(f, None, update)
