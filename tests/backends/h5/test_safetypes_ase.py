"""``ase.Atoms`` stored natively in the h5 archive: arrays, cell, pbc, info, plain
constraints and a calculator's results round trip and load with ``safe=True``; the
calculator itself is kept by reference."""

from __future__ import annotations

import ase
import ase.build
import numpy as np
from ase.calculators.emt import EMT
from ase.constraints import FixAtoms, FixCartesian

import storage_nodes as sn


def _atoms() -> ase.Atoms:
    atoms = ase.build.bulk("Cu", cubic=True) * (2, 2, 1)
    atoms.rattle(0.05, seed=3)
    atoms.set_initial_magnetic_moments(np.linspace(0, 1, len(atoms)))
    atoms.set_tags(np.arange(len(atoms), dtype=np.int32))
    atoms.info.update({"note": "relaxed", "step": 3, "energies": np.arange(3.0)})
    atoms.set_constraint([FixAtoms(indices=[0, 1]), FixCartesian(2, mask=(True, False, True))])
    atoms.set_celldisp([0.5, 0.0, 0.0])
    return atoms


def _same(a: ase.Atoms, b: ase.Atoms) -> None:
    assert type(a) is type(b) and a == b  # numbers, positions, cell, pbc
    assert a.arrays.keys() == b.arrays.keys()
    for name in a.arrays:
        assert a.arrays[name].dtype == b.arrays[name].dtype and np.array_equal(a.arrays[name], b.arrays[name]), name
    assert a.info.keys() == b.info.keys()
    for name in a.info:
        assert np.array_equal(a.info[name], b.info[name]), name
    assert [c.todict() for c in a.constraints] == [c.todict() for c in b.constraints]
    assert np.array_equal(a.get_celldisp(), b.get_celldisp())


def test_atoms_round_trip_exactly_with_safe_true(tmp_path):
    atoms = _atoms()
    small = [ase.Atoms("H2O", positions=np.eye(3)), ase.build.molecule("CH4"), ase.Atoms()]
    path = sn.save({"atoms": atoms, "small": small}, tmp_path / "atoms.h5")
    back = sn.load(path, safe=True)
    _same(back["atoms"], atoms)
    for got, want in zip(back["small"], small):
        _same(got, want)


def test_a_calculators_results_are_data_and_the_calculator_a_reference(tmp_path):
    atoms = ase.build.bulk("Cu", cubic=True)
    atoms.calc = EMT()
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    path = sn.save({"atoms": atoms}, tmp_path / "calc.h5")
    back = sn.load(path, safe=True)["atoms"]
    assert back.get_potential_energy() == energy and np.array_equal(back.get_forces(), forces)
    assert type(back.calc).__name__ == "SinglePointCalculator"
    assert back.calc.stored_calculator == "ase.calculators.emt.EMT"
    assert sn.inspect(path)["atoms"].info["calculator"] == "ase.calculators.emt.EMT"
    assert sn.load(path, key="atoms/__results__/energy", safe=True) == energy


def test_inspect_shows_formula_and_cell_and_arrays_load_alone(tmp_path):
    atoms = _atoms()
    path = sn.save({"atoms": atoms}, tmp_path / "atoms.h5")
    entry = sn.inspect(path)["atoms"]
    assert entry.type == "Atoms" and entry.module == "ase" and entry.length == len(atoms)
    assert entry.info["formula"] == atoms.get_chemical_formula() == "Cu16"
    assert entry.info["cell"] == atoms.cell.array.tolist() and entry.info["pbc"] == [True, True, True]
    assert "Cu16, cell [7.22 0 0; 0 7.22 0; 0 0 3.61]" in str(sn.inspect(path))
    positions = sn.load(path, key="atoms/positions", safe=True)
    assert np.array_equal(positions, atoms.positions)
    assert np.array_equal(sn.load(path, key="atoms/initial_magmoms"), atoms.get_initial_magnetic_moments())


def test_the_formula_is_ases_own(tmp_path):
    from ase.build import molecule

    values = [molecule(name) for name in ("CH4", "H2O", "CH3CH2OH", "C6H6", "NH3")] + [ase.Atoms("OHHeAuC2")]
    path = sn.save(values, tmp_path / "formulas.h5")
    listing = sn.inspect(path)
    assert [listing[str(i)].info["formula"] for i in range(len(values))] == [a.get_chemical_formula() for a in values]


def test_an_atoms_with_a_constraint_that_is_not_plain_is_stored_the_generic_way(tmp_path):
    from ase.constraints import Hookean

    atoms = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 1]])
    atoms.set_constraint(Hookean(0, 1, rt=1.0, k=5.0))
    path = sn.save({"atoms": atoms}, tmp_path / "hookean.h5")
    assert sn.load(path)["atoms"].constraints[0].todict() == atoms.constraints[0].todict()
    assert sn.inspect(path)["atoms"].info.get("safe_type") is None  # an object node, not an n node
