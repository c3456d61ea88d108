"""docs/catalog.md pins the bytes of value digests and call digests: its recipe (hashlib,
json and struct alone) gives the documented worked examples, and the same digests as
storage_nodes for plain values, arrays and calls."""

from __future__ import annotations

import math
import re
import struct

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from storage_nodes.catalog import digest as sn_digest
from tests._docs import DOCS, section_namespace

PAGE = DOCS / "catalog.md"
RECIPE = section_namespace(PAGE, "### The digests, byte by byte")
SOURCE = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _documented() -> dict[str, str]:
    """The worked examples' table: value text -> digest."""
    text = PAGE.read_text()
    part = text[text.index("Worked examples (value digests") :]
    return dict(re.findall(r"^\| `([^`]+)`[^|]*\| `([0-9a-f]{64})` \|$", part, flags=re.M))


def _array() -> str:
    return RECIPE["array_digest"]("<f8", "[('', '<f8')]", "(2,)", struct.pack("<2d", 1.5, -2.0))


def test_the_recipe_gives_the_documented_examples():
    table = _documented()
    digest = RECIPE["digest"]
    assert table["1"] == digest(1)
    assert table["-1.0"] == digest(-1.0)
    assert table['"x"'] == digest("x")
    assert table['{"a": 1, "b": [1, "x"]}'] == digest({"a": 1, "b": [1, "x"]})
    assert table["3"] == digest(3)
    assert table["numpy.array([1.5, -2.0])"] == _array()
    call = RECIPE["call_digest"]("mylib.nodes.relax", "1.2.0", SOURCE, {"n": digest(3), "grid": _array()})
    assert call in PAGE.read_text().split("is\n`")[-1]


def test_the_examples_are_what_storage_nodes_computes():
    table = _documented()
    assert table["1"] == sn_digest.digest(1) and table["-1.0"] == sn_digest.digest(-1.0)
    assert table['"x"'] == sn_digest.digest("x")
    assert table['{"a": 1, "b": [1, "x"]}'] == sn_digest.digest({"a": 1, "b": [1, "x"]})
    assert table["numpy.array([1.5, -2.0])"] == sn_digest.digest(np.array([1.5, -2.0]))
    from storage_nodes.catalog import catalog

    inputs = {"n": sn_digest.digest(3), "grid": sn_digest.digest(np.array([1.5, -2.0]))}
    assert RECIPE["call_digest"]("mylib.nodes.relax", "1.2.0", SOURCE, inputs) == catalog.call_digest(
        "mylib.nodes.relax", "1.2.0", SOURCE, inputs
    )


plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(plain)
def test_the_recipe_matches_storage_nodes_for_plain_values(value):
    assert RECIPE["digest"](value) == sn_digest.digest(value)


@given(st.lists(st.floats(allow_nan=True), max_size=6))
def test_the_recipe_matches_for_float_arrays(values):
    a = np.array(values, dtype="<f8")
    data = b"".join(struct.pack("<d", math.nan if v != v else v) for v in values)
    assert RECIPE["array_digest"]("<f8", repr(a.dtype.descr), repr(a.shape), data) == sn_digest.digest(a)
