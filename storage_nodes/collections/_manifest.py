"""The collection manifest: a human-readable JSON file listing stored results (see docs/format.md).

::

    {"storage_nodes_collection": {"format": "storage_nodes-collection", "format_version": 1},
     "title": "...", "description": "...", "creator": "...", "license": null,
     "created": "2026-11-25T15:00:00Z", "modified": "...", "metadata": {...},
     "members": [{"name", "location", "backend", "format_version", "size", "sha256",
                  "tags", "metadata", "environment", "added"}, ...]}

The first key differs from the json backend's ``"storage_nodes"`` so neither sniffer
claims the other's files. This module only reads, checks and writes that data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..atomic import atomic_path, writer_lock
from ..errors import CorruptFileError, FileNotFoundStorageError, InvalidArgumentError, StorageError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "HEADER_KEY",
    "Member",
    "check_name",
    "environment_summary",
    "location_for",
    "member_of_file",
    "normalized",
    "new_manifest",
    "now",
    "read_manifest",
    "resolve_location",
    "safe_relative",
    "same_file",
    "sniff",
    "updating",
    "write_manifest",
]

HEADER_KEY = "storage_nodes_collection"
FORMAT = "storage_nodes-collection"
FORMAT_VERSION = 1
_SNIFF = re.compile(rb'^\s*\{\s*"' + HEADER_KEY.encode() + rb'"\s*:')
_ENV_KEYS = ("storage_nodes", "backend", "format_version", "python", "platform", "timestamp", "modules")
_MODULE_KEYS = ("package", "distribution", "version", "git", "sources", "found")
MAX_NAME = 200


def now() -> str:
    """The current UTC time as ISO 8601, e.g. ``'2026-11-25T15:00:00Z'``."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sniff(head: bytes) -> bool:
    """Whether bytes starting a file look like a collection manifest."""
    return _SNIFF.match(head) is not None


def check_name(name: object) -> str:
    """Return ``name`` if it is a valid member name, else raise :class:`InvalidArgumentError`.

    A member name is the first segment of a collection key, so it may not contain ``/``.

    >>> check_name("relax-300K")
    'relax-300K'
    """
    if not isinstance(name, str):
        raise InvalidArgumentError(f"a member name must be a str, got {type(name).__name__}")
    bad = (
        not name
        or name != name.strip()
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or len(name) > MAX_NAME
        or any(unicodedata.category(c) == "Cc" for c in name)
    )
    if bad:
        raise InvalidArgumentError(
            f"invalid member name {name!r}: use 1-{MAX_NAME} printable characters without '/', '\\' "
            "or surrounding spaces, e.g. 'relax-300K'",
            key=name if isinstance(name, str) else None,
        )
    return name


def environment_summary(record: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parts of a file's environment record a collection keeps (what versioning compares)."""
    if not record:
        return {}
    summary = {k: record[k] for k in _ENV_KEYS if k in record and k != "modules"}
    modules = record.get("modules") or {}
    summary["modules"] = {
        name: {k: rec[k] for k in _MODULE_KEYS if k in rec}
        for name, rec in sorted(modules.items())
        if isinstance(rec, Mapping)
    }
    return json.loads(json.dumps(summary, default=str))  # plain JSON data, detached from the source


@dataclasses.dataclass
class Member:
    """One stored file of a collection, as recorded in the manifest."""

    name: str
    location: str
    backend: str
    size: int
    sha256: str
    format_version: int | None = None
    tags: list[str] = dataclasses.field(default_factory=list)
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    environment: dict[str, Any] = dataclasses.field(default_factory=dict)
    added: str = ""

    def __repr__(self) -> str:  # the dataclass repr would include the whole environment record
        tags = f", tags {self.tags}" if self.tags else ""
        what = f"{self.backend}, {self.size} bytes, sha256 {self.sha256[:12]}...{tags}"
        return f"<Member {self.name!r}: {self.location} ({what})>"

    def to_dict(self) -> dict[str, Any]:
        """The manifest record (shares the nested tags/metadata/environment, which are plain data)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Any, *, manifest: Path) -> Member:
        """Build a member from manifest data, or raise :class:`CorruptFileError` naming it."""
        name = d.get("name") if isinstance(d, dict) else None
        try:
            if not isinstance(d, dict):
                raise TypeError("not an object")
            member = cls(
                name=check_name(d["name"]),
                location=str(d["location"]),
                backend=str(d["backend"]),
                size=int(d["size"]),
                sha256=str(d["sha256"]),
                format_version=d.get("format_version"),
                tags=[str(t) for t in d.get("tags") or []],
                metadata=dict(d.get("metadata") or {}),
                environment=dict(d.get("environment") or {}),
                added=str(d.get("added") or ""),
            )
        except (KeyError, TypeError, ValueError, StorageError) as exc:
            raise CorruptFileError(
                f"{manifest}: member {name!r} is malformed ({type(exc).__name__}: {exc})", path=manifest, key=name
            ) from None
        if "\x00" in member.location or not member.location:
            raise CorruptFileError(f"{manifest}: member {name!r} has an invalid location", path=manifest, key=name)
        return member


def new_manifest(
    *, title: str, description: str, creator: str | list[str] | None, license: str | None, metadata: dict[str, Any]
) -> dict[str, Any]:
    """The data of a new, empty manifest."""
    stamp = now()
    return {
        HEADER_KEY: {"format": FORMAT, "format_version": FORMAT_VERSION},
        "title": title,
        "description": description,
        "creator": creator,
        "license": license,
        "created": stamp,
        "modified": stamp,
        "metadata": metadata,
        "members": [],
    }


def parse_manifest(text: str | bytes, *, path: Path) -> tuple[dict[str, Any], list[Member]]:
    """Check manifest text; return (the document without members, the members)."""
    try:
        doc = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CorruptFileError(f"{path} is not a valid collection manifest ({exc})", path=path) from None
    header = doc.get(HEADER_KEY) if isinstance(doc, dict) else None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CorruptFileError(
            f"{path} is not a storage_nodes collection manifest (no {HEADER_KEY!r} header)", path=path
        )
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise CorruptFileError(
            f"{path} is a collection manifest of format version {version!r}; this storage_nodes reads "
            f"version {FORMAT_VERSION}: upgrade storage_nodes",
            path=path,
        )
    raw = doc.get("members")
    if not isinstance(raw, list):
        raise CorruptFileError(f"{path}: 'members' must be a list", path=path)
    members = [Member.from_dict(d, manifest=path) for d in raw]
    seen: set[str] = set()
    for m in members:
        if m.name in seen:
            raise CorruptFileError(f"{path} lists member {m.name!r} twice", path=path, key=m.name)
        seen.add(m.name)
    if not isinstance(doc.get("metadata", {}), dict):
        raise CorruptFileError(f"{path}: 'metadata' must be an object", path=path)
    return {k: v for k, v in doc.items() if k != "members"}, members


def read_manifest(path: Path) -> tuple[dict[str, Any], list[Member]]:
    """Read and check the manifest file ``path``."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundStorageError(f"no such collection manifest: {path}", path=path) from None
    except IsADirectoryError:
        raise CorruptFileError(f"{path} is a directory, not a collection manifest", path=path) from None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}", path=path) from None
    return parse_manifest(text, path=path)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)  # no indent: the C encoder


def dump_manifest(doc: Mapping[str, Any], members: list[Member]) -> str:
    """The manifest as JSON text: the header key first, one line per top-level field and one
    line per member (readable, diff-friendly, and fast to rewrite for thousands of members)."""
    head = {HEADER_KEY: doc[HEADER_KEY], **{k: v for k, v in doc.items() if k not in (HEADER_KEY, "members")}}
    lines = [f"  {_json(k)}: {_json(v)}" for k, v in head.items()]
    rows = ",\n".join(f"    {_json(m.to_dict())}" for m in members)
    lines.append(f'  "members": [\n{rows}\n  ]' if members else '  "members": []')
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write_manifest(path: Path, doc: Mapping[str, Any], members: list[Member]) -> None:
    """Write the manifest atomically (temp file + replace)."""
    text = dump_manifest(doc, members)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def updating(manifest: Path) -> Iterator[None]:
    """Hold the manifest's writer lock; OS errors (read-only directory, disk full) become
    :class:`StorageError` naming the manifest."""
    try:
        with writer_lock(manifest):
            yield
    except StorageError:
        raise
    except OSError as exc:
        raise StorageError(f"cannot update {manifest}: {exc}", path=manifest) from None


def normalized(path: Path) -> Path:
    """``path`` made absolute, without ``.`` or ``..`` segments, naming the same file.

    ``..`` after a symbolic link to a directory goes up from the link's target (as the OS
    does), so the part up to the last ``..`` is resolved; later links are kept as given.

    >>> normalized(Path("/data/./runs/sub/../a.h5"))  # doctest: +SKIP
    PosixPath('/data/runs/a.h5')
    """
    parts = Path(path).parts
    if ".." not in parts:
        return Path(os.path.abspath(path))
    last = len(parts) - 1 - parts[::-1].index("..")
    head = Path(os.path.realpath(Path(*parts[: last + 1])))
    return Path(os.path.abspath(head.joinpath(*parts[last + 1 :])))


def location_for(member: Path, manifest: Path) -> str:
    """How the manifest records ``member``: ``/``-separated and without ``.`` or ``..`` in the
    member's own path; relative to the manifest's directory when the two share a directory
    below the file system root and the relative path leads to the same file, else absolute.

    >>> location_for(Path("runs/./sub/../a.h5"), Path("paper/collection.json"))  # doctest: +SKIP
    '../runs/a.h5'
    """
    member = normalized(member)
    base = normalized(manifest).parent
    try:
        common = Path(os.path.commonpath([member, base]))
    except ValueError:  # different drives (Windows)
        return member.as_posix()
    if common == Path(common.anchor):
        return member.as_posix()
    relative = Path(os.path.relpath(member, base)).as_posix()
    if relative.startswith("../") and not same_file(base / relative, member):
        return member.as_posix()  # the manifest's directory is reached through a link: '..' would go elsewhere
    return relative


def resolve_location(location: str, manifest: Path) -> Path:
    """The file a recorded location points to."""
    p = Path(location)
    return p if p.is_absolute() else Path(os.path.abspath(manifest)).parent / p


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are the same file: the same inode when both exist (links and
    other spellings included), else the same normalized path.

    >>> same_file(Path("runs/a.h5"), Path("runs/sub/../a.h5"))  # doctest: +SKIP
    True
    """
    try:
        return os.path.samefile(a, b)
    except OSError:
        return normalized(a) == normalized(b)


def safe_relative(name: str) -> bool:
    """Whether ``name`` is a safe relative archive path: no NUL, no absolute path or drive,
    no backslash, no ``..`` or empty segment."""
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or ":" in name.split("/", 1)[0]:
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def member_of_file(members: Sequence[Member], location: str, sha256: str, src: Path, manifest: Path) -> Member | None:
    """The member that already records the file ``src``: the same location, or the same
    content and the same file on disk (a link or another absolute spelling)."""
    for m in members:
        if m.location == location or (m.sha256 == sha256 and same_file(resolve_location(m.location, manifest), src)):
            return m
    return None
