"""``sn.open``: the lazy, Mapping-shaped handle onto a stored file's tree (storage_nodes/archive.py)."""

from __future__ import annotations

import pytest

import storage_nodes as sn


def test_open_of_a_pickle_says_how_to_reach_below_what_its_header_lists(tmp_path):
    """A pickle header describes the top levels only: below them, open() says that
    load(key=...) reads the entry (by unpickling), instead of guessing by unpickling."""
    path = sn.save({"a": {"b": {"c": 1}}}, tmp_path / "deep.pkl")
    assert sn.load(path, key="a/b/c") == 1
    arc = sn.open(path)
    assert arc["a"].entry.length == 1 and arc["a"].entry.truncated == 1  # "... 1 more"
    with pytest.raises(sn.UnsupportedOperationError, match=r"load\(\.\.\., key='a/b'\) reads it"):
        arc["a/b"]
