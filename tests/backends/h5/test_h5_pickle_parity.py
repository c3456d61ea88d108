"""Whatever pickle (protocol 5) round-trips, the h5 archive round-trips with the same types
and the same identity structure: shared references, cycles, singletons (issue 16).

The oracle is pickle itself: for each object, :func:`_identity.graph_shape` of the pickle
round trip must equal that of the h5 round trip. The corpus: hand-written cases (standard
library, numpy, pyiron_workflow, this project's test classes) and hypothesis-generated
object graphs with sharing and cycles through lists, dicts, tuples, frozensets, objects,
slots, object arrays and dict keys. Figures in docs/reliability.md.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import fractions
import pathlib
import types
import uuid
import warnings
from typing import Any, NamedTuple

import numpy as np
from _h5_objects import SENTINEL, Atom, Bag, Color, Keyworded, Node, Slotted, Table, WithState
from _identity import graph_shape, pickle_roundtrip
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import storage_nodes as sn


class Plain:
    def __init__(self, x: object = 1) -> None:
        self.x = x

    @classmethod
    def make(cls) -> Plain:
        return cls()

    @staticmethod
    def helper() -> int:
        return 1

    def method(self) -> object:
        return self.x


class Pair(NamedTuple):
    a: object
    b: object


class Boxed:
    """Reduced to ``Boxed(content)``: its constructor argument may reach the object itself."""

    def __init__(self, content: object = None) -> None:
        self.content = content

    def __reduce__(self) -> tuple[object, ...]:
        return (Boxed, (self.content,))


@dataclasses.dataclass(frozen=True)
class Frozen:
    a: object
    b: object = None


class Flag(enum.Flag):
    A = 1
    B = 2


def _hand_cases() -> list[tuple[str, Any]]:
    cases: list[tuple[str, Any]] = []
    add = lambda name, obj: cases.append((name, obj))  # noqa: E731
    x = [1, 2]
    add("one list as the value of many dict entries", {f"k{i}": x for i in range(100)})
    add("one dict in many lists", (lambda s: [s, [s], {"a": s}])({"a": 1}))
    k = (1, "a")
    add("a tuple as dict key and inside the value", {k: [k, k]})
    fk = frozenset([1, 2])
    add("a frozenset as key and value", {fk: fk, "other": [fk]})
    n = Node("n")
    add("an object as dict key and in the value", {n: [n, {"again": n}]})
    a = np.empty(2, dtype=object)
    a[0], a[1] = a, 1
    add("an object array containing itself", a)
    b = np.empty((2, 2), dtype=object, order="F")
    shared: list[Any] = [b]
    b[0, 0], b[1, 0], b[0, 1], b[1, 1] = shared, shared, "z", b
    add("a 2-d Fortran object array in a cycle", b)
    plain = Plain([1])
    add("a method bound to an object stored beside it", [plain, plain.method, {"again": plain.method}])
    plain2 = Plain()
    plain2.x = plain2.method
    add("an object holding its own bound method", plain2)
    add("a method bound to a slotted object", (lambda o: [o.__eq__, o])(Slotted(1, 2)))
    add("a bound classmethod", Plain.make)
    add("the same classmethod twice", {"m": Plain.make, "n": [Plain.make]})
    add("a staticmethod and a class", [Plain.helper, Plain])
    add("type(None) and other builtins not in builtins", [type(None), type(...), type(NotImplemented), ...])
    add("None, Ellipsis, NotImplemented", [None, ..., NotImplemented])
    add("builtin functions and types", [len, print, int, dict, object, collections.OrderedDict])
    l1: list[Any] = []
    t1 = (l1,)
    l1.append(t1)
    add("a tuple that reaches itself through a list", t1)
    l2: list[Any] = []
    t2 = (l2, 1)
    l2.append({"t": t2})
    add("a tuple shared and in a cycle", [t2, t2, l2])
    l3: list[Any] = []
    m3: list[Any] = []
    t3 = (l3, m3)
    l3.append(t3)
    m3.append(t3)
    add("a tuple reached twice from inside", t3)
    p: list[Any] = []
    pair = Pair(p, 2)
    p.append(pair)
    add("a namedtuple in a cycle", pair)
    box = Boxed()
    box.content = [box]
    add("an object whose constructor argument holds it", box)
    d: dict[str, Any] = {}
    d["self"] = d
    add("a dict holding itself", d)
    od = collections.OrderedDict(a=[1])
    od["me"] = od
    add("an OrderedDict holding itself", [od, od])
    add(
        "a deque, a defaultdict, a Counter",
        [collections.deque([1, [2]]), collections.defaultdict(list, a=[1]), collections.Counter("abca")],
    )
    add(
        "dates, decimals, fractions, paths, uuid",
        [
            datetime.datetime(2020, 1, 1, 3),
            datetime.date(2020, 1, 2),
            datetime.timedelta(3),
            decimal.Decimal("1.5"),
            fractions.Fraction(1, 3),
            pathlib.PurePosixPath("/a/b"),
            uuid.UUID(int=5),
        ],
    )
    add("ranges, slices, complex, bytearray", [range(3), slice(1, 2, None), complex(1, -2), bytearray(b"ab")])
    add("big ints as keys and values", {2**70: "a", -(2**70): [2**70]})
    add("nested frozensets and sets of tuples", [frozenset([frozenset([1]), frozenset()]), {(1, 2), (3,)}])
    e: list[Any] = []
    add("empty containers shared", [e, e, (), {}, set(), frozenset()])
    arr = np.arange(3.0)
    add("one numpy array in many places", [arr, arr, {"x": arr}, (arr,)])
    add(
        "numpy scalars, dtypes, structured arrays",
        [
            np.float32(1.5),
            np.int8(-3),
            np.dtype("<f8"),
            np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")]),
            np.datetime64("2020-01-01"),
        ],
    )
    atom = Atom("Cu", np.zeros(3), ["x"])
    add("dataclasses sharing an array", [atom, Atom("Fe", atom.position)])
    s = Slotted(1, None)
    s.b = s
    add("a slotted object holding itself", s)
    add("an object with __getstate__/__setstate__", [WithState(3)] * 2)
    bag = Bag([1])
    bag.append(bag)
    add("a list subclass holding itself", bag)
    table = Table(a=1)
    table["me"] = table
    add("a dict subclass holding itself", table)
    add("keyword-built objects", Keyworded(1, b=[2]))
    add("enum members and flags", [Color.RED, Color.RED, Flag.A | Flag.B, Flag.A])
    add("a module-level singleton", [SENTINEL, SENTINEL])
    f1 = Frozen([1])
    add("frozen dataclasses sharing", [f1, Frozen(f1, f1.a)])
    add("a class object used as key", {Plain: 1, Node: [Node]})
    add("functions by name", [pathlib.Path.cwd, types.SimpleNamespace, np.sum])
    ns = types.SimpleNamespace(a=1)
    ns.me = ns
    add("a SimpleNamespace holding itself", ns)
    return cases


def _pyiron_cases() -> list[tuple[str, Any]]:
    import pyiron_workflow as pwf

    from storage_nodes.demo import harmonic_energy, random_positions

    wf = pwf.Workflow("parity")
    wf.positions = pwf.node(random_positions, n=4, seed=1)
    wf.energy = pwf.node(harmonic_energy, positions=wf.positions, k=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = wf.run()
    return [("a pyiron_workflow Run", run), ("a Run twice and a node", [run, run])]


HAND_CASES = _hand_cases() + _pyiron_cases()


def _same_as_pickle(obj: Any, path) -> None:
    want = graph_shape(pickle_roundtrip(obj))
    sn.save(obj, path)
    got = graph_shape(sn.load(path, version_policy="ignore"))
    assert got == want


def test_hand_written_corpus_matches_pickle(tmp_path):
    failures = []
    for i, (name, obj) in enumerate(HAND_CASES):
        try:
            _same_as_pickle(obj, tmp_path / f"c{i}.h5")
        except Exception as exc:  # collect all, report together
            failures.append(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
    assert not failures, "\n".join(failures)
    assert len(HAND_CASES) >= 40


def test_classmethod_and_builtins_identical(tmp_path):
    path = sn.save({"m": Plain.make, "none": type(None), "ell": type(...)}, tmp_path / "m.h5")
    back = sn.load(path)
    assert back["m"] == Plain.make and back["m"].__self__ is Plain and type(back["m"]) is types.MethodType
    assert back["none"] is type(None) and back["ell"] is type(...)
    assert sn.inspect(path).root.children[0].type == "method"


def test_bound_method_is_rebound_without_running_code(tmp_path):
    obj = Plain([1, 2])
    path = sn.save({"m": obj.method, "obj": obj}, tmp_path / "b.h5")
    back = sn.load(path)
    assert back["m"].__self__ is back["obj"] and back["m"]() == [1, 2]
    assert sn.inspect(path).root.children[0].type == "method"
    try:
        sn.load(path, safe=True)
    except sn.UnsafeLoadError as exc:
        assert "method" in str(exc) and exc.key == "m"
    else:
        raise AssertionError("safe=True loaded a bound method")
    import zlib

    import h5py
    import msgpack

    with h5py.File(path, "r+") as f:  # a file naming an attribute that is not a plain function
        index = msgpack.unpackb(zlib.decompress(f["index"][()].tobytes()), strict_map_key=False)
        index["root"]["items"][0][1]["n"] = "__class__"
        del f["index"]
        f.create_dataset("index", data=np.frombuffer(zlib.compress(msgpack.packb(index)), dtype=np.uint8))
    try:
        sn.load(path)
    except sn.UnsafeLoadError as exc:
        assert "__class__" in str(exc)
    else:
        raise AssertionError("loaded a method the class does not define")


# -- generated object graphs ------------------------------------------------------------------

_ATOMS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.binary(max_size=5),
)
_MUTABLE = ("list", "dict", "node", "slotted", "objarray", "odict", "bag", "set")
_IMMUTABLE = ("tuple", "frozenset", "pair", "frozen")


@st.composite
def object_graphs(draw: Any) -> Any:
    """Up to 8 objects whose items are atoms or references to any object (forward and
    backward: cycles), or, for immutable ones, to mutable objects and earlier immutable ones
    (an immutable object cannot be built from itself). Hashable members only in sets and keys."""
    kinds = draw(st.lists(st.sampled_from(_MUTABLE + _IMMUTABLE), min_size=1, max_size=8))
    n = len(kinds)
    made: list[Any] = [None] * n

    def hashable(x: Any) -> bool:
        try:
            hash(x)
        except TypeError:
            return False
        return True

    for i, kind in enumerate(kinds):  # mutable objects first, empty
        if kind in ("list", "bag"):
            made[i] = [] if kind == "list" else Bag()
        elif kind == "dict":
            made[i] = {}
        elif kind == "odict":
            made[i] = collections.OrderedDict()
        elif kind == "node":
            made[i] = Node(f"n{i}")
        elif kind == "slotted":
            made[i] = Slotted(None, None)
        elif kind == "objarray":
            made[i] = np.empty(draw(st.integers(1, 3)), dtype=object)
        elif kind == "set":
            made[i] = set()

    def item(i: int, immutable: bool) -> Any:
        choices = [j for j in range(n) if made[j] is not None and (not immutable or kinds[j] in _MUTABLE or j < i)]
        if choices and draw(st.booleans()):
            return made[draw(st.sampled_from(choices))]
        return draw(_ATOMS)

    for i, kind in enumerate(kinds):  # immutable objects in order, from what exists
        if kind in _IMMUTABLE:
            items = [item(i, True) for _ in range(draw(st.integers(0, 3)))]
            if kind == "tuple":
                made[i] = tuple(items)
            elif kind == "frozenset":
                made[i] = frozenset(x for x in items if hashable(x) and type(x) is not float)
            elif kind == "pair":
                made[i] = Pair(*[*items, None, None][:2])
            else:
                made[i] = Frozen(*[*items, None][:1])
    for i, kind in enumerate(kinds):  # then fill the mutable ones: anything, cycles included
        if kind not in _MUTABLE:
            continue
        obj = made[i]
        count = draw(st.integers(0, 3))
        if kind in ("list", "bag"):
            obj.extend(item(i, False) for _ in range(count))
        elif kind in ("dict", "odict"):
            for _ in range(count):
                key = item(i, False)
                if not hashable(key) or type(key) is float:
                    key = draw(st.text(max_size=3))
                obj[key] = item(i, False)
        elif kind == "node":
            obj.children = [item(i, False) for _ in range(count)]
            obj.parent = item(i, False)
        elif kind == "slotted":
            obj.a, obj.b = item(i, False), item(i, False)
        elif kind == "objarray":
            for j in range(obj.shape[0]):
                obj[j] = item(i, False)
        elif kind == "set":  # atoms only: iteration order of id-hashed members varies
            obj.update(draw(st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=3)))
    return made[0] if draw(st.booleans()) else made


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(graph=object_graphs())
def test_generated_object_graphs_match_pickle(tmp_path, graph):
    try:
        pickle_roundtrip(graph)
    except Exception:
        # pickle itself cannot round-trip it (e.g. a frozen dataclass hashed inside a frozenset
        # before its state is set, through a cycle): outside the parity rule. The archive must
        # still answer with a typed error or a value, never crash.
        try:
            sn.load(sn.save(graph, tmp_path / "g.h5"), version_policy="ignore")
        except sn.StorageError:
            pass
        assume(False)
    _same_as_pickle(graph, tmp_path / "g.h5")


def test_one_container_in_two_packed_blobs_stays_one_object(tmp_path):
    """Found by the generated corpus: two small plain lists (an OrderedDict's item pairs)
    holding the same list were packed as two blobs, and the list came back twice."""
    shared: list = []
    for obj in (
        collections.OrderedDict([(None, shared), ("", shared)]),
        [[1, shared], [2, shared]],
        {"x": [1, shared], "y": (2, shared)},
    ):
        _same_as_pickle(obj, tmp_path / "shared.h5")
