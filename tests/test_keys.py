"""storage_nodes.keys: /-separated keys, escaping, navigation and "did you mean"."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import storage_nodes as sn
from storage_nodes.keys import escape, join, navigate, split, suggest, unescape


@given(st.lists(st.text(min_size=1).filter(lambda s: "\x00" not in s), max_size=5))
def test_join_then_split_gives_the_segments_back(segments):
    assert split(join(*segments)) == segments


@given(st.text())
def test_unescape_undoes_escape(segment):
    assert unescape(escape(segment)) == segment
    assert "/" not in escape(segment)


@pytest.mark.parametrize("root", [None, "", "/", "///"])
def test_the_root_has_no_segments(root):
    assert split(root) == []


@pytest.mark.parametrize("bad", ["a//b", "a\x00b"])
def test_bad_keys_are_typed_errors(bad):
    with pytest.raises(sn.InvalidArgumentError):
        split(bad)
    with pytest.raises(sn.InvalidArgumentError):
        split(3)  # type: ignore[arg-type]


@dataclasses.dataclass
class _Run:
    energy: float
    forces: np.ndarray


def test_navigate_through_mappings_sequences_arrays_and_attributes():
    obj = {"runs": [_Run(1.5, np.arange(6.0).reshape(2, 3))], 3: "int key", "a/b": "slash"}
    assert navigate(obj, "runs/0/energy") == 1.5
    assert navigate(obj, "runs/0/forces/1").tolist() == [3.0, 4.0, 5.0]
    assert navigate(obj, "3") == "int key"
    assert navigate(obj, join("a/b")) == "slash"


def test_a_missing_segment_names_where_it_stopped_and_suggests():
    with pytest.raises(sn.KeyNotFoundError) as err:
        navigate({"outputs": {"forces": 1}}, "outputs/force", path="r.h5")
    text = str(err.value)
    assert "outputs (dict) has no entry 'force'" in text and "did you mean 'forces'" in text
    assert err.value.key == "outputs/force" and err.value.path == "r.h5"


def test_suggest_knows_dotted_keys_and_stays_quiet_without_a_near_miss():
    assert "outputs/forces" in suggest("outputs.forces", ["outputs"])
    assert suggest("zzz", ["energy"]) == ""
