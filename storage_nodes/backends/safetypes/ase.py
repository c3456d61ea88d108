"""The safe type of ASE: ``ase.Atoms``.

Stored as its per-atom arrays (``numbers``, ``positions`` and any others, each a part: one
loads alone by key), the cell, periodicity and chemical formula in ``meta`` (so ``inspect``
shows them without ASE), ``info``, the constraints that are plain data (``FixAtoms``,
``FixCartesian`` ...: name and keyword arguments) and a calculator's stored results. The
calculator itself is kept by reference only (its class name in ``meta``): a loaded ``Atoms``
carries the results in a ``SinglePointCalculator``. ASE is imported only when an ``Atoms`` is
met or rebuilt. The layout is in ``docs/format.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .registry import Encoded, Meta, SafeType

__all__ = ["install"]

#: constraints stored as ``{"name", "kwargs"}`` (their ``todict()``) and rebuilt by
#: ``ase.constraints.dict2constraint``; an Atoms with any other constraint is stored the generic way
CONSTRAINTS = frozenset(
    {
        "FixAtoms",
        "FixCartesian",
        "FixScaled",
        "FixedLine",
        "FixedPlane",
        "FixedMode",
        "FixCom",
        "FixBondLength",
        "FixBondLengths",
    }
)
_OWN_PARTS = frozenset({"__info__", "__constraints__", "__results__"})


def _enc_atoms(atoms: Any) -> Encoded:
    if any(name.startswith("__") for name in atoms.arrays):
        return None
    constraints = []
    for c in atoms.constraints:
        d = c.todict()
        if d.get("name") not in CONSTRAINTS:
            return None
        constraints.append({"name": d["name"], "kwargs": dict(d.get("kwargs", {}))})
    meta: Meta = {
        "formula": _hill_formula(atoms.numbers),
        "natoms": len(atoms),
        "cell": np.asarray(atoms.cell.array, dtype=float).tolist(),
        "pbc": [bool(p) for p in atoms.pbc],
    }
    celldisp = np.asarray(atoms.get_celldisp(), dtype=float)
    if celldisp.any():
        meta["celldisp"] = celldisp.tolist()
    parts: list[tuple[str, Any]] = list(atoms.arrays.items())
    if atoms.info:
        parts.append(("__info__", dict(atoms.info)))
    if constraints:
        parts.append(("__constraints__", constraints))
    calc = atoms.calc
    if calc is not None:
        cls = type(calc)
        meta["calculator"] = f"{cls.__module__}.{cls.__qualname__}"
        results = getattr(calc, "results", None)
        if isinstance(results, dict) and results:
            parts.append(("__results__", dict(results)))
    return meta, parts


def _hill_formula(numbers: np.ndarray) -> str:
    """``atoms.get_chemical_formula()`` (Hill order: C, H, then alphabetical; without C all
    alphabetical), counted with numpy: ASE's own takes 40 ms for 10,000 atoms."""
    from ase.data import chemical_symbols

    numbers = np.asarray(numbers)
    if numbers.size and numbers.dtype.kind in "iu" and numbers.min() >= 0 and numbers.max() < len(chemical_symbols):
        counted = np.bincount(numbers)  # no sort: a tenth of np.unique's time on a small molecule
        found = np.flatnonzero(counted)
        counts = counted[found]
    else:
        found, counts = np.unique(numbers, return_counts=True)
    by_symbol = {chemical_symbols[int(z)]: int(n) for z, n in zip(found, counts)}
    order = sorted(by_symbol)
    if "C" in by_symbol:
        order = ["C", *(["H"] if "H" in by_symbol else []), *(s for s in order if s not in ("C", "H"))]
    return "".join(s + (str(by_symbol[s]) if by_symbol[s] > 1 else "") for s in order)


def _floats(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=float)  # from index data (lists of floats) only
    if arr.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got {arr.shape}")
    return arr


def _dec_atoms(meta: Meta, parts: dict[str, Any]) -> Any:
    import ase
    from ase.calculators.calculator import all_properties
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.constraints import dict2constraint

    numbers, positions = parts["numbers"], parts["positions"]
    if not (isinstance(numbers, np.ndarray) and numbers.dtype.kind == "i" and numbers.ndim == 1):
        raise TypeError("numbers must be a 1-d integer array")
    if not (isinstance(positions, np.ndarray) and positions.dtype.kind == "f" and positions.shape == (len(numbers), 3)):
        raise TypeError("positions must be a float array of shape (natoms, 3)")
    pbc = meta["pbc"]
    if not (type(pbc) is list and len(pbc) == 3 and all(type(p) is bool for p in pbc)):
        raise TypeError("pbc must be three bools")
    celldisp = None
    if "celldisp" in meta:
        celldisp = np.asarray(meta["celldisp"], dtype=float)  # (3,) or ASE's own (3, 1)
        if celldisp.size != 3:
            raise ValueError(f"celldisp must hold 3 numbers, got shape {celldisp.shape}")
    atoms = ase.Atoms(
        numbers=numbers, positions=positions, cell=_floats(meta["cell"], (3, 3), "cell"), pbc=pbc, celldisp=celldisp
    )
    atoms.arrays["numbers"] = numbers  # keep the stored dtypes and the arrays as loaded
    atoms.arrays["positions"] = positions
    for name, value in parts.items():
        if name in _OWN_PARTS or name in ("numbers", "positions"):
            continue
        if not isinstance(value, np.ndarray) or value.ndim < 1 or len(value) != len(numbers):
            raise TypeError(f"the per-atom array {name!r} must be an array of {len(numbers)} rows")
        atoms.arrays[name] = value
    info = parts.get("__info__", {})
    if type(info) is not dict:
        raise TypeError("info must be a dict")
    atoms.info = info
    constraints = []
    for d in parts.get("__constraints__", ()):
        if type(d) is not dict or d.get("name") not in CONSTRAINTS or type(d.get("kwargs")) is not dict:
            raise ValueError(f"not a plain constraint: {d!r}")
        constraints.append(dict2constraint({"name": d["name"], "kwargs": d["kwargs"]}))
    if constraints:
        atoms.set_constraint(constraints)
    results = parts.get("__results__")
    if results is not None or "calculator" in meta:
        if results is not None and type(results) is not dict:
            raise TypeError("calculator results must be a dict")
        known = {k: v for k, v in (results or {}).items() if k in all_properties}
        calc = SinglePointCalculator(atoms, **known)
        calc.results.update({k: v for k, v in (results or {}).items() if k not in all_properties})
        calc.stored_calculator = str(meta.get("calculator", ""))  # type: ignore[attr-defined]  # the original, by reference
        atoms.calc = calc
    return atoms


def _describe(meta: Meta) -> dict[str, Any]:
    cell = meta.get("cell")
    info = {"formula": meta.get("formula"), "cell": cell, "pbc": meta.get("pbc")}
    rows = "; ".join(" ".join(f"{x:g}" for x in row) for row in cell) if isinstance(cell, list) else "?"
    info["summary"] = f"{meta.get('formula')}, cell [{rows}], pbc {meta.get('pbc')}"
    if "calculator" in meta:
        info["calculator"] = meta["calculator"]
    return {"length": meta.get("natoms"), "info": info}


_ATOMS = SafeType(
    name="ase.Atoms",
    encode=_enc_atoms,
    decode=_dec_atoms,
    package="ase",
    describe=_describe,
    type_name="Atoms",
    module="ase",
)


def _match(cls: type) -> SafeType | None:
    if not cls.__module__.startswith("ase."):
        return None
    ase = sys.modules.get("ase")
    return _ATOMS if ase is not None and cls is getattr(ase, "Atoms", None) else None


def install(add: Callable[..., None]) -> None:
    """Register ``ase.Atoms`` with ``add(safe_type, classes, matcher)``."""
    add(_ATOMS, (), _match)
