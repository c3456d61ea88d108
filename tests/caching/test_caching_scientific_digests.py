"""Canonical fleche digests for numpy arrays, pandas, scipy sparse and ase.Atoms (issue 26).

Property tests: equal values (copies, other memory layouts, byte orders, formats) give
equal digests; any change to a value (one element, a label, the shape, the dtype) gives a
different one. Plus: the hook imports none of pandas/scipy/ase, plain arrays keep fleche's
own keys, and a node input fleche cannot digest is reported once per function.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import warnings

import ase
import fleche
import fleche.digest as fleche_digest
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from ase.calculators.emt import EMT
from ase.constraints import FixAtoms
from fleche.caches import Cache
from fleche.digest import digest
from fleche.storage.memory import CallMemory, ValueMemory
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import storage_nodes  # noqa: F401  (registers the storage type and the hooks)
from storage_nodes.caching import UncachedCallWarning, array_digest, scientific_digests_enabled

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NUMERIC = st.one_of(
    hnp.integer_dtypes(),
    hnp.unsigned_integer_dtypes(),
    hnp.floating_dtypes(),
    hnp.complex_number_dtypes(),
    hnp.boolean_dtypes(),
    hnp.datetime64_dtypes(),
    hnp.timedelta64_dtypes(),
    hnp.unicode_string_dtypes(min_len=1, max_len=4),
    hnp.byte_string_dtypes(min_len=1, max_len=4),
)
STRUCTURED = hnp.array_dtypes(subtype_strategy=hnp.scalar_dtypes(), min_size=1, max_size=3)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
OBJECTS = st.one_of(
    st.floats(allow_nan=False), st.integers(), st.text(max_size=3), st.none(), st.lists(st.integers(), max_size=2)
)


@st.composite
def arrays(draw):
    kind = draw(st.sampled_from(["numeric", "structured", "object"]))
    if kind == "object":
        shape = draw(SHAPES)
        items = draw(st.lists(OBJECTS, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
        a = np.empty(shape, dtype=object)
        for i, item in enumerate(items):
            a.flat[i] = item
        return a
    dtype = draw(NUMERIC if kind == "numeric" else STRUCTURED)
    return draw(hnp.arrays(dtype, SHAPES))


def _same(x, y) -> bool:
    """Elementwise identity: bytes for plain data, type and repr for objects."""
    if isinstance(x, np.ndarray) and x.dtype.hasobject:
        return all(type(p) is type(q) and repr(p) == repr(q) for p, q in zip(x.ravel(), y.ravel()))
    return x.tobytes() == y.tobytes()


def test_the_hook_is_installed():
    assert scientific_digests_enabled()


@PROPERTY
@given(arrays())
def test_equal_arrays_have_equal_digests_whatever_their_layout(a):
    d = digest(a)
    assert digest(a.copy()) == d
    assert digest(np.array(a, order="F")) == d
    if a.dtype.names is None and not a.dtype.hasobject:
        assert digest(a.astype(a.dtype.newbyteorder())) == d  # other byte order, same values
    if a.ndim:
        doubled = np.repeat(a, 2, axis=0)[::2]  # a non-contiguous view of equal values
        assert not doubled.flags.c_contiguous or a.shape[0] <= 1 or a.size == 0
        assert digest(doubled) == d


@PROPERTY
@given(arrays(), st.data())
def test_any_change_to_an_array_changes_its_digest(a, data):
    assume(a.size > 0)
    i = data.draw(st.integers(0, a.size - 1))
    b = a.copy()
    if a.dtype.hasobject:
        b.flat[i] = data.draw(OBJECTS)
    else:
        b.flat[i] = data.draw(hnp.from_dtype(a.dtype))
    if _same(a, b):
        assert digest(a) == digest(b)
    else:
        assert digest(a) != digest(b)
    assert digest(a) != digest(a.reshape(-1)[:-1])  # one element fewer
    if a.ndim >= 1 and a.shape[0] > 1 and a.ndim != 1:
        assert digest(a) != digest(a.reshape(-1))  # other shape


def test_plain_arrays_keep_fleche_keys(monkeypatch):
    samples = [
        np.arange(6.0).reshape(2, 3),
        np.arange(6).reshape(2, 3).T,
        np.array(3.5),
        np.array(["2020-01-01"], dtype="M8[s]"),
        np.array(["ab", "c"]),
        np.zeros((0, 2)),
    ]
    ours = [digest(a) for a in samples]
    monkeypatch.setattr(fleche_digest, "_HOOKS", [])  # fleche's own digests, without ours
    assert [digest(a) for a in samples] == ours


def test_array_cases_fleche_gets_wrong():
    # object arrays: fleche digests floats through hash(), where -1.0 and -2.0 collide
    assert digest(np.array([-1.0, "a"], dtype=object)) != digest(np.array([-2.0, "a"], dtype=object))
    # byte order is storage, not value
    assert digest(np.arange(4.0)) == digest(np.arange(4.0).astype(">f8"))
    # structured arrays: padding and offsets are not the value
    packed = np.zeros(2, dtype=np.dtype([("a", "u1"), ("b", "<f8")]))
    aligned = np.zeros(2, dtype=np.dtype([("a", "u1"), ("b", "<f8")], align=True))
    assert packed.dtype.itemsize != aligned.dtype.itemsize and digest(packed) == digest(aligned)
    # datetime64: the unit is part of the dtype, NaT digests stably
    assert digest(np.array(["NaT"], dtype="M8[s]")) == digest(np.array(["NaT"], dtype="M8[s]"))
    # numpy's variable-width strings
    sd = np.dtypes.StringDType()
    assert digest(np.array(["ab", "c"], dtype=sd)) == digest(np.array(["ab", "c"], dtype=sd))
    assert digest(np.array(["ab", "c"], dtype=sd)) != digest(np.array(["ab", "d"], dtype=sd))
    # masked arrays: the mask is part of the value
    assert digest(np.ma.array([1, 2], mask=[0, 1])) != digest(np.ma.array([1, 2], mask=[0, 0]))
    assert array_digest(np.arange(3)) == digest(np.arange(3))


# --- pandas --------------------------------------------------------------------------------
FRAMES = st.integers(0, 5).flatmap(
    lambda n: st.fixed_dictionaries(
        {
            "f": st.lists(st.floats(allow_nan=True), min_size=n, max_size=n),
            "i": st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n),
            "s": st.lists(st.text(max_size=3), min_size=n, max_size=n),
            "o": st.lists(st.one_of(st.floats(allow_nan=False), st.text(max_size=2)), min_size=n, max_size=n),
        }
    )
)


def _frame(columns: dict) -> pd.DataFrame:
    df = pd.DataFrame({k: pd.Series(v, dtype=object if k == "o" else None) for k, v in columns.items()})
    df["c"] = pd.Categorical(df["s"])
    return df


@PROPERTY
@given(FRAMES, st.data())
def test_pandas_digests_are_canonical(columns, data):
    df = _frame(columns)
    d = digest(df)
    assert digest(df.copy(deep=True)) == d
    assert digest(pd.concat([df.iloc[:0], df])) == d  # rebuilt: other blocks, same frame
    assert digest(df["f"]) == digest(df["f"].copy()) and digest(df.index) == digest(df.index.copy())
    assert digest(df.rename(columns={"f": "g"})) != d
    assert digest(df.set_axis(range(1, len(df) + 1))) != d or len(df) == 0
    if len(df):
        row = data.draw(st.integers(0, len(df) - 1))
        changed = df.copy()
        old = changed.loc[row, "o"]
        new = data.draw(st.one_of(st.floats(allow_nan=False), st.text(max_size=2)))
        assume(not (type(old) is type(new) and repr(old) == repr(new)))
        changed.loc[row, "o"] = new
        assert digest(changed) != d


def test_pandas_cases_fleche_gets_wrong():
    a = pd.DataFrame({"x": pd.Series([-1.0, "a"], dtype=object)})
    b = pd.DataFrame({"x": pd.Series([-2.0, "a"], dtype=object)})
    assert digest(a) != digest(b)
    assert digest(pd.Series([1.0, 2.0], name="e")) != digest(pd.Series([1.0, 2.0], name="f"))
    mi = pd.MultiIndex.from_tuples([(1, "a"), (2, "b")], names=["n", "s"])
    assert digest(pd.Series([1, 2], index=mi)) == digest(pd.Series([1, 2], index=mi.copy()))
    assert digest(pd.Series([1, 2], index=mi)) != digest(pd.Series([1, 2], index=mi.set_names(["n", "t"])))


# --- scipy.sparse --------------------------------------------------------------------------
@st.composite
def sparse(draw):
    rows, cols = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    n = draw(st.integers(0, 8))
    r = draw(st.lists(st.integers(0, rows - 1), min_size=n, max_size=n))
    c = draw(st.lists(st.integers(0, cols - 1), min_size=n, max_size=n))
    v = draw(st.lists(st.floats(-10, 10, allow_nan=False).filter(bool), min_size=n, max_size=n))
    entries = (np.array(v, dtype=float), (np.array(r, dtype=int), np.array(c, dtype=int)))
    return sp.coo_matrix(entries, shape=(rows, cols))


@PROPERTY
@given(sparse(), st.data())
def test_sparse_digests_are_canonical(coo, data):
    csr = coo.tocsr()
    d = digest(csr)
    assert digest(coo.tocsc().tocsr()) == d  # duplicates summed, other history, same matrix
    padded = csr.copy()
    padded.data = np.append(padded.data, 0.0)  # an explicit zero is not a value
    padded.indices = np.append(padded.indices, 0)
    padded.indptr[-1] += 1
    padded.has_canonical_format = False
    assert digest(padded) == d
    assert digest(sp.csr_array(csr)) != d  # another class: a sparse array, not a matrix
    assert digest(csr.astype(np.float32)) != d
    dense = csr.toarray()
    i = data.draw(st.integers(0, dense.shape[0] - 1))
    j = data.draw(st.integers(0, dense.shape[1] - 1))
    dense[i, j] += 1.5
    assert digest(sp.csr_matrix(dense)) != d


# --- ase.Atoms -----------------------------------------------------------------------------
@st.composite
def structures(draw):
    n = draw(st.integers(1, 4))
    numbers = draw(st.lists(st.sampled_from([1, 6, 13, 29]), min_size=n, max_size=n))
    positions = draw(hnp.arrays(np.float64, (n, 3), elements=st.floats(-5, 5)))
    cell = np.diag(draw(st.lists(st.floats(1, 10), min_size=3, max_size=3)))
    pbc = draw(st.lists(st.booleans(), min_size=3, max_size=3))
    return ase.Atoms(numbers=numbers, positions=positions, cell=cell, pbc=pbc)


@PROPERTY
@given(structures(), st.data())
def test_atoms_digests_are_canonical(atoms, data):
    d = digest(atoms)
    assert digest(atoms.copy()) == d
    i = data.draw(st.integers(0, len(atoms) - 1))
    moved = atoms.copy()
    moved.positions[i, data.draw(st.integers(0, 2))] += data.draw(st.sampled_from([1e-9, -0.5, 2.0]))
    assert digest(moved) != d
    other = atoms.copy()
    other.numbers[i] = 79
    assert digest(other) != d
    for change in (
        lambda a: a.set_cell(a.cell * 1.01, scale_atoms=False),
        lambda a: a.set_pbc([not p for p in a.pbc]),
        lambda a: a.info.update(energy=-1.0),
        lambda a: a.set_constraint(FixAtoms(indices=[0])),
        lambda a: a.set_tags(list(range(1, len(a) + 1))),
    ):
        changed = atoms.copy()
        change(changed)
        assert digest(changed) != d


def test_atoms_info_floats_are_exact_and_calculator_results_do_not_count():
    a = ase.Atoms("Cu", positions=[[0, 0, 0]], cell=[3, 3, 3], pbc=True)
    b = a.copy()
    a.info["e"], b.info["e"] = -1.0, -2.0  # fleche's hash() equates these
    assert digest(a) != digest(b)
    c = ase.Atoms("Cu", positions=[[0, 0, 0]], cell=[3, 3, 3], pbc=True)
    plain = digest(c)
    c.calc = EMT()
    with_calc = digest(c)
    assert with_calc != plain  # a calculator attached is part of what a node gets
    c.get_potential_energy()  # fills calc.results
    assert digest(c) == with_calc


# --- laziness and reporting ----------------------------------------------------------------
def test_the_hook_imports_no_scientific_package():
    code = (
        "import sys, numpy as np, storage_nodes, fleche\n"
        "from fleche.digest import digest\n"
        "from storage_nodes.caching import scientific_digests_enabled\n"
        "assert scientific_digests_enabled()\n"
        "digest({'a': np.arange(3.0), 'b': [1, 'x', np.zeros((2, 2), dtype=object)]})\n"
        "print(sorted(m for m in ('ase', 'scipy', 'scipy.sparse') if m in sys.modules))\n"
        "import storage_nodes.caching.scientific_digests as s\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out
    # and without fleche, loading the hook module imports none of them, pandas included
    code = (
        "import sys, storage_nodes.caching.scientific_digests\n"
        "print(sorted(m for m in ('ase', 'scipy', 'pandas', 'fleche') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out


class Opaque:
    """No digest: no hook, no __digest__, not a dataclass."""


@fleche.fleche
def _uses_opaque(engine, structure, n: int) -> int:
    return n


def test_an_input_without_digest_is_reported_once_per_function():
    atoms = ase.Atoms("Cu", positions=[[0, 0, 0]], cell=[3, 3, 3], pbc=True)
    with fleche.cache(Cache(ValueMemory({}), CallMemory({}))), warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for n in range(3):
            assert _uses_opaque(Opaque(), atoms, n) == n
    reports = [w for w in seen if issubclass(w.category, UncachedCallWarning)]
    assert len(reports) == 1, [str(w.message) for w in seen]
    text = str(reports[0].message)
    assert "_uses_opaque" in text and "'engine' (Opaque)" in text and "structure" not in text
    assert reports[0].filename == __file__  # located at the node function


@pytest.mark.parametrize("dtype", ["<f8", ">i4", "M8[ns]", "U3", "S2", "?", "c16", "m8[s]"])
def test_array_digest_is_fleche_digest_for_every_plain_dtype(dtype):
    a = np.zeros((2, 3), dtype=dtype)
    assert array_digest(a) == digest(a)


@dataclasses.dataclass
class EngineLike:
    name: str
    calculator: object


@fleche.fleche
def _uses_engine(engine, n: int) -> int:
    return n


def test_the_report_names_what_inside_an_input_has_no_digest():
    with fleche.cache(Cache(ValueMemory({}), CallMemory({}))), warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert _uses_engine(EngineLike("emt", Opaque()), 1) == 1
    (report,) = [w for w in seen if issubclass(w.category, UncachedCallWarning)]
    assert "'engine' (EngineLike, holding a Opaque without a digest)" in str(report.message)
