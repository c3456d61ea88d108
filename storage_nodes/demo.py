"""The ``storage-nodes demo``: storage as part of a pyiron_workflow graph, end to end.

1. Workflow ``relax`` builds random atom positions, relaxes them in a harmonic trap,
   computes energy and forces, and saves its results through three ``SaveNode``s (two
   of them into different keys of one h5 archive).
2. The whole workflow (recipe + every port value) is stored with ``save_workflow``.
3. Workflow ``analysis`` reads the relaxed positions back through a ``LoadNode``,
   analyses them, and describes the results file with an ``InspectNode``.
4. The stored workflow is rebuilt from its recipe and re-run: its outputs match.

The node functions live at module level so pyiron_workflow can rebuild them from a recipe.
Nothing runs at import time (running a workflow while its module is imported deadlocks).

This module's path is part of the stored format: a stored recipe records each node as
``storage_nodes.demo.<function>``, and ``Workflow.from_recipe`` imports it from there. It stays at
this path on purpose (a public module, not an implementation detail); moving a node
function out of it would break every workflow saved with it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import flowrep
import numpy as np

WORKFLOW_BACKEND = "h5"


@flowrep.atomic("positions")
def random_positions(n: int = 64, seed: int = 0) -> np.ndarray:
    """``n`` random atom positions in a unit box."""
    return np.random.default_rng(seed).random((n, 3))


@flowrep.atomic("energy", "forces")
def harmonic_energy(positions: np.ndarray, k: float = 1.0) -> tuple[float, np.ndarray]:
    """Energy and forces of atoms tied to the box centre by springs of stiffness ``k``."""
    d = positions - 0.5
    return float(0.5 * k * (d**2).sum()), -k * d


@flowrep.atomic("positions", "energies")
def relax(
    positions: np.ndarray, k: float = 1.0, steps: int = 40, step_size: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Steepest descent in the harmonic trap; returns the final positions and the energy per step."""
    x = positions.copy()
    energies = [0.5 * k * ((x - 0.5) ** 2).sum()]
    for _ in range(steps):
        x = x - step_size * k * (x - 0.5)
        energies.append(0.5 * k * ((x - 0.5) ** 2).sum())
    return x, np.array(energies)


@flowrep.atomic("results")
def collect(positions: np.ndarray, energy: float, forces: np.ndarray, energies: np.ndarray) -> dict:
    """Bundle the results into one dict (the entries become keys of the saved file)."""
    return {
        "positions": positions,
        "energy": energy,
        "forces": forces,
        "max_force": float(np.abs(forces).max()),
        "steps": len(energies) - 1,
    }


@flowrep.atomic("stats")
def distance_stats(positions: np.ndarray) -> dict:
    """Distances of the atoms from the box centre: mean, max and a 5-bin histogram."""
    r = np.linalg.norm(positions - 0.5, axis=1)
    counts, _ = np.histogram(r, bins=5)
    return {"mean": float(r.mean()), "max": float(r.max()), "histogram": counts}


def build_relax_workflow(directory: Path) -> Any:
    """Workflow ``relax``: positions -> relax -> energy -> collect, saved by three SaveNodes.

    Two SaveNodes write different keys of one h5 archive (they run on parallel threads; the
    archive's writer lock keeps both), a third writes a human-readable JSON summary.
    """
    import pyiron_workflow as pwf

    from .nodes import SaveNode

    archive = str(directory / "results.h5")
    wf = pwf.Workflow("relax")
    wf.start = pwf.node(random_positions, n=64, seed=1)
    wf.relax = pwf.node(relax, positions=wf.start, k=1.0, steps=40)
    wf.energy = pwf.node(harmonic_energy, positions=wf.relax.outputs.positions, k=1.0)
    wf.collect = pwf.node(
        collect,
        positions=wf.relax.outputs.positions,
        energy=wf.energy.outputs.energy,
        forces=wf.energy.outputs.forces,
        energies=wf.relax.outputs.energies,
    )
    # the backend is a plain string in a script; in pyironflow it is a dropdown of the registered backends
    metadata = {"system": "harmonic trap", "n_atoms": 64, "k": 1.0}
    wf.save_final = pwf.node(SaveNode, obj=wf.collect, path=archive, backend="h5", key="final", metadata=metadata)
    wf.save_trajectory = pwf.node(SaveNode, obj=wf.relax.outputs.energies, path=archive, key="trajectory")
    wf.save_summary = pwf.node(SaveNode, obj=wf.collect, path=str(directory / "summary.data"), backend="pickle")
    wf.save_summary.inputs.backend = "json"  # re-setting a port replaces its value
    return wf


def build_analysis_workflow(archive: Path) -> Any:
    """Workflow ``analysis``: LoadNode (one key of the archive) -> distance_stats, and an InspectNode."""
    import pyiron_workflow as pwf

    from .nodes import InspectNode, LoadNode

    wf = pwf.Workflow("analysis")
    wf.load = pwf.node(LoadNode, path=str(archive), key="final/positions", safe=True)
    wf.stats = pwf.node(distance_stats, positions=wf.load)
    wf.info = pwf.node(InspectNode, path=str(archive))
    return wf


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    return bool(a == b)


def run_demo(directory: Path) -> int:
    """Run the demo in ``directory`` and print what was stored; returns an exit code."""
    from . import api
    from .graph import workflows
    from .listing import Listing

    directory = Path(directory)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # workflows without exposed ports warn
        wf = build_relax_workflow(directory)
        run = wf.run()
        energies = run.result.nodes["relax"].output_ports["energies"].value
        print(
            f"1. ran workflow {wf.label!r}: energy {energies[0]:.4f} -> {energies[-1]:.6f} in {len(energies) - 1} steps"
        )
        for label in ("save_final", "save_trajectory", "save_summary"):
            ports = run.result.nodes[label].input_ports
            written = Path(run.result.nodes[label].output_ports["path"].value)
            backend = api.resolve_backend(written).name
            where = f"{written.name}, key {ports['key'].value!r}" if ports["key"].value else written.name
            print(f"   {label} (SaveNode, {backend}) wrote {where}")

        stored_path = workflows.save_workflow(wf, directory / "relax_workflow.h5", WORKFLOW_BACKEND)
        one_port = api.load(stored_path, key="energy/outputs/energy")
        print(
            f"2. saved the whole workflow to {stored_path.name}; one port back: energy/outputs/energy = {one_port:.6f}"
        )

        archive = directory / "results.h5"
        analysis = build_analysis_workflow(archive)
        result = analysis.run().result
        stats = result.nodes["stats"].output_ports["stats"].value
        print(
            f"3. workflow {analysis.label!r} loaded {archive.name} key 'final/positions' through a LoadNode: "
            f"mean distance from the centre {stats['mean']:.6f}, histogram {stats['histogram'].tolist()}"
        )
        listing = Listing.from_dict(result.nodes["info"].output_ports["listing"].value)
        print(f"   InspectNode listing of {archive.name}:")
        print("   " + str(listing).replace("\n", "\n   "))

        stored = workflows.load_workflow(stored_path)
        # its SaveNodes name absolute files of this run: a rerun may rewrite them only when asked
        rerun = stored.rerun(overwrite=True)
        same = all(
            _same(rerun.result.nodes[n].output_ports[p].value, value)
            for n in ("start", "relax", "energy", "collect")
            for p, value in stored.nodes[n]["outputs"].items()
        )
        print(f"4. rebuilt {stored.label!r} from its stored recipe and re-ran it: identical = {same}")
    return 0 if same else 1
