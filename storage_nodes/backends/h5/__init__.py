"""The ``h5`` archive backend: browsable, partially loadable and updatable HDF5 files.

The HDF5 tree stays coarse (see :mod:`.datasets`): one MessagePack index, packed heap segments for
everything small, one dataset per big array. ``inspect`` reads the index (and unpacks
plain blobs, which is safe); ``load(key=...)`` reads the slices one entry needs;
``save(key=...)`` replaces one entry crash-safely. The format is specified in
``docs/format.md`` (section ``h5``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import CorruptFileError, KeyNotFoundError, StorageError, UnsafeLoadError
from ...keys import escape, missing_entry, navigate, split
from ...listing import Listing
from ...provenance.metadata import ObjectCollector, environment_record
from .. import safetypes
from ..base import Backend, CheckCallback
from . import codec, indexcodec, reader, tree, writer
from .decoder import Decoder
from .encoder import Encoder

__all__ = ["H5Backend"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def new_index(
    root: dict[str, Any], classes: list[list[str]], encoder: Encoder, metadata: dict[str, Any], env: dict[str, Any]
) -> dict[str, Any]:
    return {
        "format": indexcodec.FORMAT,
        "format_version": indexcodec.FORMAT_VERSION,
        "root": root,
        "classes": classes,
        "metadata": metadata,
        "environment": env,
        "updates": [],
        "next_id": encoder.next_id,
        "next_heap": 1,
        "next_array": encoder.next_array,
    }


def encode_new(obj: Any, path: str, *, compression: Any) -> tuple[Encoder, Any, ObjectCollector, list[list[str]]]:
    classes: list[list[str]] = []
    collector = ObjectCollector()
    encoder = Encoder(
        heap_name="heap_0",
        array_prefix="array_",
        next_array=0,
        next_id=0,
        classes=classes,
        collector=collector,
        compression=compression,
    )
    return encoder, encoder.encode(obj, path), collector, classes


def _compression(options: dict[str, Any]) -> Any:
    value = options.get("compression")
    if value not in (None, False, "gzip", "lzf") and not isinstance(value, int):
        from ...errors import InvalidArgumentError

        raise InvalidArgumentError(f"compression must be None, 'gzip', 'lzf' or a gzip level 0-9, got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return value or None


class H5Backend(Backend):
    """HDF5 archive: coarse tree, packed small data, one dataset per big array."""

    name = "h5"
    format_version = indexcodec.FORMAT_VERSION
    supports_browse = True
    supports_partial_read = True
    supports_partial_write = True
    supports_safe_load = True
    can_run_code = True
    save_options = frozenset({"compression"})
    read_options = frozenset({"raw", "refused"})

    def sniff(self, head: bytes) -> bool:
        return head[:8] == HDF5_MAGIC

    # -- write ------------------------------------------------------------------------------
    def write(self, obj: Any, path: Path, *, metadata: dict[str, Any], options: dict[str, Any]) -> None:
        compression = _compression(options)
        encoder, enc, collector, classes = encode_new(obj, "", compression=compression)
        env = environment_record(collector.objects, backend=self.name, format_version=self.format_version)
        index = new_index(enc.node, classes, encoder, metadata, env)
        try:
            writer.write_file(path, index, "heap_0", enc.heap, enc.arrays, compression)
        except StorageError:
            raise
        except (OSError, ValueError, TypeError) as exc:
            raise StorageError(f"cannot write {path}: {exc}", path=path) from exc

    # -- read -------------------------------------------------------------------------------
    def read(
        self,
        path: Path,
        *,
        key: str | None,
        safe: bool,
        check: CheckCallback,
        raw: bool = False,
        refused: str = "error",
    ) -> Any:
        segments = split(key)
        with reader.open_reader(path) as r:
            try:
                return self._read(r, path, key, segments, safe, check, raw=raw, placeholders=refused == "placeholder")
            except StorageError:
                raise
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise CorruptFileError(
                    f"{path} has a damaged index near {key or 'the root'!r} ({type(exc).__name__}: {exc})",
                    path=path,
                    key=key,
                ) from None

    def _read(
        self,
        r: reader.Reader,
        path: Path,
        key: str | None,
        segments: list[str],
        safe: bool,
        check: CheckCallback,
        *,
        raw: bool = False,
        placeholders: bool = False,
    ) -> Any:
        index = r.index
        root = index["root"]
        node, used = tree.find(root, segments, r.definition)
        # below a packed blob, array, opaque leaf or object (e.g. the items of an OrderedDict),
        # the rest of the key is followed in the rebuilt value
        if node is tree.MISSING or (used < len(segments) and tree.kind(node) not in ("p", "a", "x", "v", "o", "n")):
            raise self._missing(path, key, segments, used, node, index["classes"])
        here = "/".join(escape(s) for s in segments[:used])
        if safe and not placeholders:  # (with placeholders the decoder puts one in place of each)
            bad = tree.unsafe_node(node, here, index["classes"])
            if bad is not None:
                bad_key, bad_node = bad
                what = "an opaque pickled object" if bad_node["k"] == "x" else "an instance of a class"
                if bad_node["k"] == "g":
                    what = "a reference to a class or function"
                elif bad_node["k"] == "m":
                    what = "a method bound to an object"
                elif bad_node["k"] == "n" and safetypes.by_name(bad_node.get("t")) is None:
                    what = f"a value of the safe type {bad_node.get('t')!r}, which is not registered here"
                elif bad_node["k"] == "n":
                    raise UnsafeLoadError(
                        f"refusing to load {bad_key or 'the root'!r} of {path}: it holds a {bad_node.get('t')} that "
                        f"the file says is a {self._class_label(index, bad_node)}, not of that type's package; the "
                        "file is damaged or forged",
                        path=path,
                        key=bad_key or key,
                    )
                raise UnsafeLoadError(
                    f"refusing to load {bad_key or 'the root'!r} of {path} with safe=True: it holds {what} "
                    f"({self._class_label(index, bad_node)}), which needs importing or running code; load with "
                    "safe=False only if you trust the file, or load a plain entry by key",
                    path=path,
                    key=bad_key or key,
                )
        whole = not segments
        check(index.get("environment"), None if whole else sorted(tree.modules_needed(node, index["classes"])))
        if whole:
            r.prefetch_all()
        else:
            r.prefetch(reader.heap_slices(node))
        decoder = Decoder(
            path=path,
            classes=index["classes"],
            heap=r.heap,
            dataset=r.dataset,
            definition=r.definition,
            safe=safe,
            raw=raw,
            placeholders=placeholders,
        )
        obj = decoder.decode(node, here)
        if used < len(segments):
            rest = "/".join(escape(s) for s in segments[used:])
            obj = navigate(obj, rest, path=path, within=segments[:used])
        return obj

    @staticmethod
    def _class_label(index: dict[str, Any], node: dict[str, Any]) -> str:
        if node["k"] == "x":
            return f"{node.get('m')}.{node.get('t')}"
        if node["k"] == "m":
            return f"method {node.get('n')!r}"
        if "c" not in node:
            return str(node.get("t"))
        module, qualname = index["classes"][node["c"]]
        return f"{module}.{qualname}"

    @staticmethod
    def _missing(
        path: Path, key: str | None, segments: list[str], used: int, node: Any, classes: list[list[str]]
    ) -> KeyNotFoundError:
        """``segments[used]`` is not a child of ``node`` (reached by ``segments[:used]``)."""
        if node is tree.MISSING:
            what, names = "shared reference", []
        else:
            what = tree.type_name(node, classes)
            names = [name for name, _ in tree.children(node)]
        segment = segments[used] if used < len(segments) else ""
        return missing_entry(path, key, segments[:used], segment, what, names)

    # -- list -------------------------------------------------------------------------------
    def list(self, path: Path, *, key: str | None = None, depth: int | None = None) -> Listing:
        segments = split(key)
        levels = tree.MAX_DEPTH if depth is None else depth
        with reader.open_reader(path, cached_index=True) as r:
            index = r.index
            try:
                node, used = tree.find(index["root"], segments, r.definition)
                if node is tree.MISSING or (used < len(segments) and tree.kind(node) not in ("p", "v")):
                    raise self._missing(path, key, segments, used, node, index["classes"])
                here = "/".join(escape(s) for s in segments[:used])
                if used < len(segments):  # inside plain data: describe only the part asked for
                    value = codec.unpack(r.heap(node["h"])) if tree.kind(node) == "p" else node["v"]
                    rest = "/".join(escape(s) for s in segments[used:])
                    value = navigate(value, rest, path=path, within=segments[:used])
                    wanted = "/".join(escape(s) for s in segments)
                    entry = tree.describe_value(value, wanted, segments[-1], levels)
                else:
                    name = segments[used - 1] if used else ""
                    # references may point outside the listed part (another key, or the
                    # constructor arguments of an object, which are not listed as children)
                    shared = tree.defined_at(index["root"])
                    # the blobs the listing looks inside, read and unpacked now (errors are
                    # raised here, the file is closed after); entries are built when reached
                    slices = tree.blob_slices(node, levels)
                    r.prefetch(slices)
                    blobs = {tuple(s): codec.unpack(r.heap(s)) for s in slices}
                    entry = tree.describe_node(
                        node,
                        here,
                        name,
                        classes=index["classes"],
                        heap=lambda s: blobs[tuple(s)],
                        shared=shared,
                        depth=levels,
                        file=str(path),
                    )
            except StorageError:
                raise
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise CorruptFileError(f"{path} has a damaged index ({type(exc).__name__}: {exc})", path=path) from None
            return Listing(
                path=str(path),
                backend=self.name,
                format_version=int(index.get("format_version", 0)),
                root=entry,
                metadata=index.get("metadata") or {},
                environment=index.get("environment") or {},
                key=key,
                info={"updates": index.get("updates", []), "classes": [".".join(c) for c in index["classes"]]},
            )

    # -- update -----------------------------------------------------------------------------
    def update(self, obj: Any, path: Path, *, key: str, metadata: dict[str, Any], options: dict[str, Any]) -> None:
        from .update import update

        update(self.write, obj, path, key=key, metadata=metadata, options=options)

    def compact(self, path: Path) -> None:
        """Rewrite ``path`` with only its live data (crash-safe, under the writer lock)."""
        from .compaction import compact

        compact(path)
