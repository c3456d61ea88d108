"""Safe types of pandas: ``DataFrame``, ``Series``, the index types and pandas' own arrays.

A DataFrame is stored as one part per column (its values: a numpy array, stored like any
array, or one of pandas' arrays below), plus ``__index__`` and ``__columns__`` (the labels,
as an Index). So ``load(path, key="df/energy")`` reads that column alone. Nothing here
imports pandas until a pandas value is met (saving) or rebuilt (loading); rebuilding uses
pandas' public constructors only. The layout of each type is in ``docs/format.md``.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .registry import Encoded, Meta, SafeType

__all__ = ["install"]

#: the names of a DataFrame's own parts; a column whose str() is one of them is named ``#<position>``
_RESERVED = frozenset({"__index__", "__columns__", "__attrs__"})
#: the nullable (masked) dtypes and the numpy dtype of their data
_MASKED = {
    **{f"Int{b}": f"int{b}" for b in (8, 16, 32, 64)},
    **{f"UInt{b}": f"uint{b}" for b in (8, 16, 32, 64)},
    "Float32": "float32",
    "Float64": "float64",
    "boolean": "bool",
}


def _pd() -> Any:
    import pandas  # the type's own package: the only import a load of these does

    return pandas


def _values(obj: Any) -> Any:
    """The values of a Series or Index: a numpy array for numpy dtypes, else pandas' array."""
    if isinstance(obj.dtype, np.dtype):
        return obj.to_numpy(copy=False)
    return obj.array


def _array(values: Any, what: str) -> Any:
    if isinstance(values, np.ndarray):
        return values
    pd = _pd()
    if isinstance(values, pd.api.extensions.ExtensionArray):
        return values
    raise TypeError(f"{what} must be an array, got {type(values).__qualname__}")


def _attrs_part(obj: Any) -> list[tuple[str, Any]]:
    return [("__attrs__", dict(obj.attrs))] if obj.attrs else []


def _set_attrs(obj: Any, parts: dict[str, Any]) -> Any:
    attrs = parts.get("__attrs__")
    if attrs is not None:
        if type(attrs) is not dict:
            raise TypeError(f"attrs must be a dict, got {type(attrs).__qualname__}")
        obj.attrs = attrs
    return obj


# -- DataFrame and Series --------------------------------------------------------------------


def _enc_frame(df: Any) -> Encoded:
    names: list[str] = []
    used: set[str] = set()
    parts: list[tuple[str, Any]] = [("__index__", df.index), ("__columns__", df.columns)]
    for i in range(df.shape[1]):
        name = str(df.columns[i])
        if name in used or name in _RESERVED:
            name = f"#{i}"
            while name in used:
                name += "'"
        used.add(name)
        names.append(name)
        parts.append((name, _values(df.iloc[:, i])))
    meta: Meta = {
        "shape": [int(df.shape[0]), int(df.shape[1])],
        "columns": names,
        "dtypes": [str(t) for t in df.dtypes],
    }
    return meta, parts + _attrs_part(df)


def _dec_frame(meta: Meta, parts: dict[str, Any]) -> Any:
    pd = _pd()
    index, columns = parts["__index__"], parts["__columns__"]
    if not isinstance(index, pd.Index) or not isinstance(columns, pd.Index):
        raise TypeError("a DataFrame's __index__ and __columns__ must be pandas Index objects")
    names = meta["columns"]
    if type(names) is not list or len(names) != len(columns):
        raise ValueError(f"{len(columns)} column labels but the meta names {names!r}")
    arrays = [_array(parts[name], f"column {name!r}") for name in names]
    for name, values in zip(names, arrays):
        if len(values) != len(index) or getattr(values, "ndim", 1) != 1:
            raise ValueError(f"column {name!r} holds {len(values)} values for an index of {len(index)}")
    if not arrays:
        df = pd.DataFrame(index=index, columns=columns)
    else:  # concat of Series on one index: no copy, no consolidation, every dtype kept
        df = pd.concat([_series(values, index, None) for values in arrays], axis=1)
        df.columns = columns
    return _set_attrs(df, parts)


def _series(values: Any, index: Any, name: Any) -> Any:
    pd = _pd()
    dtype = values.dtype  # explicit: pandas would infer str from an object array of strings
    return pd.Series(values, index=index, name=name, dtype=dtype, copy=False)


def _enc_series(s: Any) -> Encoded:
    meta: Meta = {"length": len(s), "dtype": str(s.dtype)}
    return meta, [("index", s.index), ("values", _values(s)), ("name", s.name), *_attrs_part(s)]


def _dec_series(meta: Meta, parts: dict[str, Any]) -> Any:
    pd = _pd()
    index = parts["index"]
    if not isinstance(index, pd.Index):
        raise TypeError("a Series' index must be a pandas Index")
    values = _array(parts["values"], "a Series' values")
    if len(values) != len(index):
        raise ValueError(f"{len(values)} values for an index of {len(index)}")
    return _set_attrs(_series(values, index, parts.get("name")), parts)


# -- indexes ---------------------------------------------------------------------------------


def _enc_index(ix: Any) -> Encoded:
    return {"length": len(ix), "dtype": str(ix.dtype)}, [("values", _values(ix)), ("name", ix.name)]


def _dec_index(meta: Meta, parts: dict[str, Any]) -> Any:
    values = _array(parts["values"], "an Index's values")
    return _pd().Index(values, dtype=values.dtype, name=parts.get("name"), copy=False)


def _enc_range(ix: Any) -> Encoded:
    return {"start": ix.start, "stop": ix.stop, "step": ix.step}, [("name", ix.name)]


def _dec_range(meta: Meta, parts: dict[str, Any]) -> Any:
    start, stop, step = (meta[k] for k in ("start", "stop", "step"))
    if not all(type(v) is int for v in (start, stop, step)):
        raise TypeError("a RangeIndex's start, stop and step must be ints")
    return _pd().RangeIndex(start, stop, step, name=parts.get("name"))


def _enc_datetimes(ix: Any) -> Encoded:
    meta: Meta = {"length": len(ix), "dtype": str(ix.dtype), "freq": ix.freqstr}
    return meta, [("values", _values(ix)), ("name", ix.name)]


def _freq(meta: Meta) -> str | None:
    freq = meta.get("freq")
    if freq is not None and type(freq) is not str:
        raise TypeError("freq must be a str or None")
    return freq


def _dec_datetimes(meta: Meta, parts: dict[str, Any]) -> Any:
    values = _array(parts["values"], "a DatetimeIndex's values")
    return _pd().DatetimeIndex(values, name=parts.get("name"), freq=_freq(meta), copy=False)


def _dec_timedeltas(meta: Meta, parts: dict[str, Any]) -> Any:
    values = _array(parts["values"], "a TimedeltaIndex's values")
    return _pd().TimedeltaIndex(values, name=parts.get("name"), freq=_freq(meta), copy=False)


def _enc_categorical_index(ix: Any) -> Encoded:
    return {"length": len(ix), "dtype": "category"}, [("values", ix.array), ("name", ix.name)]


def _dec_categorical_index(meta: Meta, parts: dict[str, Any]) -> Any:
    pd = _pd()
    values = parts["values"]
    if not isinstance(values, pd.Categorical):
        raise TypeError("a CategoricalIndex's values must be a Categorical")
    return pd.CategoricalIndex(values, name=parts.get("name"))


def _enc_multi(ix: Any) -> Encoded:
    meta: Meta = {"length": len(ix), "nlevels": ix.nlevels}
    codes = [np.asarray(c) for c in ix.codes]
    return meta, [("levels", list(ix.levels)), ("codes", codes), ("names", list(ix.names))]


def _dec_multi(meta: Meta, parts: dict[str, Any]) -> Any:
    pd = _pd()
    levels, codes, names = parts["levels"], parts["codes"], parts["names"]
    if not (type(levels) is list and all(isinstance(x, pd.Index) for x in levels)):
        raise TypeError("a MultiIndex's levels must be a list of Index objects")
    if not (type(codes) is list and all(isinstance(c, np.ndarray) and c.dtype.kind == "i" for c in codes)):
        raise TypeError("a MultiIndex's codes must be a list of integer arrays")
    if type(names) is not list:
        raise TypeError("a MultiIndex's names must be a list")
    return pd.MultiIndex(levels=levels, codes=codes, names=names, verify_integrity=True)


# -- pandas' arrays ----------------------------------------------------------------------------


def _enc_categorical(c: Any) -> Encoded:
    meta: Meta = {"length": len(c), "ordered": bool(c.ordered)}
    return meta, [("codes", np.asarray(c.codes)), ("categories", c.categories)]


def _dec_categorical(meta: Meta, parts: dict[str, Any]) -> Any:
    pd = _pd()
    codes, categories = parts["codes"], parts["categories"]
    if not (isinstance(codes, np.ndarray) and codes.dtype.kind == "i") or not isinstance(categories, pd.Index):
        raise TypeError("a Categorical needs integer codes and an Index of categories")
    dtype = pd.CategoricalDtype(categories, ordered=meta["ordered"] is True)
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=True)


def _enc_masked(a: Any) -> Encoded:
    name = a.dtype.name
    if name not in _MASKED:
        return None
    return {"length": len(a), "dtype": name}, [("data", a._data), ("mask", a._mask)]


def _dec_masked(meta: Meta, parts: dict[str, Any]) -> Any:
    pd = _pd()
    name = meta["dtype"]
    expected = _MASKED.get(name) if type(name) is str else None
    data, mask = parts["data"], parts["mask"]
    if expected is None:
        raise ValueError(f"unknown nullable dtype {name!r}")
    if not (isinstance(data, np.ndarray) and data.dtype == np.dtype(expected) and data.ndim == 1):
        raise TypeError(f"a {name} array needs 1-d {expected} data")
    if not (isinstance(mask, np.ndarray) and mask.dtype == np.bool_ and mask.shape == data.shape):
        raise TypeError("the mask must be a bool array of the data's shape")
    cls = (
        pd.arrays.BooleanArray
        if name == "boolean"
        else (pd.arrays.FloatingArray if name[0] == "F" else pd.arrays.IntegerArray)
    )
    return cls(data, mask)


def _enc_tz_datetimes(a: Any) -> Encoded:
    if a.tz is None:  # naive: what a numpy datetime64 array holds (the column is stored as one)
        return {"length": len(a), "dtype": str(a.dtype)}, [("values", a.to_numpy())]
    # the instants in UTC, and the time zone (a datetime.timezone or zoneinfo.ZoneInfo is a safe type)
    utc = np.asarray(a.tz_convert("UTC").tz_localize(None).to_numpy())
    return {"length": len(a), "dtype": str(a.dtype)}, [("values", utc), ("tz", a.tz)]


def _dec_tz_datetimes(meta: Meta, parts: dict[str, Any]) -> Any:
    pd = _pd()
    values = parts["values"]
    if not (isinstance(values, np.ndarray) and values.dtype.kind == "M" and values.ndim == 1):
        raise TypeError("a DatetimeArray's values must be a 1-d datetime64 array")
    if "tz" not in parts:
        return pd.array(values, dtype=values.dtype)
    tz = parts["tz"]
    if not isinstance(tz, dt.tzinfo):  # a tzinfo object only: a str would be looked up (even as a file path)
        raise TypeError(f"the time zone must be a tzinfo, got {type(tz).__qualname__}")
    return pd.DatetimeIndex(values, tz="UTC").tz_convert(tz).array


def _string_dtype(meta: Meta) -> Any:
    pd = _pd()
    storage, na = meta["storage"], meta["na"]
    if storage not in ("python", "pyarrow") or na not in ("nan", "NA"):
        raise ValueError(f"unknown string dtype ({storage!r}, {na!r})")
    return pd.StringDtype(storage=storage, na_value=np.nan if na == "nan" else pd.NA)


def _enc_strings(a: Any) -> Encoded:
    dtype = a.dtype
    na = "nan" if isinstance(dtype.na_value, float) and math.isnan(dtype.na_value) else "NA"
    meta: Meta = {"length": len(a), "dtype": str(dtype), "storage": dtype.storage, "na": na}
    if dtype.storage == "pyarrow":
        offsets, data, valid = _arrow_buffers(a)
    else:
        valid = ~np.asarray(a.isna())
        items = a.to_numpy(dtype=object)
        encoded = [s.encode("utf-8", "surrogatepass") if ok else b"" for s, ok in zip(items.tolist(), valid.tolist())]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
        data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    parts: list[tuple[str, Any]] = [("offsets", offsets), ("data", data)]
    if not valid.all():
        parts.append(("valid", valid))
    return meta, parts


def _arrow_buffers(a: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets, UTF-8 bytes, validity) of an Arrow-backed string array, without a copy of the bytes."""
    import pyarrow as pa

    arrow = a.__arrow_array__()
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    if arrow.type != pa.large_string():
        arrow = arrow.cast(pa.large_string())
    n = len(arrow)
    _, offsets_buf, data_buf = arrow.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arrow.offset : arrow.offset + n + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(data_buf, dtype=np.uint8)[start:end] if data_buf is not None else np.zeros(0, np.uint8)
    valid = (
        np.ones(n, dtype=bool) if arrow.null_count == 0 else np.asarray(arrow.is_valid().to_numpy(zero_copy_only=False))
    )
    return offsets - start, data, valid


def _dec_strings(meta: Meta, parts: dict[str, Any]) -> Any:
    pd = _pd()
    dtype = _string_dtype(meta)
    offsets, data = parts["offsets"], parts["data"]
    valid = parts.get("valid")
    if not (isinstance(offsets, np.ndarray) and offsets.dtype == np.int64 and offsets.ndim == 1 and len(offsets)):
        raise TypeError("a string array's offsets must be a non-empty 1-d int64 array")
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8):
        raise TypeError("a string array's data must be a uint8 array")
    n = len(offsets) - 1
    if offsets[0] != 0 or offsets[-1] != len(data) or (n and np.any(offsets[1:] < offsets[:-1])):
        raise ValueError("a string array's offsets do not fit its data")
    if valid is not None and not (isinstance(valid, np.ndarray) and valid.dtype == np.bool_ and valid.shape == (n,)):
        raise TypeError("a string array's validity must be a bool array of its length")
    if meta["storage"] == "pyarrow":
        import pyarrow as pa

        bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
        arrow = pa.LargeStringArray.from_buffers(
            n, pa.py_buffer(offsets), pa.py_buffer(data), bitmap, -1 if valid is not None else 0
        )
        arrow.validate(full=True)  # UTF-8 and offsets checked before pandas sees the array
        return pd.array(arrow, dtype=dtype)
    raw = data.tobytes()
    bounds = offsets.tolist()
    items = np.empty(n, dtype=object)
    items[:] = [raw[bounds[i] : bounds[i + 1]].decode("utf-8", "surrogatepass") for i in range(n)]
    if valid is not None:
        items[~valid] = dtype.na_value
    return pd.array(items, dtype=dtype)


# -- registration ----------------------------------------------------------------------------


def _describe_frame(meta: Meta) -> dict[str, Any]:
    columns, dtypes = meta["columns"], meta["dtypes"]
    shown = ", ".join(f"{c}: {t}" for c, t in zip(columns[:8], dtypes[:8]))
    more = f", ... {len(columns) - 8} more" if len(columns) > 8 else ""
    return {"shape": meta["shape"], "info": {"columns": columns, "dtypes": dtypes, "summary": f"columns {shown}{more}"}}


def _describe_1d(meta: Meta) -> dict[str, Any]:
    shown: dict[str, Any] = {"shape": [meta["length"]]} if "length" in meta else {}
    if "dtype" in meta:
        shown["dtype"] = meta["dtype"]
    return shown


#: (name, class path in pandas, encode, decode, describe)
_TYPES: list[tuple[str, str, Callable[[Any], Encoded], Callable[..., Any], Callable[[Meta], dict[str, Any]]]] = [
    ("pandas.DataFrame", "DataFrame", _enc_frame, _dec_frame, _describe_frame),
    ("pandas.Series", "Series", _enc_series, _dec_series, _describe_1d),
    ("pandas.Index", "Index", _enc_index, _dec_index, _describe_1d),
    (
        "pandas.RangeIndex",
        "RangeIndex",
        _enc_range,
        _dec_range,
        lambda m: {"info": {k: m.get(k) for k in ("start", "stop", "step")}},
    ),
    ("pandas.DatetimeIndex", "DatetimeIndex", _enc_datetimes, _dec_datetimes, _describe_1d),
    ("pandas.TimedeltaIndex", "TimedeltaIndex", _enc_datetimes, _dec_timedeltas, _describe_1d),
    ("pandas.CategoricalIndex", "CategoricalIndex", _enc_categorical_index, _dec_categorical_index, _describe_1d),
    (
        "pandas.MultiIndex",
        "MultiIndex",
        _enc_multi,
        _dec_multi,
        lambda m: {"shape": [m["length"]], "info": {"nlevels": m.get("nlevels")}},
    ),
    ("pandas.Categorical", "Categorical", _enc_categorical, _dec_categorical, _describe_1d),
    ("pandas.MaskedArray", "arrays.IntegerArray", _enc_masked, _dec_masked, _describe_1d),
    ("pandas.MaskedArray", "arrays.FloatingArray", _enc_masked, _dec_masked, _describe_1d),
    ("pandas.MaskedArray", "arrays.BooleanArray", _enc_masked, _dec_masked, _describe_1d),
    ("pandas.DatetimeArray", "arrays.DatetimeArray", _enc_tz_datetimes, _dec_tz_datetimes, _describe_1d),
    ("pandas.StringArray", "arrays.StringArray", _enc_strings, _dec_strings, _describe_1d),
    ("pandas.StringArray", "arrays.ArrowStringArray", _enc_strings, _dec_strings, _describe_1d),
]
_SAFE = {
    name: SafeType(
        name=name,
        encode=enc,
        decode=dec,
        package="pandas",
        describe=describe,
        type_name=name.split(".")[1],
        module="pandas",
    )
    for name, _, enc, dec, describe in _TYPES
}
_classes: dict[type, SafeType] | None = None


def _match(cls: type) -> SafeType | None:
    """The safe type of a pandas class (pandas is imported already when one of its values is met)."""
    global _classes
    if not cls.__module__.startswith("pandas"):
        return None
    if _classes is None:
        pd = sys.modules.get("pandas")
        if pd is None:
            return None
        found: dict[type, SafeType] = {}
        for name, where, *_ in _TYPES:
            target: Any = pd
            for part in where.split("."):
                target = getattr(target, part, None)
            if isinstance(target, type):
                found[target] = _SAFE[name]
        more = sys.modules.get("pandas.core.arrays.string_arrow")  # pandas 2's str dtype
        numpy_semantics = getattr(more, "ArrowStringArrayNumpySemantics", None)
        if isinstance(numpy_semantics, type):
            found[numpy_semantics] = _SAFE["pandas.StringArray"]
        _classes = found
    return _classes.get(cls)


def install(add: Callable[..., None]) -> None:
    """Register the pandas safe types with ``add(safe_type, classes, matcher)``."""
    for st in _SAFE.values():
        add(st)
    add(_SAFE["pandas.DataFrame"], (), _match)
