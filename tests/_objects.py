"""Importable test classes (pickle needs module-level classes)."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class Point:
    x: float
    y: float
    label: str = ""


class Crystal:
    def __init__(self, name: str, cell: np.ndarray) -> None:
        self.name = name
        self.cell = cell

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Crystal) and self.name == other.name and np.array_equal(self.cell, other.cell)
