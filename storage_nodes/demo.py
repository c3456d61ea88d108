"""The ``storage-nodes demo``: a small workflow whose results are saved, reloaded and inspected.

The node functions live at module level so pyiron_workflow can rebuild them from a recipe.
Nothing runs at import time (running a workflow while its module is imported deadlocks).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import flowrep
import numpy as np


@flowrep.atomic("positions")
def random_positions(n: int = 64, seed: int = 0) -> np.ndarray:
    """``n`` random atom positions in a unit box."""
    return np.random.default_rng(seed).random((n, 3))


@flowrep.atomic("energy", "forces")
def harmonic_energy(positions: np.ndarray, k: float = 1.0) -> tuple[float, np.ndarray]:
    """Energy and forces of atoms tied to the box centre by springs of stiffness ``k``."""
    d = positions - 0.5
    return float(0.5 * k * (d**2).sum()), -k * d


def run_demo(directory: Path) -> int:
    """Run the demo in ``directory`` and print what was stored; returns an exit code."""
    import pyiron_workflow as pwf

    import storage_nodes as sn

    wf = pwf.Workflow("harmonic")
    wf.positions = pwf.node(random_positions, n=64, seed=1)
    wf.energy = pwf.node(harmonic_energy, positions=wf.positions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a workflow without exposed ports warns
        run = wf.run()
    data = run.result.nodes["energy"]
    results = {
        "energy": data.output_ports["energy"].value,
        "forces": data.output_ports["forces"].value,
        "positions": run.result.nodes["positions"].output_ports["positions"].value,
    }
    print(f"ran workflow {wf.label!r}: energy = {results['energy']:.4f}")
    for suffix in ("json", "pkl"):
        path = sn.save(results, directory / f"harmonic.{suffix}", metadata={"demo": True, "k": 1.0})
        back = sn.load(path)
        same = np.allclose(back["forces"], results["forces"]) and back["energy"] == results["energy"]
        print(f"saved and reloaded {path.name}: identical = {same}")
        if not same:
            return 1
    print(sn.inspect(directory / "harmonic.json"))
    return 0
