"""An equation of state as pyiron_workflow nodes, fleche-cached (issue 26's real-node workload).

In the style of pyiron_workflow_atomistics' ASE EMT equation of state: an engine-like
object (a dataclass holding a real ASE EMT calculator, which pickle cannot store, and a
``results`` dict every calculation writes into, from whichever thread runs it), real
``ase.Atoms`` inputs, and a for-each of 9 ``calculate`` calls over strains. The engine's
digest is its name, calculator class and parameters: what it computes with, not what it
has computed. ``make_engine(picklable=True)`` names the calculator class instead of
holding one, for value storages that pickle. Each ``calculate`` body appends a line to a
counter file, so the tests count executions instead of timing them. Used by
``tests/caching/test_caching_threads.py`` and ``benchmarks/bench_fleche.py``.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ase
import fleche
import flowrep
import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from fleche.digest import digest

_lock = threading.Lock()
STRAINS = [float(s) for s in np.linspace(-0.04, 0.04, 9)]


def count_call(counter: str) -> None:
    """Append one line (the thread's id) to the counter file."""
    with _lock, open(counter, "a") as f:
        f.write(f"{threading.get_ident()}\n")


def executions(counter: str | Path) -> int:
    """How often a counted body ran."""
    p = Path(counter)
    return len(p.read_text().splitlines()) if p.exists() else 0


@dataclass
class Engine:
    """An engine-like object: a calculator to compute with and a results dict it fills.

    ``calculator`` is an ASE calculator (EMT holds a lambda: pickle cannot store it) or the
    dotted name of a calculator class, with ``parameters`` (a form any storage can hold).
    """

    name: str
    calculator: Any
    parameters: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)

    def calculator_class(self) -> type:
        if isinstance(self.calculator, str):
            module, _, name = self.calculator.rpartition(".")
            return getattr(importlib.import_module(module), name)
        return type(self.calculator)

    def new_calculator(self) -> Any:
        """A calculator of the engine's kind, for one calculation (ASE calculators are not thread-safe)."""
        parameters = self.parameters if isinstance(self.calculator, str) else self.calculator.parameters
        return self.calculator_class()(**parameters)

    def __digest__(self) -> str:
        calc = self.calculator_class()
        parameters = self.parameters if isinstance(self.calculator, str) else self.calculator.parameters
        return digest(("Engine", self.name, f"{calc.__module__}.{calc.__qualname__}", dict(parameters)))


def make_engine(name: str = "emt", picklable: bool = False) -> Engine:
    """An engine with a used EMT calculator, or (``picklable``) with the calculator's class name."""
    if picklable:
        return Engine(name, "ase.calculators.emt.EMT", {})
    calc = EMT()
    probe = bulk("Cu", "fcc", a=3.6, cubic=True)
    probe.calc = calc
    probe.get_potential_energy()
    return Engine(name, calc)


def make_structure() -> ase.Atoms:
    """fcc copper, the cubic 4-atom cell."""
    return bulk("Cu", "fcc", a=3.6, cubic=True)


@flowrep.atomic("energy", "volume")
@fleche.fleche
def calculate(engine: Engine, structure: ase.Atoms, strain: float, counter: str) -> tuple[float, float]:
    """Energy and volume of ``structure`` strained by ``strain``; records its results in the engine."""
    count_call(counter)
    atoms = structure.copy()
    atoms.set_cell(structure.cell * (1.0 + strain), scale_atoms=True)
    atoms.calc = engine.new_calculator()  # the engine's results dict is shared by all calls
    energy = float(atoms.get_potential_energy())
    engine.results[f"{strain:+.4f}"] = {"energy": energy, "forces": atoms.get_forces(), "order": len(engine.results)}
    return energy, float(atoms.get_volume())


@flowrep.workflow("energies", "volumes")
def equation_of_state(engine, structure, strains, counter):
    """A for-each of ``calculate`` over ``strains``."""
    energies = []
    volumes = []
    for strain in strains:
        energy, volume = calculate(engine, structure, strain, counter)
        energies.append(energy)
        volumes.append(volume)
    return energies, volumes
