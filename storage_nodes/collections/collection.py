"""Collections: group stored results from any directories, browse them as one, publish them as one zip.

A collection is a JSON manifest (``docs/format.md``, section Collections) listing member
files with name, location, backend, size, sha256, tags, metadata and environment record::

    col = sn.Collection.create("paper/collection.json", title="Cu relaxations")
    col.add("runs/relax_300K.pkl", name="relax-300K", tags=["Cu", "300K"])
    print(col.inspect())                        # one tree across all members, no data loaded
    col.load("relax-300K", key="energy")        # or col.load("relax-300K/energy")
    print(col.verify())                         # missing files, changed checksums, versions
    col.export("paper.zip")                     # manifest + members + checksums + RO-Crate
    sn.Collection.open("paper.zip").load("relax-300K")   # straight from the bundle

Writers of one manifest (threads or processes) are serialised with a file lock and every
write replaces the manifest atomically, so concurrent ``add`` calls never lose members.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from .. import api, registry
from .._validation import validated
from ..errors import (
    CorruptFileError,
    DuplicateMemberError,
    FileExistsStorageError,
    FileNotFoundStorageError,
    InvalidArgumentError,
    KeyNotFoundError,
    StorageError,
    UnsupportedOperationError,
)
from ..keys import escape
from ..listing import Entry, Listing
from ..provenance.metadata import validate_metadata
from ..provenance.versioning import VersionPolicy
from ._bundle import CHECKSUMS, CRATE, MANIFEST, Bundle, is_bundle, write_bundle
from ._manifest import (
    Member,
    check_name,
    environment_summary,
    location_for,
    member_of_file,
    new_manifest,
    now,
    read_manifest,
    resolve_location,
    safe_relative,
    sniff,
    updating,
    write_manifest,
)
from ._merge import merge_members
from ._progress import sha256_file
from ._verify import Problem, VerifyReport, check_members
from ._verify import ProblemKind as ProblemKind  # it was defined here; still importable from here

__all__ = ["Collection", "Member", "Problem", "VerifyReport", "is_collection", "verify"]

PathLike = str | os.PathLike[str]


def is_collection(path: PathLike) -> bool:
    """Whether ``path`` is a collection manifest or a collection bundle (zip); never raises.

    >>> is_collection("paper/collection.json")  # doctest: +SKIP
    True
    """
    p = Path(path).expanduser()
    try:
        if not p.is_file():
            return False
        with open(p, "rb") as f:
            head = f.read(1024)
    except OSError:
        return False
    return sniff(head) or is_bundle(p)


def verify(path: PathLike, *, policy: VersionPolicy = "compatible", progress: bool | None = None) -> VerifyReport:
    """Open the collection (manifest or bundle) at ``path`` and verify it.

    >>> verify("paper.zip").ok  # doctest: +SKIP
    True
    """
    with Collection.open(path) as col:
        return col.verify(policy=policy, progress=progress)


def _renamed(exc: StorageError, message: str, *, path: Path, key: str) -> StorageError:
    new = type(exc).__new__(type(exc))
    StorageError.__init__(new, message, path=path, key=key)
    if hasattr(exc, "differences"):
        new.differences = exc.differences  # type: ignore[attr-defined]
    return new


def _check_tags(tags: Sequence[str] | None) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str) or not all(isinstance(t, str) and t for t in tags):
        raise InvalidArgumentError(f"tags must be a list of non-empty str, e.g. ['Cu', '300K'], got {tags!r:.80}")
    return list(dict.fromkeys(tags))


def _prefixed(entry: Entry, prefix: str) -> Entry:
    """A copy of ``entry``'s tree with every key put below ``prefix``."""
    return dataclasses.replace(
        entry,
        path=f"{prefix}/{entry.path}" if entry.path else prefix,
        children=[_prefixed(c, prefix) for c in entry.children],
    )


class Collection:
    """A named group of stored files. Make one with :meth:`create`, read one with :meth:`open`."""

    def __init__(self, path: Path, doc: dict[str, Any], members: list[Member], bundle: Bundle | None) -> None:
        self._path = path
        self._doc = doc
        self._members = members
        self._bundle = bundle

    # -- making and opening ---------------------------------------------------------------
    @classmethod
    @validated
    def create(
        cls,
        manifest_path: PathLike,
        *,
        title: str = "",
        description: str = "",
        creator: str | list[str] | None = None,
        license: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
    ) -> Self:
        """Write a new, empty manifest at ``manifest_path`` and return the collection.

        ``license`` is an SPDX identifier (``"CC-BY-4.0"``), a URL or a sentence; it goes into
        the RO-Crate metadata of exports. ``exist_ok=True`` opens an existing manifest instead
        of raising :class:`FileExistsStorageError`. Missing parent directories are created.

        >>> col = Collection.create("paper/collection.json", title="Cu relaxations")  # doctest: +SKIP
        """
        p = Path(manifest_path).expanduser()
        user_metadata = validate_metadata(metadata, path=p)
        if p.is_dir():
            raise InvalidArgumentError(
                f"cannot create a collection at {p}: it is a directory; give a file name", path=p
            )
        with updating(p):
            if p.exists():
                if exist_ok:
                    return cls.open(p)
                raise FileExistsStorageError(
                    f"{p} exists; open it with Collection.open() or pass exist_ok=True", path=p
                )
            doc = new_manifest(
                title=title or p.stem,
                description=description,
                creator=creator,
                license=license,
                metadata=user_metadata,
            )
            write_manifest(p, doc, [])
        return cls(p, doc, [], None)

    @classmethod
    @validated
    def open(cls, path: PathLike) -> Self:
        """Open a collection manifest, or a bundle zip written by :meth:`export` (read-only).
        A directory holding a ``collection.json`` opens that manifest.

        >>> Collection.open("paper.zip").load("relax-300K")  # doctest: +SKIP
        """
        p = Path(path).expanduser()
        if p.is_dir() and (p / MANIFEST).is_file():
            p = p / MANIFEST
        if not p.exists():
            raise FileNotFoundStorageError(f"no such collection: {p}", path=p)
        if not p.is_dir() and is_bundle(p):
            bundle = Bundle(p)
            return cls(p, bundle.doc, bundle.members, bundle)
        doc, members = read_manifest(p)
        return cls(p, doc, members, None)

    def reload(self) -> None:
        """Re-read the manifest (to see members other processes added).

        >>> col.reload(); col.names  # doctest: +SKIP
        ['relax-300K', 'relax-600K']
        """
        if self._bundle is None:
            self._doc, self._members = read_manifest(self._path)

    def close(self) -> None:
        """Release a bundle's zip and delete members extracted from it (no-op for manifests)."""
        if self._bundle is not None:
            self._bundle.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading the manifest -------------------------------------------------------------
    @property
    def path(self) -> Path:
        """The manifest file, or the bundle zip."""
        return self._path

    @property
    def is_bundle(self) -> bool:
        """True when opened from an exported zip (read-only)."""
        return self._bundle is not None

    @property
    def title(self) -> str:
        """The title (default: the manifest's file stem); the RO-Crate ``name`` of exports."""
        return str(self._doc.get("title") or "")

    @property
    def description(self) -> str:
        """The longer description ('' when none was given)."""
        return str(self._doc.get("description") or "")

    @property
    def creator(self) -> str | list[str] | None:
        """The author name or ORCID URL, a list of them, or None."""
        creator: str | list[str] | None = self._doc.get("creator")
        return creator

    @property
    def license(self) -> str | None:
        """The license (SPDX identifier, URL or text), or None."""
        value = self._doc.get("license")
        return None if value is None else str(value)

    @property
    def metadata(self) -> dict[str, Any]:
        """The collection's user metadata (a copy)."""
        return json.loads(json.dumps(self._doc.get("metadata") or {}))

    @property
    def members(self) -> list[Member]:
        """The member records, in the order they were added (copies)."""
        return [dataclasses.replace(m) for m in self._members]

    @property
    def names(self) -> list[str]:
        """The member names, in the order they were added."""
        return [m.name for m in self._members]

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __contains__(self, name: object) -> bool:
        return any(m.name == name for m in self._members)

    def __repr__(self) -> str:
        kind = "bundle" if self._bundle is not None else "manifest"
        return f"<Collection {self.title!r} ({kind} {self._path}, {len(self)} member{'' if len(self) == 1 else 's'})>"

    def member(self, name: str) -> Member:
        """The record of member ``name``; an unknown name raises :class:`KeyNotFoundError`.

        >>> col.member("relax-300K").sha256  # doctest: +SKIP
        'c3971e43dd2d...'
        """
        for m in self._members:
            if m.name == name:
                return dataclasses.replace(m)
        raise KeyNotFoundError(
            f"collection {self._path} has no member {name!r}; its members are {self.names}", path=self._path, key=name
        )

    def path_of(self, name: str, *, progress: bool | None = None) -> Path:
        """The file of member ``name`` (for a bundle: extracted and checksum-verified first).

        >>> col.path_of("relax-300K")  # doctest: +SKIP
        PosixPath('/home/me/runs/relax_300K.pkl')
        """
        m = self.member(name)
        if self._bundle is not None:
            return self._bundle.extract(m, show=progress)
        p = resolve_location(m.location, self._path)
        if not p.exists():
            raise FileNotFoundStorageError(
                f"member {name!r} of {self._path} is missing: no file at {p} (recorded as {m.location!r})",
                path=p,
                key=name,
            )
        return p

    # -- changing the manifest ------------------------------------------------------------
    def _writable(self, action: str) -> None:
        if self._bundle is not None:
            raise UnsupportedOperationError(
                f"cannot {action} {self._path}: a bundle is read-only; unpack it first with "
                "Collection.open(zip).unpack(directory)",
                path=self._path,
            )

    @validated
    def add(
        self,
        path: PathLike,
        *,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        replace: bool = False,
        progress: bool | None = None,
    ) -> Member:
        """Add the stored file ``path`` (any backend, any directory) as member ``name``
        (default: the file's stem) and return its record.

        The size, sha256, backend and environment record are taken from the file; its
        location is normalized (``./a.h5`` and ``sub/../a.h5`` record ``a.h5``). A name
        already in use raises :class:`DuplicateMemberError` unless ``replace=True``, and so
        does a file that is already a member under another name, however it is spelled.

        >>> col.add("runs/relax_300K.pkl", name="relax-300K", tags=["Cu", "300K"])  # doctest: +SKIP
        Member(name='relax-300K', location='../runs/relax_300K.pkl', backend='pickle', ...)
        """
        self._writable("add to")
        src = Path(path).expanduser()
        member_name = check_name(src.stem if name is None else name)
        tag_list = _check_tags(tags)
        user_metadata = validate_metadata(metadata, path=src)
        if not src.exists():
            raise FileNotFoundStorageError(
                f"cannot add member {member_name!r} to {self._path}: no such file {src}", path=src, key=member_name
            )
        try:
            backend = registry.detect(src)
            listing = api.inspect(src)
            digest, size = sha256_file(src, show=progress)
        except StorageError as exc:
            raise _renamed(
                exc, f"cannot add member {member_name!r} to {self._path}: {exc}", path=src, key=member_name
            ) from None
        except OSError as exc:
            raise StorageError(
                f"cannot add member {member_name!r}: cannot read {src}: {exc}", path=src, key=member_name
            ) from None
        location = location_for(src, self._path)
        record = Member(
            name=member_name,
            location=location,
            backend=backend,
            size=size,
            sha256=digest,
            format_version=listing.format_version,
            tags=tag_list,
            metadata=user_metadata,
            environment=environment_summary(listing.environment),
            added=now(),
        )
        with updating(self._path):
            doc, members = read_manifest(self._path)
            holder = member_of_file(members, location, digest, src, self._path)
            if holder is not None and holder.name != member_name:
                raise DuplicateMemberError(
                    f"cannot add {src} to {self._path} as {member_name!r}: that file is already member "
                    f"{holder.name!r} (recorded as {holder.location!r}); a file is a member once: "
                    f"use {holder.name!r}, or call remove({holder.name!r}) first",
                    path=self._path,
                    key=member_name,
                )
            index = next((i for i, m in enumerate(members) if m.name == member_name), None)
            if index is not None and not replace:
                here = f"{member_name!r} (recorded as {members[index].location!r})"
                why = (
                    f"that file is already member {here}; to record it again"
                    if holder is not None
                    else f"{self._path} has a member named {here}; choose another name, or to replace it"
                )
                raise DuplicateMemberError(
                    f"cannot add {src} to {self._path}: {why} pass replace=True", path=self._path, key=member_name
                )
            if index is None:
                members.append(record)
            else:
                members[index] = record
            doc["modified"] = record.added
            write_manifest(self._path, doc, members)
            self._doc, self._members = doc, members
        return dataclasses.replace(record)

    @validated
    def remove(self, name: str) -> Member:
        """Drop member ``name`` from the manifest (its file is left alone); returns its record.

        >>> col.remove("relax-600K").location  # doctest: +SKIP
        '../scratch/relax_600K.json'
        """
        self._writable("remove from")
        with updating(self._path):
            doc, members = read_manifest(self._path)
            kept = [m for m in members if m.name != name]
            if len(kept) == len(members):
                raise KeyNotFoundError(f"collection {self._path} has no member {name!r}", path=self._path, key=name)
            doc["modified"] = now()
            write_manifest(self._path, doc, kept)
            self._doc, self._members = doc, kept
        return next(m for m in members if m.name == name)

    def merge(self, other: Collection | PathLike, *, rename: bool = False) -> dict[str, str]:
        """Add every member of ``other`` (a collection or a manifest path) to this one.

        Locations are re-based onto this manifest. A member whose file is already here
        (under any name) with the same checksum is skipped; with another checksum, or when
        names clash, :class:`DuplicateMemberError` is raised and nothing is written, unless
        the clash is of names only and ``rename=True``, which adds ``-2``, ``-3`` ... to the
        incoming name. Returns ``{name in other: name here}`` for the members added.

        >>> a.merge(b, rename=True)  # doctest: +SKIP
        {'relax-600K': 'relax-600K', 'relax-300K': 'relax-300K-2'}
        """
        self._writable("merge into")
        if not isinstance(other, Collection):
            if not isinstance(other, str | os.PathLike):
                raise InvalidArgumentError(f"merge() takes a Collection or a manifest path, got {type(other).__name__}")
            other = Collection.open(other)
        if other._bundle is not None:
            raise UnsupportedOperationError(
                f"cannot merge the bundle {other.path} directly: unpack it first with "
                "Collection.open(zip).unpack(directory), then merge the unpacked collection",
                path=other.path,
            )
        doc, members, added = merge_members(self._path, other.path, other._members, rename=rename)
        self._doc, self._members = doc, members
        return added

    # -- reading members ------------------------------------------------------------------
    def inspect(self) -> Listing:
        """One tree across all members, built from each member's ``inspect`` (no data loaded).

        The root has one child per member; keys read ``<member>/<key in the file>``, so
        ``col.inspect()["relax-300K/energy"]`` finds an entry. A member whose file is
        missing shows as type ``missing``.

        >>> print(col.inspect())  # doctest: +SKIP
        """
        root = Entry(path="", name="", type="Collection", length=len(self._members))
        for m in self._members:
            prefix = escape(m.name)
            info = {"location": m.location, "backend": m.backend, "file_size": m.size, "sha256": m.sha256}
            if m.tags:
                info["tags"] = list(m.tags)
            if m.metadata:
                info["metadata"] = m.metadata
            try:
                listing = api.inspect(self.path_of(m.name))
            except FileNotFoundStorageError as exc:
                root.children.append(Entry(path=prefix, name=m.name, type="missing", info={**info, "error": str(exc)}))
                continue
            child = _prefixed(listing.root, prefix)
            child.name = m.name
            child.info = {**child.info, **info}
            root.children.append(child)
        summary = {k: self._doc.get(k) for k in ("title", "description", "creator", "license") if self._doc.get(k)}
        if self._doc.get("metadata"):
            summary["metadata"] = self._doc["metadata"]
        return Listing(
            path=str(self._path),
            backend="collection",
            format_version=int(self._doc.get("storage_nodes_collection", {}).get("format_version", 0)),
            root=root,
            metadata=summary,
            info={"created": self._doc.get("created"), "modified": self._doc.get("modified")},
        )

    def load(self, name: str, key: str | None = None, **load_kwargs: Any) -> Any:
        """Load member ``name`` (or only its entry ``key``) through :func:`storage_nodes.load`.

        ``name`` may carry the key too: ``load("relax-300K/energy")``. The member's
        recorded backend is enforced unless ``backend=`` is given; other keyword
        arguments (``version_policy``, ``safe``) go to ``storage_nodes.load``.

        >>> col.load("relax-300K", key="energy")  # doctest: +SKIP
        -3.2
        """
        if not isinstance(name, str):
            raise InvalidArgumentError(f"load(): a member name must be a str, got {type(name).__name__}")
        if name not in self and "/" in name:
            name, inner = name.split("/", 1)
            key = inner if not key else f"{inner.rstrip('/')}/{key.lstrip('/')}"
        m = self.member(name)
        load_kwargs.setdefault("backend", m.backend)
        return api.load(self.path_of(name), key=key, **load_kwargs)

    # -- checking and publishing ----------------------------------------------------------
    @validated
    def verify(self, *, policy: VersionPolicy = "compatible", progress: bool | None = None) -> VerifyReport:
        """Check every member: present, unchanged (size and sha256), and saved in an
        environment compatible with this one.

        Environment differences (``storage_nodes.provenance.versioning.compare``) are fatal as the
        ``policy`` says: ``"strict"`` any, ``"compatible"`` breaking ones (major version,
        missing module), ``"warn"`` none, ``"ignore"`` skips the check.

        >>> print(col.verify())  # doctest: +SKIP
        paper/collection.json: 2 member(s) checked, OK
        """
        return check_members(self._path, self._members, self._bundle, policy=policy, progress=progress)

    @validated
    def export(self, dest: PathLike, *, overwrite: bool = True, progress: bool | None = None) -> Path:
        """Write one self-contained zip: the manifest, every member, ``SHA256SUMS`` and
        ``ro-crate-metadata.json`` (RO-Crate 1.2). Members must be present and unchanged.

        >>> col.export("paper-2026.zip")  # doctest: +SKIP
        PosixPath('paper-2026.zip')
        """
        target = Path(dest).expanduser()
        if target.is_dir():
            raise InvalidArgumentError(f"cannot export to {target}: it is a directory; give a .zip file name")
        if target.exists() and not overwrite:
            raise FileExistsStorageError(f"{target} exists and overwrite=False", path=target)
        for m in self._members:  # fail before writing anything
            self.path_of(m.name, progress=progress)
        try:
            return write_bundle(
                target, self._doc, self._members, lambda m: self.path_of(m.name, progress=progress), show=progress
            )
        except StorageError:
            raise
        except OSError as exc:
            raise StorageError(f"cannot write {target}: {exc}", path=target) from None

    def unpack(self, directory: PathLike, *, progress: bool | None = None) -> Collection:
        """Extract a bundle into ``directory`` (checksums verified) and open the unpacked
        manifest there. The directory may exist but must not hold a ``collection.json``.

        >>> Collection.open("paper-2026.zip").unpack("paper-2026")  # doctest: +SKIP
        """
        if not isinstance(directory, str | os.PathLike):
            raise InvalidArgumentError(f"unpack(): directory must be a path, got {type(directory).__name__}")
        if self._bundle is None:
            raise UnsupportedOperationError(
                f"{self._path} is already unpacked; use export() to write a bundle", path=self._path
            )
        target = Path(directory).expanduser()
        manifest = target / MANIFEST
        if manifest.exists():
            raise FileExistsStorageError(f"{manifest} exists; unpack into another directory", path=manifest)
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {target}: {exc}", path=target) from None
        written: list[Path] = []
        try:
            for m in self._members:
                if not safe_relative(m.location):  # checked at open; never write outside target
                    raise CorruptFileError(f"unsafe location {m.location!r}", path=self._path, key=m.name)
                dest = target / m.location
                if dest.exists():
                    raise FileExistsStorageError(f"{dest} exists; unpack into another directory", path=dest, key=m.name)
                written.append(dest)
                self._bundle.extract(m, target=dest, show=progress)
            for extra in (CRATE, CHECKSUMS, MANIFEST):  # the manifest last: it makes the directory a collection
                data = self._bundle.read(extra)
                if data is not None:
                    written.append(target / extra)
                    try:
                        (target / extra).write_bytes(data)
                    except OSError as exc:
                        raise StorageError(f"cannot write {target / extra}: {exc}", path=target / extra) from None
        except BaseException:
            for p in written:
                p.unlink(missing_ok=True)
            raise
        return Collection.open(manifest)
