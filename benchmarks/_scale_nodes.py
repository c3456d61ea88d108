"""Node functions of the scale benchmark (a module of its own: recipes name them by module path)."""

from __future__ import annotations

import flowrep
import numpy as np


@flowrep.atomic("x")
def start(n: int = 1000):
    return np.linspace(0.0, 1.0, n)


@flowrep.atomic("x")
def step(x, i: int = 0):
    return 0.99 * x + i
