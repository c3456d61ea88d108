"""Standard-library values stored natively in the h5 archive and loaded with ``safe=True``:
datetime/date/time/timedelta/timezone (aware ones too), pathlib paths, UUID, Decimal,
Fraction, enum members (by reference and name) and the singletons Ellipsis / NotImplemented."""

from __future__ import annotations

import datetime as dt
import decimal
import fractions
import pathlib
import subprocess
import sys
import uuid
import zoneinfo

import h5py
import pytest

import storage_nodes as sn
from tests import _h5_objects as o
from tests._docs import DOCS, section_namespace

VALUES = {
    "naive": dt.datetime(2024, 3, 1, 12, 30, 5, 123),
    "aware": dt.datetime(2024, 3, 1, 12, 30, 5, 123, tzinfo=dt.timezone(dt.timedelta(hours=2), "CEST-ish")),
    "utc": dt.datetime(1, 1, 1, tzinfo=dt.UTC),
    "zone_fold": dt.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin")),
    "date": dt.date(2020, 1, 2),
    "time": dt.time(1, 2, 3, 4, tzinfo=dt.timezone(-dt.timedelta(hours=5, microseconds=1))),
    "timedelta": dt.timedelta(days=-3, seconds=5, microseconds=7),
    "timezone": dt.timezone(dt.timedelta(minutes=-90)),
    "posix": pathlib.PurePosixPath("/data/run 1/out.h5"),
    "windows": pathlib.PureWindowsPath(r"C:\data\run.h5"),
    "path": pathlib.Path("relative/dir"),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "decimal": decimal.Decimal("-0.000"),
    "decimal_nan": decimal.Decimal("sNaN123"),
    "fraction": fractions.Fraction(2**70 + 1, 3),
    "enum": o.Color.GREEN,
    "ellipsis": ...,
    "not_implemented": NotImplemented,
}


def _same(a, b) -> None:
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, decimal.Decimal):
        assert str(a) == str(b)  # NaN != NaN: the exact text instead
    elif isinstance(a, dt.datetime | dt.time):
        assert a == b and a.fold == b.fold and a.tzinfo == b.tzinfo and a.utcoffset() == b.utcoffset()
        assert a.replace(tzinfo=None) == b.replace(tzinfo=None) and a.tzname() == b.tzname()
    else:
        assert a == b


def test_each_value_round_trips_with_safe_true(tmp_path):
    path = sn.save(VALUES, tmp_path / "std.h5")
    back = sn.load(path, safe=True)
    assert list(back) == list(VALUES)
    for name, value in VALUES.items():
        _same(back[name], value)
    assert back["ellipsis"] is ... and back["not_implemented"] is NotImplemented and back["enum"] is o.Color.GREEN
    for name, value in VALUES.items():  # and each alone, by key
        _same(sn.load(path, key=name, safe=True), value)


def test_they_are_n_nodes_in_the_index_not_objects_or_pickles(tmp_path):
    path = sn.save(VALUES, tmp_path / "std.h5")
    read_index = section_namespace(DOCS / "format.md", "### The index log")["read_index"]
    with h5py.File(path, "r") as f:
        index = read_index(f)  # the spec's reader (its ext_hook turns type 4 into an int)
    nodes = {item[0]: item[1] for item in index["root"]["items"]}
    assert all(node["k"] == "n" for node in nodes.values()), {k: n["k"] for k, n in nodes.items() if n["k"] != "n"}
    assert nodes["aware"]["m"] == {"iso": "2024-03-01T12:30:05.000123"}
    assert nodes["zone_fold"]["m"]["fold"] == 1
    assert nodes["enum"]["t"] == "enum" and nodes["enum"]["m"] == {"name": "GREEN", "value": "green"}
    assert index["classes"][nodes["enum"]["c"]] == ["tests._h5_objects", "Color"]
    assert nodes["fraction"]["m"]["numerator"] == 2**70 + 1  # (ext type 4 in the index)
    assert index["format_version"] == 4


def test_inspect_names_them_without_building_them(tmp_path):
    path = sn.save(VALUES, tmp_path / "std.h5")
    listing = sn.inspect(path)
    assert listing["aware"].type == "datetime" and listing["aware"].module == "datetime"
    assert listing["aware/tzinfo"].type == "timezone"
    assert listing["uuid"].info["hex"] == VALUES["uuid"].hex
    assert "not_implemented" in str(listing) and "opaque" not in str(listing)


def test_an_enum_of_a_module_not_imported_is_refused_by_safe_loads_not_imported(tmp_path):
    """safe=True takes an enum's class only from a module already imported: a fresh process
    gets the error (or a placeholder), and the module stays unimported."""
    path = sn.save({"c": o.Color.RED, "n": 1}, tmp_path / "enum.h5")
    code = f"""
import sys, storage_nodes as sn
try:
    sn.load({str(path)!r}, safe=True)
except sn.UnsafeLoadError as exc:
    print("refused:", exc)
back = sn.load({str(path)!r}, safe=True, refused="placeholder")
print(type(back["c"]).__name__, back["c"].type, back["n"], "tests._h5_objects" in sys.modules)
print(sn.load({str(path)!r}, raw=True)["c"].meta)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "refused:" in out and "not imported" in out
    assert "Refused tests._h5_objects.Color 1 False" in out
    assert "{'name': 'RED', 'value': 1}" in out


def test_a_composite_flag_is_stored_the_generic_way(tmp_path):
    import enum

    flags = enum.Flag("Perm", "R W X", module=__name__)
    value = flags.R | flags.W
    globals()["Perm"] = flags
    path = sn.save({"p": value}, tmp_path / "flag.h5")
    assert sn.load(path)["p"] == value
    with pytest.raises(sn.UnsafeLoadError):
        sn.load(path, safe=True)


def test_json_carries_them_too_as_format_2(tmp_path):
    """json stores the standard library's safe types (not enum members, which name a class)
    as ``safe`` tags: format version 2; a file without them stays version 1."""
    import json

    values = {k: v for k, v in VALUES.items() if k != "enum"}
    path = sn.save(values, tmp_path / "std.json")
    back = sn.load(path, safe=True)
    for name, value in values.items():
        _same(back[name], value)
    doc = json.loads(path.read_text())
    assert doc["storage_nodes"]["format_version"] == 2
    assert doc["data"]["aware"] == {
        "__sn__": "safe",
        "type": "datetime.datetime",
        "meta": {"iso": "2024-03-01T12:30:05.000123"},
        "parts": {
            "tzinfo": {
                "__sn__": "safe",
                "type": "datetime.timezone",
                "meta": {"offset_us": 7200000000, "name": "CEST-ish"},
                "parts": {},
            }
        },
    }
    assert sn.load(path, raw=True)["uuid"].meta == {"hex": VALUES["uuid"].hex}
    assert json.loads(sn.save({"a": 1}, tmp_path / "plain.json").read_text())["storage_nodes"]["format_version"] == 1
    with pytest.raises(sn.SerializationError, match="json"):
        sn.save({"e": o.Color.RED}, tmp_path / "enum.json")
    doc["data"]["aware"]["type"] = "pandas.DataFrame"  # json rebuilds the standard library's types only
    path.write_text(json.dumps(doc))
    with pytest.raises(sn.CorruptFileError, match=r"unknown safe type 'pandas\.DataFrame'"):
        sn.load(path)
