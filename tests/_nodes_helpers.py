"""Module-level node functions for the node and workflow tests (recipes need importable functions)."""

import flowrep
import numpy as np

from storage_nodes.nodes import LoadNode, SaveNode


@flowrep.atomic("grid")
def make_grid(n: int = 5, scale: float = 1.0) -> np.ndarray:
    """A small float array that depends on both inputs."""
    return np.linspace(0.0, scale, n)


@flowrep.atomic("total", "squares")
def summarize(grid: np.ndarray, power: int = 2) -> tuple[float, np.ndarray]:
    """Two outputs: a float and an array."""
    squares = grid**power
    return float(squares.sum()), squares


@flowrep.atomic("n")
def count(data) -> int:
    """Length of whatever it gets (an unhinted input, as LoadNode's output is unhinted)."""
    return len(data)


@flowrep.workflow("back")
def save_and_reload(n: int, path: str):
    """A macro: compute, save through SaveNode, load back through LoadNode."""
    grid = make_grid(n)
    written = SaveNode(grid, path, "pickle")
    back = LoadNode(written)
    return back
