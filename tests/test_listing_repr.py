"""What a REPL shows for a Listing or an Entry: one line, not every field of every child."""

from __future__ import annotations

import numpy as np
import pytest

import storage_nodes as sn


def test_listing_and_entry_reprs_are_one_short_line(tmp_path):
    data = {"forces": np.zeros((4, 3)), "runs": [{"i": i, "x": np.ones(2)} for i in range(50)]}
    path = sn.save(data, tmp_path / "r.h5", metadata={"T": 300})
    listing = sn.inspect(path)
    text = repr(listing)
    assert text == f"<Listing of {path} [h5]: dict, len=2; print() it for the tree>"
    assert repr(listing["forces"]) == "<Entry 'forces': ndarray (numpy), shape=(4, 3), dtype=float64, 96 B>"
    assert repr(sn.inspect(path, key="runs")).startswith(f"<Listing of {path} [h5, key 'runs']: list, len=50")
    assert "\n" not in repr(listing.root) and len(repr(listing.root)) < 80
    assert "└── 0..49: dict(i, x) x 50\n" in str(listing)  # print() summarises the run
    assert listing.text(full=True).count("\n") > 50  # every entry on request


def test_a_shared_reference_says_which_entry_it_shares(tmp_path):
    x, d = np.zeros(3), {"k": 1}
    listing = sn.inspect(sn.save({"a": x, "b": x, "c": d, "e": d}, tmp_path / "s.h5"))
    assert "├── b: shared reference, the object at a\n" in str(listing)
    assert str(listing).endswith("└── e: shared reference, the object at c")
    assert sn.load(tmp_path / "s.h5", key="b") is not None


def test_a_misspelt_listing_key_gets_a_suggestion(tmp_path):
    listing = sn.inspect(sn.save({"outputs": {"forces": [1.0], "energy": 2.0}}, tmp_path / "r.json"))
    with pytest.raises(sn.KeyNotFoundError, match=r"\(did you mean 'outputs/forces'\?\)"):
        listing["outputs/force"]
    with pytest.raises(sn.KeyNotFoundError, match=r"keys are /-separated: did you mean 'outputs/energy'"):
        listing["outputs.energy"]
