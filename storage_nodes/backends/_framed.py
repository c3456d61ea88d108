"""The framed file layout shared by the pickle and cloudpickle backends.

::

    offset 0   8 bytes   magic (one per backend, e.g. b"\\x93SN-PKL\\n")
    offset 8   8 bytes   header offset H, unsigned little-endian
    offset 16  ...       payload: one standard pickle stream (protocol 5)
    offset H   to EOF    header: UTF-8 JSON {"format", "format_version", "backend",
                         "metadata", "environment", "root"}

The header comes last so it can describe what was met while pickling; it doubles as a
commit marker (a file cut short has no valid header). ``inspect`` reads only the first
16 bytes and the header: it never unpickles.
"""

from __future__ import annotations

import json
import pickle
import struct
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, ClassVar

from ..atomic import open_new
from ..describe import describe
from ..errors import (
    CorruptFileError,
    KeyNotFoundError,
    SerializationError,
    StorageError,
    UnsafeLoadError,
    UnsupportedOperationError,
)
from ..keys import escape, navigate, split, suggest
from ..listing import Entry, Listing, prune
from ..provenance.metadata import ObjectCollector, environment_record
from .base import Backend, CheckCallback

PREFIX = struct.Struct("<8sQ")


def write_framed(
    f: IO[bytes],
    magic: bytes,
    write_payload: Callable[[IO[bytes]], None],
    header: Callable[[], dict[str, Any]],
) -> None:
    """Write the layout to ``f``: ``write_payload(f)`` writes the pickle stream, then
    ``header()`` (called after the payload, so it can report what was met) is appended."""
    f.write(PREFIX.pack(magic, 0))
    write_payload(f)
    offset = f.tell()
    f.write(json.dumps(header(), separators=(",", ":"), allow_nan=False).encode())
    f.seek(8)
    f.write(struct.pack("<Q", offset))


def read_frame(path: Path, magic: bytes) -> tuple[dict[str, Any], int, int]:
    """Return (header, payload start, payload end) after validating the layout."""
    try:
        with open(path, "rb") as f:
            prefix = f.read(PREFIX.size)
            if len(prefix) < PREFIX.size or prefix[:8] != magic:
                raise CorruptFileError(
                    f"{path} is not a {magic[3:-1].decode(errors='replace')} file of storage_nodes "
                    "(wrong or missing magic bytes)",
                    path=path,
                )
            (offset,) = struct.unpack("<Q", prefix[8:])
            size = path.stat().st_size
            if offset < PREFIX.size or offset >= size:
                raise CorruptFileError(
                    f"{path} is truncated or damaged: its header offset {offset} lies outside the file ({size} bytes)",
                    path=path,
                )
            f.seek(offset)
            raw = f.read()
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}", path=path) from None
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict) or "format_version" not in header:
            raise ValueError("no format_version")
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptFileError(f"{path} has a damaged header ({exc})", path=path) from None
    return header, PREFIX.size, offset


class FramedPickleBackend(Backend):
    """Base of the pickle-stream backends: header + one pickle stream, never browsable inside.

    Loading unpickles, which can import modules and run code named by the file: these
    backends refuse ``safe=True`` before reading a single payload byte.
    """

    magic: ClassVar[bytes]
    supports_safe_load = False
    can_run_code = True
    save_options: ClassVar[frozenset[str] | None] = frozenset()
    protocol = 5

    def make_pickler(self, f: IO[bytes], collector: ObjectCollector) -> pickle.Pickler:
        raise NotImplementedError

    def sniff(self, head: bytes) -> bool:
        return head[:8] == self.magic

    def write(self, obj: Any, path: Path, *, metadata: dict[str, Any], options: dict[str, Any]) -> None:
        collector = ObjectCollector()

        def payload(f: IO[bytes]) -> None:
            try:
                self.make_pickler(f, collector).dump(obj)
            except RecursionError:
                raise SerializationError(
                    f"cannot {self.name} {type(obj).__name__} for {path}: nesting too deep", path=path
                ) from None
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                hint = "; try backend='cloudpickle' or 'h5'" if self.name == "pickle" else ""
                raise SerializationError(
                    f"cannot save to {path}: the {self.name!r} backend cannot store this "
                    f"{type(obj).__name__} ({exc}){hint}",
                    path=path,
                ) from None

        def header() -> dict[str, Any]:
            return {
                "format": "storage_nodes",
                "format_version": self.format_version,
                "backend": self.name,
                "metadata": metadata,
                "environment": environment_record(
                    collector.objects, backend=self.name, format_version=self.format_version
                ),
                "root": describe(obj).to_dict(),
            }

        with open_new(path) as f:
            write_framed(f, self.magic, payload, header)

    def read(self, path: Path, *, key: str | None, safe: bool, check: CheckCallback) -> Any:
        if safe:
            raise UnsafeLoadError(
                f"refusing to load {path} with safe=True: the {self.name!r} backend unpickles, which "
                "can import modules and run code named by the file; load with safe=False only if you "
                "trust the file",
                path=path,
                key=key,
            )
        header, start, end = read_frame(path, self.magic)
        check(header.get("environment"), None)
        with open(path, "rb") as f:
            f.seek(start)
            payload = f.read(end - start)
        if len(payload) != end - start:
            raise CorruptFileError(f"{path} is truncated", path=path)
        try:
            obj = pickle.loads(payload)
        except (ImportError, AttributeError) as exc:
            raise StorageError(
                f"cannot load {path}: {exc}; the stored object needs code that is not importable here "
                f"(see storage_nodes.inspect({str(path)!r}) for the modules it was saved with)",
                path=path,
                key=key,
            ) from exc
        except Exception as exc:
            raise CorruptFileError(
                f"{path} holds a damaged pickle stream ({type(exc).__name__}: {exc})", path=path
            ) from None
        return navigate(obj, key, path=path)

    def list(self, path: Path, *, key: str | None = None, depth: int | None = None) -> Listing:
        header, _, _ = read_frame(path, self.magic)
        try:
            root = Entry.from_dict(header["root"])
        except (KeyError, TypeError) as exc:
            raise CorruptFileError(f"{path} has a damaged header ({exc})", path=path) from None
        if key:
            wanted = "/".join(escape(s) for s in split(key))
            found = next((e for e in root.walk() if e.path == wanted), None)
            first = wanted.split("/", 1)[0]
            listed = [c.path for c in root.children]
            if found is None and root.length == len(listed) and first not in listed:  # surely absent
                raise KeyNotFoundError(
                    f"key {key!r} not found in {path}: the root ({root.type}) has no entry "
                    f"{split(key)[0]!r}{suggest(first, listed)}; use storage_nodes.inspect({str(path)!r}) "
                    "to list the keys",
                    path=path,
                    key=key,
                )
            if found is None:
                raise UnsupportedOperationError(
                    f"the {self.name!r} backend lists only the top level of {path} without unpickling; "
                    f"{key!r} is not there. load(..., key={key!r}) reads it (unpickling the file), or "
                    "save with a browsable backend",
                    path=path,
                    key=key,
                    capability="supports_browse",
                )
            root = found
        if depth is not None:
            root = prune(root, depth)
        return Listing(
            path=str(path),
            backend=self.name,
            format_version=int(header.get("format_version", 0)),
            root=root,
            metadata=header.get("metadata") or {},
            environment=header.get("environment") or {},
            key=key,
        )
