"""Who a call is and what its inputs look like: the node name, the node identity (package
version and source digest, as the environment has them now or as a file recorded them),
the call digest built from those and the input digests (:mod:`~storage_nodes.catalog.digest`),
and the short JSON preview kept beside each input's digest."""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from .._secrets import mask_passwords
from ..errors import InvalidArgumentError
from ..provenance.metadata import module_record
from .digest import DIGEST_VERSION
from .records import Summary

__all__ = [
    "Identify", "call_digest", "describe_value", "from_preview", "live_identity", "node_name", "preview",
    "recorded_identity",
]  # fmt: skip

_PREVIEW_CHARS = 200


def _plain(value: Any, depth: int = 0) -> bool:
    if depth > 4:
        return False
    if value is None or type(value) in (bool, int, str):
        return True
    if type(value) is float:
        return value == value and value not in (float("inf"), float("-inf"))
    if type(value) is list:
        return len(value) <= 16 and all(_plain(v, depth + 1) for v in value)
    if type(value) is dict:
        return len(value) <= 16 and all(type(k) is str and _plain(v, depth + 1) for k, v in value.items())
    return False


def describe_value(value: Any) -> str:
    """``type`` of ``value`` (module-qualified unless builtin), with dtype and shape or length when it has them."""
    t = type(value)
    name = t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if isinstance(shape, tuple) and dtype is not None:
        return f"{name} {dtype} shape={shape}"
    try:
        return f"{name} len={len(value)}"
    except Exception:
        return name


# encoders built once: json.dumps with any option builds a new JSONEncoder per call (same text)
_PLAIN_JSON = json.JSONEncoder(allow_nan=False).encode
_CALL_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=True).encode


_ARRAY_PREVIEWS: dict[tuple[type, Any, tuple[int, ...]], str] = {}
_SCALAR_PREVIEW = {None: '{"v": null}', True: '{"v": true}', False: '{"v": false}'}


def preview(value: Any) -> str:
    """The JSON text kept beside an input's digest: ``{"v": value}`` or ``{"t": description}``.

    A URL's password in a string value (a SaveNode's ``catalog`` port) shows as ``***``:
    the preview is for reading, the digest (of the real value) for matching.
    """
    t = type(value)
    if value is None or t is bool or t is int:  # the text json gives, without the encoder
        return _SCALAR_PREVIEW.get(value, '{"v": null}') if t is not int else f'{{"v": {int.__repr__(value)}}}'
    if t is float and math.isfinite(value):
        return f'{{"v": {float.__repr__(value)}}}'
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if t.__name__ == "ndarray" and type(shape) is tuple and dtype is not None:  # by dtype and shape: remembered
        key = (t, dtype, shape)
        found = _ARRAY_PREVIEWS.get(key)
        if found is None:
            if len(_ARRAY_PREVIEWS) > 1024:
                _ARRAY_PREVIEWS.clear()
            found = _ARRAY_PREVIEWS[key] = _PLAIN_JSON({"t": describe_value(value)})
        return found
    if _plain(value):
        text = _PLAIN_JSON({"v": value})
        if len(text) <= _PREVIEW_CHARS:
            return mask_passwords(text)
    return _PLAIN_JSON({"t": describe_value(value)})


def from_preview(text: str | None) -> Any:
    """The value a stored preview shows, or a :class:`Summary` of it."""
    if not text:
        return Summary("unknown")
    doc = json.loads(text)
    return doc["v"] if "v" in doc else Summary(doc.get("t", "unknown"))


def node_name(node: Any) -> str:
    """``"module.qualname"`` of a function (or the string itself)."""
    if isinstance(node, str):
        if not node or "." not in node:
            raise InvalidArgumentError(f"node={node!r}: give the function or its 'module.qualname' string")
        return node
    module, qualname = getattr(node, "__module__", None), getattr(node, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise InvalidArgumentError(f"node= takes a function or a 'module.qualname' string, got {type(node).__name__}")
    return f"{module}.{qualname}"


def call_digest(
    node: str, version: str | None, source: str | None, input_digests: Mapping[str, str | None]
) -> str | None:
    """The digest of one call: node identity (name, package version, source digest) + every input's digest.

    SHA-256 of ``storage_nodes-call-<DIGEST_VERSION>`` and the sorted-key JSON of
    ``{"node", "version", "source", "inputs": {port: digest}}``: every part is a string (or
    null), so that JSON text is canonical, and hashing it is cheaper than digesting the dict.
    """
    if any(d is None for d in input_digests.values()):
        return None
    text = _CALL_JSON({"node": node, "version": version, "source": source, "inputs": dict(input_digests)})
    return hashlib.sha256(f"storage_nodes-call-{DIGEST_VERSION}\x00{text}".encode()).hexdigest()


#: (module, qualname) -> (package version, source digest)
Identify = Callable[[str, str], tuple[str | None, str | None]]


#: (module, qualname) -> ((mtime_ns, size) of the module's file, (version, source digest))
_LIVE: dict[tuple[str, str], tuple[tuple[int, int], tuple[str | None, str | None]]] = {}


def live_identity(module: str, qualname: str) -> tuple[str | None, str | None]:
    """Version and source digest of a function as the current environment has it (imports nothing).

    Remembered per function while its imported module's file keeps its mtime and size (an
    imported package's version cannot change in a running process).
    """
    file = getattr(sys.modules.get(module), "__file__", None)
    stamp = None
    if isinstance(file, str):
        try:
            st = os.stat(file)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            pass
    found = _LIVE.get((module, qualname))
    if found is not None and stamp is not None and found[0] == stamp:
        return found[1]
    rec = module_record(module, [qualname], with_git=False)
    identity = rec.get("version"), (rec.get("sources") or {}).get(qualname)
    if stamp is not None:
        if len(_LIVE) > 4096:
            _LIVE.clear()
        _LIVE[(module, qualname)] = (stamp, identity)
    return identity


def recorded_identity(environment: Mapping[str, Any]) -> Identify:
    """Version and source digest as a file's environment record stored them."""
    modules = environment.get("modules") or {}

    def identify(module: str, qualname: str) -> tuple[str | None, str | None]:
        rec = modules.get(module) or {}
        return rec.get("version"), (rec.get("sources") or {}).get(qualname)

    return identify
