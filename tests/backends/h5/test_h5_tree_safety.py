"""backends/h5/tree.py: the fast search for refused nodes answers as the keyed walk does."""

from __future__ import annotations

import collections
import datetime
import fractions
import functools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _objects import Crystal, Point
from hypothesis import given, settings
from hypothesis import strategies as st

import storage_nodes as sn
from storage_nodes.backends.h5 import reader, tree


def _keyed_answer(node: Any, path: str, classes: list[list[str]]) -> tuple[str, Any] | None:
    """What unsafe_node answered before it searched without keys first."""
    for n, p in tree.keyed_walk(node, path):
        if tree._refused(n, classes):
            return p, n
    return None


def _index(tmp_path: Path, value: Any) -> dict[str, Any]:
    path = sn.save(value, tmp_path / "v.h5")
    with reader.open_reader(Path(path)) as r:
        return r.index


CORPUS = {
    "plain": {"a": [1, 2.5, "x"], "b": (None, b"y"), 3: {4, 5}, (1, 2): frozenset({"z"})},
    "object in a list": [1, {"p": Point(1.0, 2.0)}, 3],
    "class as a dict key": {Crystal: 1, datetime.date(2026, 1, 2): 2},
    "class and function": [Crystal, functools.reduce, len],
    "bound method": {"m": Crystal("c", np.eye(3)).__eq__},
    "ordered dict": collections.OrderedDict(a=1, b=[Point(1.0, 1.0)]),
    "safe types": [pd.DataFrame({"x": [1.0, 2.0]}), datetime.date(2026, 1, 1), fractions.Fraction(1, 3)],
    "shared": (lambda shared: [shared, {"again": shared}])([1, 2, 3]),
    "arrays": {"a": np.arange(100_000), "b": [np.zeros(3)] * 2},
}


@pytest.mark.parametrize("name", list(CORPUS))
def test_same_answer_as_the_keyed_walk(tmp_path: Path, name: str):
    index = _index(tmp_path, CORPUS[name])
    for path in ("", "sub"):
        got = tree.unsafe_node(index["root"], path, index["classes"])
        want = _keyed_answer(index["root"], path, index["classes"])
        assert (got is None) == (want is None)
        if got is not None and want is not None:
            assert got[0] == want[0] and got[1] is want[1]


_LEAVES = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.text(max_size=3), st.none(), st.just(Point(1.0, 2.0)),
    st.just(len), st.just(datetime.timedelta(seconds=3)),
)  # fmt: skip
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=3), st.integers()), inner, max_size=4),
        st.tuples(inner, inner),
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(value=_VALUES)
def test_same_answer_on_random_nests(tmp_path_factory: pytest.TempPathFactory, value: Any):
    index = _index(tmp_path_factory.mktemp("nest"), value)
    got = tree.unsafe_node(index["root"], "", index["classes"])
    want = _keyed_answer(index["root"], "", index["classes"])
    assert (got is None) == (want is None)
    if got is not None and want is not None:
        assert got[0] == want[0] and got[1] is want[1]
