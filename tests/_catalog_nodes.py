"""Module-level node functions and process workers for the catalog tests."""

from __future__ import annotations

import flowrep
import numpy as np


@flowrep.atomic("structure")
def make_structure(n: int = 4, a: float = 1.0) -> np.ndarray:
    """n atoms on a line with spacing a."""
    return np.arange(n, dtype=float)[:, None] * a * np.ones((1, 3))


@flowrep.atomic("energy", "forces")
def relax(structure: np.ndarray, T: float = 300.0, steps: int = 3) -> tuple[float, np.ndarray]:
    """A fake relaxation whose outputs depend on every input."""
    forces = -structure * T / 1000.0
    return float((structure**2).sum() * T + steps), forces


@flowrep.atomic("report")
def report(energy: float, forces: np.ndarray) -> dict:
    """Bundle two upstream outputs."""
    return {"energy": energy, "fmax": float(np.abs(forces).max())}


def build(T: float = 300.0, n: int = 4, label: str = "relax_wf"):
    """make_structure -> relax -> report, run; returns the workflow."""
    import pyiron_workflow as pwf

    wf = pwf.Workflow(label)
    wf.make = pwf.node(make_structure, n=n)
    wf.relax = pwf.node(relax, structure=wf.make, T=T)
    wf.report = pwf.node(report, energy=wf.relax.outputs.energy, forces=wf.relax.outputs.forces)
    wf.run()
    return wf


def save_many(urls: list[str], directory: str, worker: int, count: int, barrier) -> int:
    """Worker process: ``count`` workflow saves into every catalog of ``urls``, started together."""
    import warnings

    warnings.simplefilter("ignore")
    from pathlib import Path

    import storage_nodes as sn

    catalogs = [sn.Catalog(u) for u in urls]
    wf = build(T=float(worker))  # import and run before the barrier: the saves race, not the imports
    barrier.wait(timeout=300)
    for i in range(count):
        for j, cat in enumerate(catalogs):
            sn.save_workflow(wf, Path(directory) / f"w{worker}-{i}-c{j}.h5", catalog=cat)
            if (worker + i) % 2:  # queries flush the queue: several processes flush while others save
                cat.find(node="_catalog_nodes.relax", limit=1)
    return worker
