"""When two entries of a listing "look the same": their :func:`signature`, and the
:func:`runs` of same-shaped siblings that printed and HTML listings summarise in one line.

Works on any entry-shaped object (``type``, ``module``, ``shape``, ``dtype``, ``opaque``,
``truncated``, ``children``, ``info``), so that :mod:`storage_nodes.listing` and
:mod:`storage_nodes._listing_html` both build on it without importing each other.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .listing import Entry

__all__ = ["RUN_THRESHOLD", "runs", "signature"]

#: a run of this many same-shaped siblings or more is summarised (text, HTML, ``to_dict(full=False)``)
RUN_THRESHOLD = 8


def signature(entry: Entry, memo: dict[int, Hashable] | None = None) -> Hashable:
    """What must agree for two siblings to count as "the same shape": type, module, shape,
    dtype, opaque and truncated, and the same of every child by name; not name, size, length
    (of a str: a size; of a container: its children say it) or ``info``.

    ``memo`` (by ``id``) saves recomputing it for the entries of one tree.
    """
    if memo is None:
        memo = {}
    found = memo.get(id(entry))
    if found is None:
        found = memo[id(entry)] = _signature(entry, memo)
    return found


def _signature(entry: Entry, memo: dict[int, Hashable]) -> Hashable:
    if "run" in entry.info:  # a run of a summary stands alone
        return ("run", id(entry))
    if getattr(entry, "_pending", False):  # a LazyEntry not built yet may know it cheaply
        fast = entry._fast_signature()  # type: ignore[attr-defined]
        if fast is not None:
            return fast
    kids = entry.children
    return (
        entry.type,
        entry.module,
        entry.shape,
        entry.dtype,
        entry.opaque,
        entry.truncated,
        tuple([c.name for c in kids]),
        tuple([signature(c, memo) for c in kids]),
    )


def runs(items: Sequence[Entry], memo: dict[int, Hashable] | None = None) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each stretch of consecutive same-shaped entries of ``items``, in order.

    >>> from storage_nodes.listing import Entry
    >>> items = [Entry(path=str(i), name=str(i), type="int" if i < 3 else "str") for i in range(5)]
    >>> list(runs(items))
    [(0, 3), (3, 5)]
    """
    memo = {} if memo is None else memo
    i, n = 0, len(items)
    while i < n:
        sig = signature(items[i], memo)
        j = i + 1
        while j < n and signature(items[j], memo) == sig:
            j += 1
        yield i, j
        i = j
