"""Importable classes for the h5 archive tests."""

from __future__ import annotations

import dataclasses
import enum

import numpy as np
import pydantic


@dataclasses.dataclass
class Atom:
    symbol: str
    position: np.ndarray
    tags: list[str] = dataclasses.field(default_factory=list)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Atom)
            and self.symbol == other.symbol
            and np.array_equal(self.position, other.position)
            and self.tags == other.tags
        )


class Model(pydantic.BaseModel):
    name: str
    values: list[float]
    nested: dict[str, int] = {}


class Color(enum.Enum):
    RED = 1
    GREEN = "green"


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a: object, b: object) -> None:
        self.a = a
        self.b = b

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Slotted) and (self.a, self.b) == (other.a, other.b)


class WithState:
    def __init__(self, x: int) -> None:
        self.x = x
        self.cache = "derived"

    def __getstate__(self) -> dict[str, int]:
        return {"x": self.x}

    def __setstate__(self, state: dict[str, int]) -> None:
        self.x = state["x"]
        self.cache = "rebuilt"


class Reduced:
    def __init__(self, a: int, b: str) -> None:
        self.a, self.b = a, b

    def __reduce_ex__(self, protocol: object) -> tuple[object, ...]:
        return (Reduced, (self.a, self.b))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reduced) and (self.a, self.b) == (other.a, other.b)


def _make_evil(cmd: str) -> str:
    return cmd


class Evil:
    """Reduces to a function call: must become an opaque leaf, never a callable in the index."""

    def __reduce__(self) -> tuple[object, ...]:
        return (_make_evil, ("boom",))


class Node:
    def __init__(self, name: str) -> None:
        self.name = name
        self.children: list[Node] = []
        self.parent: Node | None = None


CALLS: list[tuple[object, ...]] = []


def record_call(*args: object) -> str:
    """A module-level function that leaves a trace when called."""
    CALLS.append(args)
    return "called"


class _Sentinel:
    """A module-level singleton that pickle stores by name (``__reduce__`` gives its name)."""

    def __reduce__(self) -> str:
        return "SENTINEL"


SENTINEL = _Sentinel()


class Bag(list):
    """A list subclass: pickle reduces it with list items (``li``)."""


class Table(dict):
    """A dict subclass: pickle reduces it with dict items (``di``)."""


class Keyworded:
    """Built with keyword arguments to ``__new__`` (``copyreg.__newobj_ex__``, ``kw``)."""

    def __new__(cls, *args: object, **kwargs: object) -> Keyworded:
        self = super().__new__(cls)
        self.args, self.kwargs = args, kwargs
        return self

    def __getnewargs_ex__(self) -> tuple[tuple[object, ...], dict[str, object]]:
        return self.args, self.kwargs
