"""Module-level fleche-cached node functions for the caching tests (workers import them by name)."""

from pathlib import Path

import fleche
import flowrep
import numpy as np


def count_call(counter: str) -> None:
    """Append one line to the counter file: the test counts executions of a node body by it."""
    with open(counter, "a") as f:
        f.write("1\n")


def executions(counter: str | Path) -> int:
    """How often a counted body ran."""
    p = Path(counter)
    return len(p.read_text().splitlines()) if p.exists() else 0


@flowrep.atomic("positions")
@fleche.fleche
def make_positions(n: int, counter: str) -> np.ndarray:
    """n x 3 positions (deterministic), counted."""
    count_call(counter)
    return np.arange(3.0 * n).reshape(n, 3)


@flowrep.atomic("summary")
@fleche.fleche
def summarize(positions: np.ndarray, scale: float, counter: str) -> dict:
    """A nested result: an array, a float and a string, counted."""
    count_call(counter)
    scaled = positions * scale
    return {"scaled": scaled, "total": float(scaled.sum()), "label": f"x{scale}"}
