"""Property tests: generated nested data round-trips through every backend."""

from __future__ import annotations

import numpy as np
import pytest
from _compare import assert_same
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import storage_nodes as sn

BACKENDS = {"pickle": ".pkl", "cloudpickle": ".cpkl", "json": ".json", "h5": ".h5"}

_dtypes = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="="),
    hnp.unsigned_integer_dtypes(endianness="="),
    hnp.floating_dtypes(endianness="=", sizes=(32, 64)),
    hnp.complex_number_dtypes(endianness="="),
    hnp.unicode_string_dtypes(endianness="=", min_len=1, max_len=4),
    hnp.byte_string_dtypes(endianness="=", min_len=1, max_len=4),
    hnp.datetime64_dtypes(endianness="="),
)
arrays = _dtypes.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)))
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # any size
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),  # unicode, including empty
    st.binary(),
    arrays,
)
data = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=6), children, max_size=4),
    ),
    max_leaves=12,
)


def _same(a, b) -> None:
    if isinstance(a, np.ndarray) and a.dtype.kind == "S":
        # numpy drops trailing NULs of bytes elements on access in any case
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
        return
    if isinstance(a, np.ndarray) and a.dtype.kind == "M":
        assert a.dtype == b.dtype and np.array_equal(a.view("i8"), b.view("i8"))
        return
    if isinstance(a, np.ndarray) and a.ndim < 2:
        a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    else:
        assert_same(a, b)


def _roundtrip(tmp_path_factory, backend, value) -> None:
    d = tmp_path_factory.mktemp(backend)
    path = sn.save({"value": value}, d / f"p{BACKENDS[backend]}")
    _same(value, sn.load(path)["value"])


common = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@common
@given(value=data)
def test_generated_data_round_trips(tmp_path_factory, backend, value):
    _roundtrip(tmp_path_factory, backend, value)
