"""Node functions of bench_update.py's filtered workflow (module level: recipes name them)."""

from __future__ import annotations

import flowrep
import numpy as np


@flowrep.atomic("trajectory")
def simulate(n: int) -> np.ndarray:
    """A big intermediate result: ``n`` float64 values."""
    return np.full(n, 0.5)


@flowrep.atomic("mean")
def reduce(trajectory: np.ndarray) -> float:
    return float(trajectory.mean())
