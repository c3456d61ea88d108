"""The rows one recording becomes, and their queued form.

:func:`workflow_rows` turns a stored run (its recipe and its nodes' stored ports) into
node rows and edges; :func:`file_entry` and :func:`metadata_rows` give the file's rows
(who recorded it, where and when: :func:`user`, :func:`host`, :func:`now`). A save queues
them as one JSON payload (:func:`save_payload`, :func:`workflow_payload`; docs/catalog.md,
``sn_queue``), which :func:`parse_payload` checks before the queue applies it.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import getpass
import json
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard

from ..keys import join
from .digest import digest
from .identity import Identify, preview
from .records import FileIdentity

__all__ = [
    "READERS", "RECORD_FIELDS", "NodeRow", "encode_payload", "file_entry", "host", "metadata_rows", "now",
    "parse_payload", "save_payload", "to_json", "user", "workflow_payload", "workflow_rows",
]  # fmt: skip

_SORTED_JSON = json.JSONEncoder(sort_keys=True, allow_nan=False).encode
#: the queued payload's text: compact JSON
encode_payload = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
#: what a queued record lists, in this order (``id``, ``file_id``, ``call``, ``undigested`` come at flush)
RECORD_FIELDS = ("key", "label", "node", "module", "qualname", "version", "source", "outputs", "type")
#: node functions that read other stored results, and the input ports that say what they read
#: (a run's lineage across runs: ``sn_reads``)
READERS = {
    "storage_nodes.nodes.LoadNode": ("path", "key"),
    "storage_nodes.nodes.FindNode": ("catalog", "node", "input_values", "metadata"),
}


_USER_VARS = ("LOGNAME", "USER", "LNAME", "USERNAME")
_user_cache: dict[tuple[Any, ...], str] = {}


def user() -> str:
    """``getpass.getuser()``, remembered for the same environment variables and uid (it reads the passwd file)."""
    key = (*(os.environ.get(v) for v in _USER_VARS), os.getuid() if hasattr(os, "getuid") else None)
    found = _user_cache.get(key)
    if found is None:
        try:
            found = getpass.getuser()
        except Exception:  # no login name known (containers without a passwd entry)
            found = f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"
        _user_cache[key] = found
    return found


@functools.cache
def host() -> str:
    """This machine's host name (asked once)."""
    return socket.gethostname()


def now() -> datetime.datetime:
    """The time now, UTC, without a time zone (how the tables store times)."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


@dataclasses.dataclass
class NodeRow:
    """One ``sn_records`` row of a run's node, with its inputs as ``port -> (digest, preview)``."""

    key: str
    label: str
    node: str | None
    module: str | None
    qualname: str | None
    version: str | None
    source: str | None
    type: str
    inputs: dict[str, tuple[str | None, str]]
    outputs: list[str]
    #: for a node of :data:`READERS`, the values of the ports that say what it read
    reads: dict[str, Any] | None = None


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    return type(value) is dict or isinstance(value, Mapping)  # the ABC check costs ~0.4 us; recipes are dicts


#: where a flow-control recipe keeps its labelled parts (``{"label": ..., "recipe": ...}``)
_PARTS = ("body_node", "case", "cases", "else_case", "try_node", "exception_cases")


def _parts(recipe: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The labelled sub-recipes of a for-each, if, while or try recipe: ``{label: recipe}``."""
    found: dict[str, Mapping[str, Any]] = {}
    stack: list[Any] = [recipe.get(k) for k in _PARTS]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif _is_mapping(item):
            if isinstance(item.get("label"), str) and _is_mapping(item.get("recipe")):
                found[item["label"]] = item["recipe"]
            else:  # a case: {"condition": part, "body": part}, an exception case: {"body": part}
                stack.extend(v for k, v in item.items() if k in ("condition", "body"))
    return found


def _children(recipe: Mapping[str, Any], stored: Mapping[str, Any]) -> tuple[dict[str, Mapping[str, Any]], bool]:
    """The child recipes of one graph level by their stored labels, and whether they are a flow
    control's parts: a workflow's ``nodes``; a for-each's or while's body and condition once per
    iteration (stored as ``body_<i>``, ``condition_<i>``), an if's or try's taken branches."""
    nodes = recipe.get("nodes")
    if _is_mapping(nodes):
        return dict(nodes), False
    parts = _parts(recipe)
    if not parts:
        return {}, False
    found: dict[str, Mapping[str, Any]] = {}
    for label in stored:
        base, sep, number = str(label).rpartition("_")
        part = parts.get(label) or (parts.get(base) if sep and number.isdigit() else None)
        if part is not None:
            found[label] = part
    return found, True


def workflow_rows(
    recipe: Mapping[str, Any], nodes: Mapping[str, Any], identify: Identify
) -> tuple[list[NodeRow], list[tuple[str, str, str, str]]]:
    """The records and edges of a stored run: every node with a function reference, at any depth:
    inside macros and the bodies of for-each (one record per iteration), while, if and try.

    Edges are ``(source key, source port, target key, target port)`` between recorded nodes
    of the same graph level (the recipe's ``edges``: ``"target.port": "source.port"``).
    """
    rows: list[NodeRow] = []
    edges: list[tuple[str, str, str, str]] = []
    # one value often feeds several ports (an output read by three nodes): digest it once
    memo: dict[int, tuple[str | None, str]] = {}

    def summary(value: Any) -> tuple[str | None, str]:
        found = memo.get(id(value))
        if found is None:
            found = memo[id(value)] = (digest(value), preview(value))
        return found

    root_info = (recipe.get("reference") or {}).get("info") if _is_mapping(recipe.get("reference")) else None
    if _is_mapping(root_info) and _is_mapping(nodes.get("inputs")):  # a node saved on its own
        module, qualname = root_info.get("module"), root_info.get("qualname")
        if isinstance(module, str) and isinstance(qualname, str):
            version, source = identify(module, qualname)
            rows.append(
                NodeRow(
                    key="", label=str(recipe.get("label") or qualname), node=f"{module}.{qualname}", module=module,
                    qualname=qualname, version=version, source=source, type=str(recipe.get("type")),
                    inputs={str(p): summary(v) for p, v in nodes["inputs"].items()},
                    outputs=[str(p) for p in (nodes.get("outputs") or {})],
                )
            )  # fmt: skip
    stack: list[tuple[Mapping[str, Any], Mapping[str, Any], list[str]]] = [(recipe, nodes, [])]
    while stack:
        level_recipe, level_nodes, prefix = stack.pop()
        children, parts = _children(level_recipe, level_nodes)
        keys: dict[str, str] = {}
        for label, child in children.items():
            if not _is_mapping(child) or child.get("type") == "constant":
                continue
            stored = level_nodes.get(label)
            if not _is_mapping(stored):
                continue
            key_segments = [*prefix, label]
            key = join(*key_segments)
            keys[label] = key
            info = ((child.get("reference") or {}).get("info") or {}) if _is_mapping(child.get("reference")) else {}
            module, qualname = info.get("module"), info.get("qualname")
            name = f"{module}.{qualname}" if isinstance(module, str) and isinstance(qualname, str) else None
            if name is not None or not parts:  # a flow control's body without a function is no call: not recorded
                version, source = identify(str(module), str(qualname)) if name else (None, None)
                ins = stored.get("inputs") or {}
                rows.append(
                    NodeRow(
                        key=key,
                        label=label,
                        node=name,
                        module=module if name else None,
                        qualname=qualname if name else None,
                        version=version,
                        source=source,
                        type=str(child.get("type")),
                        inputs={str(p): summary(v) for p, v in ins.items()},
                        outputs=[str(p) for p in (stored.get("outputs") or {})],
                        reads={p: ins.get(p) for p in READERS[name]} if name in READERS else None,
                    )
                )
            if _is_mapping(stored.get("nodes")) and _children(child, stored["nodes"])[0]:
                stack.append((child, stored["nodes"], [*key_segments, "nodes"]))
        for target, source in (level_recipe.get("edges") or {}).items():
            t_node, _, t_port = str(target).partition(".")
            s_node, _, s_port = str(source).partition(".")
            if t_node in keys and s_node in keys:
                edges.append((keys[s_node], s_port, keys[t_node], t_port))
    return rows, edges


def file_entry(
    p: Path, ident: FileIdentity, *, kind: str, backend: str | None, workflow: str | None,
    metadata: Mapping[str, Any], by: str,
) -> dict[str, Any]:  # fmt: skip
    """The ``sn_files`` row of a queued recording (``created_at``: ISO text, UTC)."""
    return {"path": str(p), "size": ident.size, "mtime_ns": ident.mtime_ns, "content": ident.content,
            "backend": backend, "kind": kind, "workflow": workflow, "metadata": to_json(metadata),
            "created_by": user(), "host": host(), "created_at": now().isoformat(), "recorded_by": by}  # fmt: skip


def metadata_rows(metadata: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The queryable ``sn_metadata`` rows of a file's metadata (without ``file_id``).

    A name holding NUL is not queryable (PostgreSQL text cannot hold it); it stays in ``sn_files.metadata``.
    """
    return [{"name": k, "digest": digest(v), "value": to_json(v)} for k, v in metadata.items() if "\x00" not in k]


def to_json(value: Any) -> str:
    """Sorted-key JSON text (how the JSON columns are written)."""
    return _SORTED_JSON(value)


def save_payload(
    p: Path, ident: FileIdentity, *, backend: str | None, metadata: Mapping[str, Any], type_name: str, by: str
) -> dict[str, Any]:
    """The queued form of a whole-file plain save: the file, its metadata, one record at key ``""``."""
    return {"file": file_entry(p, ident, kind="save", backend=backend, workflow=None, metadata=metadata, by=by),
            "meta": metadata_rows(metadata), "records": [["", None, None, None, None, None, None, [], type_name]],
            "inputs": [], "edges": []}  # fmt: skip


def workflow_payload(
    p: Path, ident: FileIdentity, rows: list[NodeRow], edges: list[tuple[str, str, str, str]], *, label: str,
    backend: str | None, metadata: Mapping[str, Any], by: str, reads: Sequence[tuple[int, str, str | None]] = (),
) -> dict[str, Any]:  # fmt: skip
    """The queued form of a saved run: the file, its metadata, one record per node row, their inputs
    (by row index), the edges and the reads of other results (``(row index, absolute path, key)``;
    the call digests and JSON columns are made at flush time)."""
    record_rows = [[r.key, r.label, r.node, r.module, r.qualname, r.version, r.source, r.outputs, r.type]
                   for r in rows]  # fmt: skip
    input_rows = [[i, port, d, pv] for i, r in enumerate(rows) for port, (d, pv) in r.inputs.items()]
    position = {r.key: i for i, r in enumerate(rows)}
    return {"file": file_entry(p, ident, kind="workflow", backend=backend, workflow=label, metadata=metadata, by=by),
            "meta": metadata_rows(metadata), "records": record_rows, "inputs": input_rows,
            "edges": [[position[s], sp, position[t], tp] for s, sp, t, tp in edges],
            "reads": [[i, path, key] for i, path, key in reads]}  # fmt: skip


def parse_payload(text: Any) -> dict[str, Any] | None:
    """A queued recording's payload if it has the shape :func:`~storage_nodes.catalog.queue.apply`
    needs, else ``None``."""
    try:
        doc = json.loads(text)
        f = doc["file"]
        ok = (
            isinstance(f, dict) and set(f) >= {"path", "created_at"} and isinstance(f["created_at"], str)
            and all(isinstance(m, dict) for m in doc["meta"])
            and all(isinstance(r, list) and len(r) == len(RECORD_FIELDS) and isinstance(r[7], list)
                    for r in doc["records"])
            and all(isinstance(i, list) and len(i) == 4 and 0 <= i[0] < len(doc["records"]) and type(i[1]) is str
                    for i in doc["inputs"])
            and all(isinstance(e, list) and len(e) == 4 and 0 <= e[0] < len(doc["records"])
                    and 0 <= e[2] < len(doc["records"]) for e in doc["edges"])
            and all(isinstance(r, list) and len(r) == 3 and 0 <= r[0] < len(doc["records"]) and type(r[1]) is str
                    and (r[2] is None or type(r[2]) is str) for r in doc.setdefault("reads", []))
        )  # fmt: skip
        datetime.datetime.fromisoformat(f["created_at"])
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    return doc if ok else None
