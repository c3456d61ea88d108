"""Safe types of the standard library: dates and times, paths, UUIDs, decimals, fractions,
enum members and the singletons ``Ellipsis`` / ``NotImplemented``.

Each is stored as its ``meta`` (the fields below, in the index) and rebuilt by the class's
own constructor; ``docs/format.md`` (*Safe types*) lists the fields.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import fractions
import inspect
import pathlib
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any

from .registry import Encoded, Meta, SafeType

__all__ = ["install"]


def _tz_parts(value: Any) -> list[tuple[str, Any]]:
    return [] if value.tzinfo is None else [("tzinfo", value.tzinfo)]


def _tzinfo(parts: dict[str, Any]) -> dt.tzinfo | None:
    tz = parts.get("tzinfo")
    if tz is not None and not isinstance(tz, dt.tzinfo):
        raise TypeError(f"tzinfo must be a tzinfo, got {type(tz).__qualname__}")
    return tz


def _fold(meta: Meta) -> int:
    fold = meta.get("fold", 0)
    if fold not in (0, 1):
        raise ValueError(f"fold must be 0 or 1, got {fold!r}")
    return int(fold)


def _enc_datetime(v: dt.datetime) -> Encoded:
    meta: Meta = {"iso": v.replace(tzinfo=None, fold=0).isoformat()}
    if v.fold:
        meta["fold"] = 1
    return meta, _tz_parts(v)


def _dec_datetime(meta: Meta, parts: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(_str(meta, "iso")).replace(fold=_fold(meta), tzinfo=_tzinfo(parts))


def _enc_time(v: dt.time) -> Encoded:
    meta: Meta = {"iso": v.replace(tzinfo=None, fold=0).isoformat()}
    if v.fold:
        meta["fold"] = 1
    return meta, _tz_parts(v)


def _dec_time(meta: Meta, parts: dict[str, Any]) -> dt.time:
    return dt.time.fromisoformat(_str(meta, "iso")).replace(fold=_fold(meta), tzinfo=_tzinfo(parts))


def _enc_timedelta(v: dt.timedelta) -> Encoded:
    return {"days": v.days, "seconds": v.seconds, "microseconds": v.microseconds}, []


def _dec_timedelta(meta: Meta, parts: dict[str, Any]) -> dt.timedelta:
    return dt.timedelta(days=_int(meta, "days"), seconds=_int(meta, "seconds"), microseconds=_int(meta, "microseconds"))


def _enc_timezone(v: dt.timezone) -> Encoded:
    args = v.__getinitargs__()  # type: ignore[attr-defined]  # (offset,) or (offset, name)
    offset: dt.timedelta = args[0]
    meta: Meta = {"offset_us": (offset.days * 86400 + offset.seconds) * 1_000_000 + offset.microseconds}
    if len(args) > 1:
        meta["name"] = args[1]
    return meta, []


def _dec_timezone(meta: Meta, parts: dict[str, Any]) -> dt.timezone:
    offset = dt.timedelta(microseconds=_int(meta, "offset_us"))
    if "name" in meta:
        return dt.timezone(offset, _str(meta, "name"))
    return dt.timezone(offset)


def _enc_zoneinfo(v: zoneinfo.ZoneInfo) -> Encoded:
    if v.key is None:  # made from a file object: not found again by key
        return None
    return {"key": v.key}, []


def _dec_zoneinfo(meta: Meta, parts: dict[str, Any]) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(_str(meta, "key"))  # the key is checked by ZoneInfo (no path outside the tz database)


def _path_type(cls: type[pathlib.PurePath]) -> tuple[Callable[[Any], Encoded], Callable[..., Any]]:
    def enc(v: pathlib.PurePath) -> Encoded:
        return {"path": str(v)}, []

    def dec(meta: Meta, parts: dict[str, Any]) -> pathlib.PurePath:
        return cls(_str(meta, "path"))

    return enc, dec


def _enc_uuid(v: uuid.UUID) -> Encoded:
    return {"hex": v.hex}, []


def _dec_uuid(meta: Meta, parts: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(hex=_str(meta, "hex"))


def _enc_decimal(v: decimal.Decimal) -> Encoded:
    return {"str": str(v)}, []


def _dec_decimal(meta: Meta, parts: dict[str, Any]) -> decimal.Decimal:
    return decimal.Decimal(_str(meta, "str"))


def _enc_fraction(v: fractions.Fraction) -> Encoded:
    return {"numerator": v.numerator, "denominator": v.denominator}, []


def _dec_fraction(meta: Meta, parts: dict[str, Any]) -> fractions.Fraction:
    return fractions.Fraction(_int(meta, "numerator"), _int(meta, "denominator"))


def _singleton(value: Any) -> tuple[Callable[[Any], Encoded], Callable[..., Any]]:
    return (lambda v: ({}, [])), (lambda meta, parts: value)


_PLAIN_VALUE = (str, int, float, bool, type(None))


def _enc_enum(v: enum.Enum) -> Encoded:
    cls = type(v)
    name = v._name_
    if type(name) is not str or inspect.getattr_static(cls, "_member_map_", {}).get(name) is not v:
        return None  # a composite Flag value, or a pseudo-member: stored the generic way
    meta: Meta = {"name": name}
    if type(v._value_) in _PLAIN_VALUE:
        meta["value"] = v._value_
    return meta, []


def _dec_enum(meta: Meta, parts: dict[str, Any], cls: type) -> enum.Enum:
    """The member ``meta["name"]`` of ``cls``, found in the class's member map (no code of the
    enum runs: neither ``__new__`` nor ``_missing_``)."""
    if not (isinstance(cls, type) and issubclass(cls, enum.Enum)):
        raise TypeError("the class the file names is not an Enum")
    members = inspect.getattr_static(cls, "_member_map_")
    if type(members) is not dict:
        raise TypeError(f"{cls.__qualname__} has no member map")
    member = members[_str(meta, "name")]
    value = inspect.getattr_static(member, "_value_", None)  # no __getattribute__ of the enum runs
    if "value" in meta and type(value) in _PLAIN_VALUE and value != meta["value"]:
        raise ValueError(f"{cls.__qualname__}.{meta['name']} has the value {value!r}, the file says {meta['value']!r}")
    return member


_ENUM = SafeType(
    name="enum",
    encode=_enc_enum,
    decode=_dec_enum,
    by_reference=True,
    type_name="Enum",
    module="enum",
    describe=lambda meta: {"info": {"member": meta.get("name")}},
)


def _match_enum(cls: type) -> SafeType | None:
    return _ENUM if issubclass(cls, enum.Enum) else None


def _str(meta: Meta, name: str) -> str:
    value = meta[name]
    if type(value) is not str:
        raise TypeError(f"{name} must be a str, got {type(value).__qualname__}")
    return value


def _int(meta: Meta, name: str) -> int:
    value = meta[name]
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, got {type(value).__qualname__}")
    return value


def _show(field: str) -> Callable[[Meta], dict[str, Any]]:
    """``inspect``'s info: the main field, and the whole meta as a short summary line."""
    return lambda meta: {
        "info": {field: meta.get(field), "summary": " ".join(f"{k}={v}" for k, v in meta.items())[:200]}
    }


def install(add: Callable[..., None]) -> None:
    """Register the standard-library safe types with ``add(safe_type, classes, matcher)``."""
    simple: list[tuple[str, type, Any, Any, str]] = [
        ("datetime.datetime", dt.datetime, _enc_datetime, _dec_datetime, "iso"),
        (
            "datetime.date",
            dt.date,
            lambda v: ({"iso": v.isoformat()}, []),
            lambda m, p: dt.date.fromisoformat(_str(m, "iso")),
            "iso",
        ),
        ("datetime.time", dt.time, _enc_time, _dec_time, "iso"),
        ("datetime.timedelta", dt.timedelta, _enc_timedelta, _dec_timedelta, "days"),
        ("datetime.timezone", dt.timezone, _enc_timezone, _dec_timezone, "offset_us"),
        ("zoneinfo.ZoneInfo", zoneinfo.ZoneInfo, _enc_zoneinfo, _dec_zoneinfo, "key"),
        ("uuid.UUID", uuid.UUID, _enc_uuid, _dec_uuid, "hex"),
        ("decimal.Decimal", decimal.Decimal, _enc_decimal, _dec_decimal, "str"),
        ("fractions.Fraction", fractions.Fraction, _enc_fraction, _dec_fraction, "numerator"),
    ]
    for path_cls in (pathlib.PurePosixPath, pathlib.PureWindowsPath, pathlib.PosixPath, pathlib.WindowsPath):
        enc, dec = _path_type(path_cls)
        simple.append((f"pathlib.{path_cls.__name__}", path_cls, enc, dec, "path"))
    for name, cls, enc, dec, shown in simple:
        add(
            SafeType(
                name=name,
                encode=enc,
                decode=dec,
                type_name=cls.__qualname__,
                module=cls.__module__,
                describe=_show(shown),
            ),
            (cls,),
        )
    for name, value in (("builtins.Ellipsis", Ellipsis), ("builtins.NotImplemented", NotImplemented)):
        enc, dec = _singleton(value)
        add(
            SafeType(name=name, encode=enc, decode=dec, type_name=type(value).__qualname__, module="builtins"),
            (type(value),),
        )
    add(_ENUM, (), _match_enum)
