"""Module-level node functions and a registered safe type for the safe-type tests (an ASE
equation of state as pyiron_workflow_atomistics builds it: Atoms, energies and a dataclass)."""

from __future__ import annotations

import dataclasses

import ase
import ase.build
import flowrep
import numpy as np
from ase.calculators.emt import EMT

import storage_nodes as sn


@dataclasses.dataclass
class Fit:
    """A result class that is not a safe type (refused by safe=True loads)."""

    v0: float
    structure: ase.Atoms


@flowrep.atomic("structures", "energies")
def strained(n: int = 3) -> tuple[list, np.ndarray]:
    """Cu cells strained by +-2 %, their EMT energies."""
    structures, energies = [], []
    for s in np.linspace(0.98, 1.02, n):
        atoms = ase.build.bulk("Cu", cubic=True)
        atoms.set_cell(atoms.cell * s, scale_atoms=True)
        atoms.calc = EMT()
        energies.append(atoms.get_potential_energy())
        structures.append(atoms)
    return structures, np.array(energies)


@flowrep.atomic("fit", "e0")
def fit(structures: list, energies: np.ndarray) -> tuple[Fit, float]:
    """The lowest-energy structure in a dataclass, and its energy."""
    best = int(np.argmin(energies))
    return Fit(float(structures[best].get_volume()), structures[best]), float(energies[best])


class Vector:
    """A library class made a safe type through the public registration API."""

    def __init__(self, xyz, unit: str) -> None:
        self.xyz = np.asarray(xyz, dtype=float)
        self.unit = unit

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vector) and self.unit == other.unit and np.array_equal(self.xyz, other.xyz)


def _decode_vector(meta, parts):
    xyz = parts["xyz"]
    if not (isinstance(xyz, np.ndarray) and xyz.shape == (3,)):
        raise ValueError("xyz must be 3 numbers")
    return Vector(xyz, str(meta["unit"]))


sn.register_safe_type(
    Vector,
    "tests.Vector",
    encode=lambda v: ({"unit": v.unit}, [("xyz", v.xyz)]),
    decode=_decode_vector,
    describe=lambda meta: {"info": {"summary": f"vector in {meta['unit']}"}},
)
