"""Nested plain data every backend must round-trip, and deep equality that understands numpy
arrays, NaN and -0.0 (imported by tests as ``from _compare import assert_same``)."""

from __future__ import annotations

import numpy as np


def nested_data() -> dict:
    """Nested plain data every backend must round-trip."""
    return {
        "energy": -3.25,
        "count": 2**70,
        "flag": True,
        "nothing": None,
        "name": "Cu-3 ✓",
        "raw": b"\x00\x01binary",
        "pair": (1, "two", 3.0),
        "items": [1, [2, [3, {"deep": "yes"}]]],
        "arrays": {
            "f8": np.linspace(0, 1, 7),
            "i4": np.arange(12, dtype=np.int32).reshape(3, 4),
            "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
            "c16": np.array([1 + 2j, np.nan - 1j]),
            "bool": np.array([True, False]),
            "str": np.array(["a", "bcd"]),
            "empty": np.zeros((0, 3)),
        },
        "scalars": [np.float32(1.5), np.int64(-7), np.bool_(True)],
        "specials": [float("nan"), float("inf"), -0.0],
        "with/slash": 1,
        3: "int key",
    }


def assert_same(a, b) -> None:
    """Deep equality that understands numpy arrays, NaN and -0.0."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        assert a.flags.f_contiguous == b.flags.f_contiguous
    elif isinstance(a, dict):
        assert list(a.keys()) == list(b.keys())
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    elif isinstance(a, float):
        assert a == b and np.copysign(1, a) == np.copysign(1, b)
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a == b
    else:
        assert a == b
