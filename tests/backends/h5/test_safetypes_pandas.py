"""pandas values stored natively in the h5 archive: exact round trips (dtypes and index types
included), ``safe=True`` loads, one column loaded alone by key, ``inspect`` without pandas
objects built, and hypothesis over DataFrames."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import pandas as hpd

import storage_nodes as sn
from storage_nodes.backends.h5 import reader


def _frame() -> pd.DataFrame:
    n = 6
    return pd.DataFrame(
        {
            "f8": np.linspace(0, 1, n),
            "f4": np.arange(n, dtype=np.float32),
            "i8": np.arange(n, dtype=np.int64) - 3,
            "u2": np.arange(n, dtype=np.uint16),
            "b": np.arange(n) % 2 == 0,
            "str": ["a", "bé", None, "", "ü" * 3, "x"],
            "string": pd.array(["p", None, "q", "r", "s", "t"], dtype="string"),
            "string_py": pd.array(["p", None, "q", "\ud800", "s", "t"], dtype=pd.StringDtype("python")),
            "cat": pd.Categorical(["u", "v", "u", None, "v", "u"], categories=["v", "u"], ordered=True),
            "Int64": pd.array([1, None, 3, 4, None, 6], dtype="Int64"),
            "UInt8": pd.array([1, None, 3, 4, 5, 6], dtype="UInt8"),
            "Float64": pd.array([0.5, None, np.nan, 4, 5, 6], dtype="Float64"),
            "boolean": pd.array([True, None, False, True, True, False], dtype="boolean"),
            "when": pd.date_range("2024-01-01", periods=n, freq="h"),
            "when_tz": pd.date_range("2024-03-31", periods=n, freq="30min", tz="Europe/Berlin"),
            "when_utc": pd.date_range("2024-03-31", periods=n, freq="D", tz="UTC"),
            "delta": pd.to_timedelta(np.arange(n), unit="s"),
            "obj": np.array([1, "a", None, 2.5, (1, 2), b"x"], dtype=object),
            3: np.arange(n) * 1.5,
            (1, "t"): np.ones(n),
        },
        index=pd.Index(np.arange(n) * 10, name="row"),
    )


def _check(back, value) -> None:
    assert type(back) is type(value)
    if isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(
            back,
            value,
            check_exact=True,
            check_index_type=True,
            check_column_type=True,
            check_flags=True,
            check_freq=True,
        )
        assert list(back.dtypes) == list(value.dtypes) and back.attrs == value.attrs
        _check(back.index, value.index)
        _check(back.columns, value.columns)
    elif isinstance(value, pd.Series):
        pd.testing.assert_series_equal(back, value, check_exact=True, check_index_type=True, check_freq=True)
        assert back.attrs == value.attrs
        _check(back.index, value.index)
    elif isinstance(value, pd.Index):
        pd.testing.assert_index_equal(
            back, value, exact=True, check_exact=True, check_names=True, check_categorical=True
        )
        assert back.dtype == value.dtype and back.names == value.names
        if hasattr(value, "freq"):
            assert back.freq == value.freq
    else:
        pd.testing.assert_extension_array_equal(back, value, check_exact=True)


def test_a_frame_of_every_supported_column_type_round_trips_exactly_with_safe_true(tmp_path):
    df = _frame()
    df.attrs = {"units": {"f8": "eV"}}
    path = sn.save({"df": df}, tmp_path / "df.h5")
    _check(sn.load(path, safe=True)["df"], df)


INDEXES = {
    "range": pd.RangeIndex(3, 30, 3, name="r"),
    "range_plain": pd.RangeIndex(9),
    "ints": pd.Index([5, 1, 5], dtype="int32", name=("tuple", 1)),
    "floats": pd.Index([0.5, np.nan, -0.0]),
    "strings": pd.Index(["a", "b", None]),
    "objects": pd.Index(["a", 1, None], dtype=object),
    "datetimes": pd.date_range("2020-01-01", periods=4, freq="W-MON", name="w"),
    "datetimes_tz": pd.DatetimeIndex(["2020-01-01 10:00", None], tz="America/New_York"),
    "timedeltas": pd.timedelta_range("1 day", periods=3, freq="6h"),
    "categorical": pd.CategoricalIndex(["x", "y", "x"], categories=["y", "x"], name="c"),
    "multi": pd.MultiIndex.from_product([[1, 2], ["a", "b"]], names=["n", None]),
    "multi_with_missing": pd.MultiIndex.from_arrays([[1, None, 3], ["a", "b", None]]),
    "bools": pd.Index([True, False]),
    "empty": pd.Index([], dtype="float64"),
}


@pytest.mark.parametrize("name", list(INDEXES))
def test_each_index_type_round_trips_alone_and_under_a_frame_and_a_series(tmp_path, name):
    ix = INDEXES[name]
    df = pd.DataFrame({"v": np.arange(len(ix), dtype=float), "w": ["s"] * len(ix)}, index=ix)
    series = pd.Series(np.arange(len(ix)), index=ix, name=name)
    path = sn.save({"ix": ix, "df": df, "s": series, "t": df.T if len(ix) < 20 else df}, tmp_path / "ix.h5")
    back = sn.load(path, safe=True)
    _check(back["ix"], ix)
    _check(back["df"], df)
    _check(back["s"], series)
    _check(back["t"], df.T if len(ix) < 20 else df)


def test_column_names_that_are_not_strings_duplicated_or_reserved(tmp_path):
    df = pd.DataFrame(np.arange(12).reshape(3, 4), columns=["a", "a", "__index__", 0])
    wide = pd.DataFrame(np.eye(3), columns=pd.MultiIndex.from_tuples([("x", 1), ("x", 2), ("y", 1)]))
    empty = pd.DataFrame(index=pd.RangeIndex(2))
    nothing = pd.DataFrame()
    path = sn.save({"df": df, "wide": wide, "empty": empty, "nothing": nothing}, tmp_path / "names.h5")
    back = sn.load(path, safe=True)
    for name, value in (("df", df), ("wide", wide), ("empty", empty), ("nothing", nothing)):
        _check(back[name], value)
    listing = sn.inspect(path)
    assert listing["df"].info["columns"] == ["a", "#1", "#2", "0"]  # the keys of the columns
    assert sn.load(path, key="df/#2", safe=True).tolist() == [2, 6, 10]


def test_one_column_loads_alone_by_key_reading_only_its_dataset(tmp_path, monkeypatch):
    n = 100_000
    df = pd.DataFrame({f"c{i}": np.arange(n, dtype=np.float64) * i for i in range(5)})
    df["names"] = pd.array([f"n{i}" for i in range(n)], dtype="str")
    path = sn.save({"df": df}, tmp_path / "cols.h5")
    read: list[str] = []
    original = reader.Reader.dataset

    def dataset(self, name, shape, dtype):
        read.append(name)
        return original(self, name, shape, dtype)

    monkeypatch.setattr(reader.Reader, "dataset", dataset)
    column = sn.load(path, key="df/c3", safe=True)
    assert isinstance(column, np.ndarray) and np.array_equal(column, df["c3"].to_numpy())
    assert len(read) == 1  # its own dataset and nothing else
    read.clear()
    names = sn.load(path, key="df/names", safe=True)
    pd.testing.assert_extension_array_equal(names, df["names"].array)
    assert len(read) == 2  # the offsets and the bytes of that column
    assert sn.load(path, key="df/names/offsets").shape == (n + 1,)


def test_inspect_shows_shape_columns_and_dtypes_from_the_index_alone(tmp_path, monkeypatch):
    df = _frame()
    path = sn.save({"df": df}, tmp_path / "df.h5")
    listing = sn.inspect(path)
    entry = listing["df"]
    assert entry.type == "DataFrame" and entry.module == "pandas" and entry.shape == df.shape
    assert entry.info["columns"] == [str(c) for c in df.columns]
    assert entry.info["dtypes"] == [str(t) for t in df.dtypes]
    assert "columns f8: float64, f4: float32" in str(listing)
    assert listing["df/cat"].type == "Categorical" and listing["df/when_tz"].dtype == "datetime64[us, Europe/Berlin]"


def test_series_index_and_arrays_stand_alone(tmp_path):
    values = {
        "series": pd.Series(pd.array([1, None], dtype="Int16"), index=["a", "b"], name=7),
        "cat": pd.Categorical(["a", "b", "a"]),
        "ints": pd.array([1, None, 2], dtype="Int32"),
        "strs": pd.array(["a", None], dtype="string"),
        "tz": pd.array(pd.date_range("2020", periods=2, tz="UTC")),
    }
    path = sn.save(values, tmp_path / "misc.h5")
    back = sn.load(path, safe=True)
    for name, value in values.items():
        _check(back[name], value)


def test_shared_frames_stay_one_object(tmp_path):
    df = _frame()
    path = sn.save({"a": df, "b": df, "both": [df, df]}, tmp_path / "shared.h5")
    back = sn.load(path, safe=True)
    assert back["a"] is back["b"] is back["both"][0] is back["both"][1]


def test_raw_gives_the_columns_as_arrays_without_pandas_objects(tmp_path):
    df = pd.DataFrame({"x": [1.5, 2.5], "s": ["a", "b"]})
    back = sn.load(sn.save(df, tmp_path / "raw.h5"), raw=True)
    assert isinstance(back, sn.Raw) and back.type == "pandas.DataFrame"
    assert back.meta["columns"] == ["x", "s"] and np.array_equal(back["x"], [1.5, 2.5])
    assert back["s"].type == "pandas.StringArray" and bytes(back["s"]["data"]) == b"ab"


_COLUMNS = [
    hpd.column("f", dtype=float),
    hpd.column("i", dtype=np.int32),
    hpd.column("b", dtype=bool),
    hpd.column("t", dtype="datetime64[ns]"),
    hpd.column("s", elements=st.one_of(st.none(), st.text(max_size=5))),
    hpd.column(7, elements=st.sampled_from(["x", "y"])),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    df=hpd.data_frames(
        _COLUMNS,
        index=st.one_of(
            hpd.range_indexes(max_size=8),
            hpd.indexes(dtype=np.int64, max_size=8),
            hpd.indexes(elements=st.text(max_size=3), max_size=8),
        ),
    ),
    as_category=st.booleans(),
)
def test_hypothesis_frames_round_trip_exactly(tmp_path, df, as_category):
    if as_category:
        df[7] = df[7].astype("category")
    path = sn.save({"df": df}, tmp_path / "h.h5")
    _check(sn.load(path, safe=True)["df"], df)


def test_date_columns_of_python_objects_stay_objects(tmp_path):
    df = pd.DataFrame({"d": np.array([dt.date(2020, 1, 1), dt.date(2021, 2, 3)], dtype=object)})
    back = sn.load(sn.save(df, tmp_path / "dates.h5"), safe=True)
    _check(back, df)
    assert type(back["d"].iloc[0]) is dt.date
