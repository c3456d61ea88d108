"""Data filters of :func:`~storage_nodes.save_workflow`: port values left out of the file.

A filter is a regular expression (a ``str`` or compiled pattern, matched with ``re.search``)
or a callable taking a port's path and returning ``True`` to leave it out. A port's path is
``"<node>.<port>"``, for a node inside a macro or flow control ``"<macro>.<child>.<port>"``,
for the stored node's own ports ``"<port>"``. An input and an output of one node with the
same name share the path. A port holding the very object of a filtered port is filtered too
(else it would store the object after all).

A filtered port is stored as ``{"@not_stored": "<why>"}`` (plain data: every backend stores
it, the listing shows it); :func:`restore` turns it into a :class:`NotStored` marker when the
workflow is loaded. The header entry ``@workflow`` records ``filtered`` (the paths) and
``data_filter`` (the pattern, or the callable's name).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InvalidArgumentError

__all__ = [
    "NOT_STORED_KEY",
    "RECORD_KEY",
    "DataFilter",
    "NotStored",
    "apply",
    "filter_data",
    "is_not_stored",
    "restore",
]

#: the key of the dict a filtered port value is stored as (not a node label or port name)
NOT_STORED_KEY = "@not_stored"
DataFilter = str | re.Pattern[str] | Callable[[str], bool] | None
#: the metadata entry in which ``SaveNode(data_filter=...)`` records what it left out
RECORD_KEY = "@filtered"

_PLAIN = (type(None), bool, int, float, complex, str, bytes)


class NotStored:
    """What a filtered port loads as: the value was left out when the workflow was saved."""

    __slots__ = ("path", "reason")

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason

    def __repr__(self) -> str:
        return f"<not stored: {self.path!r} {self.reason}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NotStored) and (other.path, other.reason) == (self.path, self.reason)

    def __hash__(self) -> int:
        return hash((self.path, self.reason))


def _predicate(data_filter: DataFilter) -> tuple[Callable[[str], bool], str]:
    """(whether a path is filtered, the filter described for the file's header)."""
    if isinstance(data_filter, str):
        try:
            data_filter = re.compile(data_filter)
        except re.error as exc:
            raise InvalidArgumentError(f"data_filter {data_filter!r} is not a regular expression: {exc}") from None
    if isinstance(data_filter, re.Pattern):
        pattern = data_filter
        return (lambda p: pattern.search(p) is not None), f"regex {pattern.pattern!r}"
    if callable(data_filter):
        fn = data_filter
        name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"
        return (lambda p: bool(fn(p))), f"callable {name}"
    raise InvalidArgumentError(
        f"data_filter takes a regular expression or a callable on 'node.port' paths, got {type(data_filter).__name__}"
    )


def _marker(reason: str) -> dict[str, str]:
    return {NOT_STORED_KEY: reason}


def _ports(record: Mapping[str, Any], prefix: str) -> list[tuple[dict[str, Any], str, str]]:
    """(port dict, port name, path) of every port of a node record and the records below it."""
    out: list[tuple[dict[str, Any], str, str]] = []
    for side in ("inputs", "outputs"):
        ports = record.get(side)
        if isinstance(ports, dict):
            out.extend((ports, name, f"{prefix}{name}") for name in ports)
    for label, child in (record.get("nodes") or {}).items():
        if isinstance(child, Mapping):
            out.extend(_ports(child, f"{prefix}{label}."))
    return out


def apply(document: dict[str, Any], data_filter: DataFilter, header_key: str) -> list[str]:
    """Replace the filtered port values of a workflow document by markers, in place; record
    the filter in its header (``document[header_key]``); return the filtered paths, sorted."""
    if data_filter is None:
        return []
    filtered, described = _predicate(data_filter)
    reason = f"filtered by data_filter ({described})"
    root = {"inputs": document.get("inputs"), "outputs": document.get("outputs")}
    root["nodes"] = {k: v for k, v in document.items() if k not in (header_key, "inputs", "outputs")}
    ports = _ports(root, "")
    hit: list[str] = []
    dropped: dict[int, Any] = {}  # the objects left out (kept alive, so that ids stay unique)
    for ports_dict, name, path in ports:
        if filtered(path):
            value = ports_dict[name]
            if not isinstance(value, _PLAIN):
                dropped[id(value)] = value
            ports_dict[name] = _marker(reason)
            hit.append(path)
    for ports_dict, name, path in ports:  # the same object at an unfiltered port
        value = ports_dict[name]
        if id(value) in dropped and dropped[id(value)] is value:
            ports_dict[name] = _marker(f"{reason}: the same object as a filtered port")
            hit.append(path)
    header = document[header_key]
    header["data_filter"] = described
    header["filtered"] = sorted(set(hit))
    return header["filtered"]


def is_not_stored(value: Any) -> bool:
    """Whether ``value`` is a filtered port as stored (the marker dict) or loaded (:class:`NotStored`)."""
    if isinstance(value, NotStored):
        return True
    return type(value) is dict and len(value) == 1 and isinstance(value.get(NOT_STORED_KEY), str)


def restore(nodes: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
    """Turn the markers of a loaded workflow document into :class:`NotStored` values, in place."""
    root = {"inputs": inputs, "outputs": outputs, "nodes": nodes}
    for ports_dict, name, path in _ports(root, ""):
        value = ports_dict[name]
        if is_not_stored(value) and not isinstance(value, NotStored):
            ports_dict[name] = NotStored(path, value[NOT_STORED_KEY])


def filter_data(obj: Any, data_filter: DataFilter) -> tuple[Any, dict[str, Any] | None]:
    """(``obj`` with the entries the filter selects replaced by markers, the record of what was
    left out: ``{"data_filter": ..., "paths": [...]}``, or ``None`` without a filter).

    The paths are the dict keys and list positions from the top joined by ``.`` (``"a.b"``,
    ``"frames.3"``); ``obj`` itself is not changed (the containers on the way are copied)."""
    if data_filter is None:
        return obj, None
    filtered, described = _predicate(data_filter)
    reason = f"filtered by data_filter ({described})"
    hit: list[str] = []

    def walk(value: Any, path: str) -> Any:
        if path and filtered(path):
            hit.append(path)
            return _marker(reason)
        if type(value) is dict:
            return {k: walk(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if type(value) is list:
            return [walk(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(value)]
        return value

    return walk(obj, ""), {"data_filter": described, "paths": hit}
