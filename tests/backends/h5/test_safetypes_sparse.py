"""``scipy.sparse`` matrices and arrays stored natively in the h5 archive (format and
component arrays), loaded with ``safe=True`` through scipy's constructors with a full format check."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import storage_nodes as sn


def _values() -> dict:
    m = sp.random(60, 40, density=0.1, format="csr", random_state=4, dtype=np.float32)
    out = {}
    for fmt in ("csr", "csc", "coo", "bsr", "dia"):
        out[f"{fmt}_matrix"] = getattr(sp, f"{fmt}_matrix")(m if fmt != "dia" else sp.eye(5, k=1))
        out[f"{fmt}_array"] = getattr(sp, f"{fmt}_array")(m if fmt != "dia" else sp.eye(5, k=-2))
    out["complex"] = sp.csr_array(np.array([[0, 1j], [2, 0]]))
    out["empty"] = sp.csr_matrix((0, 3))
    return out


def test_each_format_round_trips_exactly_with_safe_true(tmp_path):
    values = _values()
    path = sn.save(values, tmp_path / "sparse.h5")
    back = sn.load(path, safe=True)
    for name, value in values.items():
        got = back[name]
        assert type(got) is type(value) and got.dtype == value.dtype and got.shape == value.shape, name
        assert (got != value).nnz == 0, name
        assert np.array_equal(got.toarray(), value.toarray()), name


def test_inspect_and_the_components_by_key(tmp_path):
    m = sp.csr_matrix(np.array([[0, 2.0], [3.0, 0]]))
    path = sn.save({"m": m}, tmp_path / "m.h5")
    entry = sn.inspect(path)["m"]
    assert entry.type == "csr_matrix" and entry.shape == (2, 2) and entry.info["nnz"] == 2
    assert np.array_equal(sn.load(path, key="m/indptr", safe=True), m.indptr)


@pytest.mark.parametrize("fmt", ["lil", "dok"])
def test_lil_and_dok_are_stored_the_generic_way(tmp_path, fmt):
    m = sp.eye(3, format=fmt)
    path = sn.save({"m": m}, tmp_path / "g.h5")
    assert (sn.load(path)["m"] != m).nnz == 0
    with pytest.raises(sn.UnsafeLoadError):
        sn.load(path, safe=True)
