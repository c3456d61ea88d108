"""What a load returns in place of a value it does not rebuild: :class:`Raw` and :class:`Refused`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Raw", "Refused"]


@dataclass(frozen=True, eq=False)
class Raw:
    """A natively stored value as plain data (``load(..., raw=True)``): the safe type's
    ``type`` name, its ``meta`` map and its decoded ``parts`` (numpy arrays, plain data and
    further :class:`Raw` values), as ``docs/format.md`` describes them per type."""

    type: str
    meta: dict[str, Any]
    parts: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.parts[name]

    def __repr__(self) -> str:
        return f"Raw({self.type!r}, parts={list(self.parts)})"


@dataclass(frozen=True)
class Refused:
    """Stands for an entry that a ``safe=True`` load with ``refused="placeholder"`` did not
    rebuild: ``key`` (where it is stored), ``type`` (``module.qualname`` of what it holds)
    and ``reason`` (why it was refused)."""

    key: str
    type: str
    reason: str

    def __repr__(self) -> str:
        return f"<refused {self.type} at {self.key or '/'!r}: {self.reason}>"
