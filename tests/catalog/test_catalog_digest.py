"""The catalog's value digest: typed, canonical, never a wrong match (hypothesis property tests)."""

from __future__ import annotations

import copy
import dataclasses
import enum
import math
import pickle
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import storage_nodes as sn
from storage_nodes._secrets import mask_passwords
from storage_nodes.catalog import digest as D
from storage_nodes.catalog.catalog import _PLAIN_JSON, preview
from storage_nodes.catalog.digest import digest

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.complex_numbers(allow_nan=True)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
plain = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=4) | st.integers(), children, max_size=4)
        | st.frozensets(st.integers() | st.text(max_size=3), max_size=4)
    ),
    max_leaves=12,
)


def _fbits(x: float) -> object:
    return "nan" if math.isnan(x) else struct.pack(">d", x)


def canon(x):
    """A reference typed equality: what the digest must distinguish, and nothing more."""
    t = type(x)
    if t is float:
        return ("float", _fbits(x))
    if t is complex:
        return ("complex", _fbits(x.real), _fbits(x.imag))
    if t in (list, tuple):
        return (t.__name__, tuple(canon(v) for v in x))
    if t is dict:
        return ("dict", frozenset((canon(k), canon(v)) for k, v in x.items()))
    if t is frozenset:
        return ("frozenset", frozenset(canon(v) for v in x))
    return (t.__name__, x)


@given(plain)
def test_equal_values_give_equal_digests(x):
    d = digest(x)
    assert d is not None and len(d) == 64
    assert digest(copy.deepcopy(x)) == d
    assert digest(pickle.loads(pickle.dumps(x))) == d


@given(plain, plain)
def test_digests_are_equal_exactly_when_the_typed_values_are(x, y):
    assert (digest(x) == digest(y)) == (canon(x) == canon(y))


@given(st.floats(allow_nan=True), st.floats(allow_nan=True))
def test_floats_differ_by_bits_and_every_nan_is_one(a, b):
    assert (digest(a) == digest(b)) == (_fbits(a) == _fbits(b))


@given(st.dictionaries(st.text(max_size=5), st.integers(), min_size=2, max_size=8), st.randoms())
def test_dict_order_does_not_matter(d, rnd):
    items = list(d.items())
    rnd.shuffle(items)
    assert digest(dict(items)) == digest(d)
    assert digest(list(d.items())) != digest(d)


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_int_float_bool_and_str_never_collide(n):
    values = [n, str(n), np.int64(n) if abs(n) < 2**63 else None]
    if abs(n) < 2**53:
        values.append(float(n))
    if n in (0, 1):
        values.append(bool(n))
    digests = [digest(v) for v in values if v is not None]
    assert len(set(digests)) == len(digests)


@settings(deadline=None)
@given(hnp.arrays(hnp.scalar_dtypes(), hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)))
def test_arrays_by_dtype_shape_and_c_order_bytes(a):
    d = digest(a)
    assert d is not None
    assert digest(a.copy(order="F")) == d and digest(a.copy()) == d
    if a.dtype.byteorder != "|":
        assert digest(a.astype(a.dtype.newbyteorder("S"))) == d  # byte order is representation, not value
    if a.ndim >= 1 and a.size:
        assert digest(a.reshape(-1)) != d or a.ndim == 1
    for other in ("f4", "f8", "i8", "U1"):
        if np.dtype(other) != a.dtype.newbyteorder("="):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    converted = a.astype(other)
            except (TypeError, ValueError, RuntimeError, OverflowError):
                continue
            assert digest(converted) != d


@settings(deadline=None, max_examples=40)
@given(plain)
def test_a_round_trip_through_an_h5_file_keeps_the_digest(x):
    """What `index` relies on: digests of values loaded from a file equal those at save time."""
    with tempfile.TemporaryDirectory() as d:
        p = sn.save({"v": x}, Path(d) / "x.h5")
        assert digest(sn.load(p)["v"]) == digest(x)


# ---------------------------------------------------------------- the rules, one by one


def test_the_documented_rules():
    assert len({digest(1), digest(1.0), digest(True), digest("1"), digest(np.int64(1)), digest(np.float64(1.0))}) == 6
    assert hash(-1) == hash(-2) and digest(-1.0) != digest(-2.0) and digest(-1) != digest(-2)
    assert digest(float("nan")) == digest(-float("nan")) == digest(float("inf") - float("inf"))
    assert digest(np.float64("nan")) == digest(-np.float64("nan")) != digest(float("nan"))
    assert digest(0.0) != digest(-0.0)  # decided: they differ (1/x, copysign tell them apart)
    assert digest([1, 2]) != digest((1, 2)) and digest(b"a") != digest(bytearray(b"a"))
    assert digest({1, 2, 3}) == digest({3, 2, 1}) and digest({1}) != digest(frozenset({1}))
    a = np.arange(6.0).reshape(2, 3)
    assert digest(a) == digest(np.asfortranarray(a)) and digest(a) != digest(a.T.copy())
    assert digest(a) != digest(a.astype(np.float32))
    nan1 = np.array([np.nan, 1.0])
    nan2 = np.array([struct.unpack(">d", b"\x7f\xf8\x00\x00\x00\x00\x00\x01")[0], 1.0])
    assert digest(nan1) == digest(nan2)
    assert digest(np.zeros(3, dtype=object)) is not None and digest(np.array([1, "a"], dtype=object)) is not None


def _module_function():
    return 1


class Colour(enum.Enum):
    RED = 1
    BLUE = 2


@dataclasses.dataclass
class Point:
    x: float
    y: float


class Slotted:
    __slots__ = ("a",)

    def __init__(self, a):
        self.a = a


def test_functions_classes_and_objects():
    assert digest(_module_function) == digest(_module_function) is not None
    assert digest(_module_function) != digest(test_the_documented_rules)
    assert digest(lambda: 1) is None  # no stable reference
    assert digest(Point) != digest(Slotted) and digest(len) is not None
    assert digest(Colour.RED) != digest(Colour.BLUE) and digest(Colour.RED) != digest(1)
    assert digest(Point(1.0, 2.0)) == digest(Point(1.0, 2.0)) != digest(Point(1.0, -2.0))
    assert digest(Point(-1.0, 2.0)) != digest(Point(-2.0, 2.0))
    assert digest(Slotted(1)) == digest(Slotted(1)) != digest(Slotted(1.0))
    import datetime
    import fractions

    assert digest(fractions.Fraction(1, 3)) != digest(fractions.Fraction(1, 4))
    assert digest(datetime.date(2026, 1, 1)) != digest(datetime.date(2026, 1, 2))
    assert digest(Path("a")) != digest("a")


def test_cycles_are_encoded_and_guards_bound_the_work(monkeypatch):
    a = [1]
    a.append(a)
    b = [1]
    b.append(b)
    c = [2]
    c.append(c)
    assert digest(a) == digest(b) is not None and digest(a) != digest(c)
    d: dict = {}
    d["self"] = d
    assert digest(d) is not None
    deep: list = []
    for _ in range(D.MAX_DEPTH + 10):
        deep = [deep]
    assert digest(deep) is None
    monkeypatch.setattr(D, "MAX_ITEMS", 1000)
    assert digest(list(range(2000))) is None and digest(list(range(500))) is not None
    shared = [0]
    for _ in range(60):  # 2**60 paths through a DAG of 60 nodes: refused fast, not walked
        shared = [shared, shared]
    assert digest(shared) is None


class _Hostile:
    def __reduce_ex__(self, protocol):
        raise RuntimeError("no")


class _Garbage:
    def __reduce_ex__(self, protocol):
        return 42


def test_undigestable_values_give_none_never_an_error():
    import threading

    for value in (threading.Lock(), _Hostile(), _Garbage(), [1, threading.Lock()], {"k": lambda: 0}):
        assert digest(value) is None


@pytest.mark.parametrize(
    "value", [np.float32(1.5), np.int8(-3), np.bool_(True), np.str_("x"), np.datetime64("2026-01-01")]
)
def test_numpy_scalars_are_typed(value):
    assert digest(value) == digest(copy.copy(value)) is not None
    assert digest(value) != digest(value.item())


def _walked(value):
    """The digest by the general walk (what the scalar shortcut of ``digest`` must equal)."""
    enc = D._Encoder()
    enc.enc(value, 0)
    return enc.h.hexdigest()


@given(scalars)
def test_the_scalar_shortcut_gives_the_walks_digest(x):
    assert digest(x) == _walked(x)


# the digests of DIGEST_VERSION 1, pinned: a shortcut or refactoring that changed one would
# silently make every recorded call unmatchable (a new DIGEST_VERSION must change this table)
PINNED = {
    "None": (None, "d6f2de59"), "True": (True, "18ac68c3"), "1": (1, "97feff81"), "-1.0": (-1.0, "670a57cb"),
    "'x'": ("x", "521b1824"), "[1, 'x']": ([1, "x"], "07b3cbb3"),
}  # fmt: skip


def test_digests_of_version_1_are_pinned():
    got = {name: digest(v)[:8] for name, (v, _) in PINNED.items()}
    assert got == {name: h for name, (_, h) in PINNED.items()}


@given(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30))
def test_the_scalar_preview_shortcut_gives_jsons_text(x):
    if type(x) is float and not math.isfinite(x):
        assert preview(x) == '{"t": "float"}'
        return
    expected = _PLAIN_JSON({"v": x})
    assert preview(x) == (mask_passwords(expected) if len(expected) <= 200 else f'{{"t": "str len={len(x)}"}}')
