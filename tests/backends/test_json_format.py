"""Read a json file with the standard library and numpy alone, following docs/format.md."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

import storage_nodes as sn


def _decode(v):
    """The `__sn__` tags exactly as the table in docs/format.md describes them."""
    if isinstance(v, list):
        return [_decode(x) for x in v]
    if not isinstance(v, dict):
        return v
    if "__sn__" not in v:
        return {k: _decode(x) for k, x in v.items()}
    tag = v["__sn__"]
    if tag in ("tuple", "set", "frozenset"):
        return {"tuple": tuple, "set": set, "frozenset": frozenset}[tag](_decode(x) for x in v["items"])
    if tag == "bytes":
        return base64.b64decode(v["base64"])
    if tag == "float":
        return float(v["value"])
    if tag == "complex":
        return complex(_decode(v["real"]), _decode(v["imag"]))
    if tag == "dict":
        return {_decode(k): _decode(x) for k, x in v["items"]}
    assert tag in ("ndarray", "npscalar"), tag
    if isinstance(v["dtype"], list):  # structured: a descr list and the raw bytes
        dtype = np.lib.format.descr_to_dtype([tuple(d) for d in v["dtype"]])
        arr = np.frombuffer(base64.b64decode(v["base64"]), dtype=dtype).reshape(v["shape"], order=v["order"])
    else:
        dtype = np.dtype(v["dtype"])
        data = v["data"]
        if dtype.kind == "c":
            data = [complex(_decode(r), _decode(i)) for r, i in data]
        elif dtype.kind == "S":
            data = [base64.b64decode(x) for x in data]
        elif dtype.kind in "Mm":
            data = np.array(data, dtype="<i8").view(dtype)
        else:
            data = [_decode(x) for x in data]
        if dtype.kind == "O":
            arr = np.empty(len(data), dtype=object)
            arr[:] = data
        else:
            arr = np.array(data, dtype=dtype)
        arr = arr.reshape(v["shape"], order=v["order"])
    return arr[()] if tag == "npscalar" else arr


def test_every_tag_reads_following_the_spec(tmp_path):
    data = {
        "tuple": (1, "a"),
        "set": {1},
        "frozenset": frozenset({"f"}),
        "bytes": b"\x00ab",
        "nan": float("nan"),
        "complex": complex(1, float("inf")),
        1: "an int key",
        "__sn__": "a key that looks like a tag",
        "f8": np.arange(6.0).reshape(2, 3),
        "fortran": np.asfortranarray(np.arange(6).reshape(2, 3)),
        "nonfinite": np.array([np.nan, -np.inf]),
        "c16": np.array([1 + 2j]),
        "U": np.array(["ab", "c"]),
        "S": np.array([b"ab"]),
        "M8": np.array(["2020-01-01", "NaT"], dtype="M8[D]"),
        "m8": np.array([1], dtype="m8[s]"),
        "O": np.array([1, "a", None], dtype=object),
        "structured": np.zeros(2, dtype=[("a", ">i4"), ("b", "<f8")]),
        "big_endian": np.array([1, 2], dtype=">i4"),
        "f4": np.float32(2.5),
    }
    path = sn.save(data, tmp_path / "tags.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert next(iter(doc)) == "storage_nodes" and doc["storage_nodes"]["format"] == "storage_nodes-json"
    back = _decode(doc["data"])
    ref = sn.load(path)
    assert list(back) == list(ref) == list(data)
    for key, value in data.items():
        if isinstance(value, np.ndarray):
            assert back[key].dtype == value.dtype and back[key].shape == value.shape, key
            assert back[key].tobytes() == value.tobytes() or key == "O", key
        elif key == "nan":
            assert np.isnan(back[key])
        else:
            assert back[key] == value and type(back[key]) is type(value), key
    assert list(back["O"]) == [1, "a", None] and back["fortran"].flags.f_contiguous


@pytest.mark.parametrize(
    "header, error, match",
    [
        ({"format_version": 99}, sn.StorageError, "json format 99; this storage_nodes reads up to 2: upgrade it"),
        ({"format_version": "1"}, sn.StorageError, "json format '1'"),
        ({"format": "other-json"}, sn.CorruptFileError, "format 'other-json', not 'storage_nodes-json'"),
    ],
)
def test_an_unknown_format_or_version_is_refused_as_h5_refuses_it(tmp_path, header, error, match):
    """The spec says readers refuse versions they do not know: the same error classes as the
    h5 backend (a newer version: StorageError "upgrade it"; another format: CorruptFileError)."""
    path = sn.save({"a": 1}, tmp_path / "v.json")
    doc = json.loads(path.read_text())
    doc["storage_nodes"].update(header)
    path.write_text(json.dumps(doc))
    before = path.read_bytes()
    for call in (lambda: sn.load(path), lambda: sn.inspect(path)):
        with pytest.raises(error, match=match) as info:
            call()
        assert type(info.value) is error and info.value.path == str(path)
    assert path.read_bytes() == before
