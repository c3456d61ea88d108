"""Collection bundles: one zip holding the manifest, every member, checksums and RO-Crate metadata.

Layout (all paths relative to the zip root)::

    collection.json               the manifest; member locations point into members/
    members/<name>/<file name>    each member file, byte for byte
    SHA256SUMS                    ``sha256sum -c`` compatible list of members and manifest

Members that compress well (JSON, small pickles) are deflated; the others (float arrays,
HDF5) are stored as they are, which keeps export and reading fast.
    ro-crate-metadata.json        RO-Crate 1.2 metadata (see _rocrate.py)

Reading never trusts the archive: every entry name is checked (no ``..``, absolute paths,
drive letters, backslashes or NUL), a member is extracted only to a private directory,
and its size and sha256 must match the manifest before anyone sees the file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import weakref
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ..atomic import atomic_path
from ..errors import CorruptFileError, FileNotFoundStorageError, StorageError
from . import _progress, _rocrate
from ._manifest import Member, dump_manifest, now, parse_manifest, safe_relative

__all__ = ["CHECKSUMS", "MANIFEST", "Bundle", "is_bundle", "write_bundle"]

MANIFEST = "collection.json"
CHECKSUMS = "SHA256SUMS"
CRATE = "ro-crate-metadata.json"
# what reading a damaged zip raises (bad CRC, truncated stream, broken deflate data)
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError)
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._+-]+")


def _slug(text: str, fallback: str) -> str:
    slug = _UNSAFE_CHARS.sub("_", text).strip("._") or fallback
    return slug[:100]


def arcnames(members: list[Member]) -> list[str]:
    """A safe, unique path inside the bundle for each member: ``members/<name>/<file name>``."""
    used: set[str] = set()
    names = []
    for i, m in enumerate(members):
        folder = _slug(m.name, f"member-{i + 1}")
        candidate, n = folder, 1
        while candidate.lower() in used:
            n += 1
            candidate = f"{folder}-{n}"
        used.add(candidate.lower())
        names.append(f"members/{candidate}/{_slug(Path(m.location).name, 'data')}")
    return names


def write_bundle(
    dest: Path,
    doc: dict[str, Any],
    members: list[Member],
    source_of: Callable[[Member], Path],
    *,
    show: bool | None = None,
) -> Path:
    """Write the bundle ``dest`` atomically; each member is read from ``source_of(member)`` and
    must still have its recorded sha256 (else :class:`CorruptFileError` naming it)."""
    names = arcnames(members)
    sources = [source_of(m) for m in members]
    total = sum(os.path.getsize(s) for s in sources)
    bundled = [Member(**{**m.to_dict(), "location": arc}) for m, arc in zip(members, names, strict=True)]
    exported = now()
    bundle_doc = {**doc, "exported": exported}
    manifest_text = dump_manifest(bundle_doc, bundled)
    sums = []
    with (
        atomic_path(dest) as tmp,
        zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf,
        _progress.bar(total, f"export {dest.name}", show=show) as update,
    ):
        for member, arc, src in zip(members, names, sources, strict=True):
            info = zipfile.ZipInfo.from_file(src, arc)
            info.compress_type = zipfile.ZIP_DEFLATED if _compressible(src) else zipfile.ZIP_STORED
            with open(src, "rb") as f, zf.open(info, "w") as out:
                digest, _ = _progress.copy_hashed(f, out, update)
            if digest != member.sha256:
                raise CorruptFileError(
                    f"member {member.name!r} ({src}) changed since it was added: sha256 is {digest}, "
                    f"the manifest says {member.sha256}; re-add it with add(..., replace=True) or "
                    "restore the file, then export again",
                    path=src,
                    key=member.name,
                )
            sums.append(f"{digest}  {arc}")
        zf.writestr(MANIFEST, manifest_text)
        sums.append(f"{_sha256_text(manifest_text)}  {MANIFEST}")
        sums_text = "\n".join(sums) + "\n"
        zf.writestr(CHECKSUMS, sums_text)
        meta = _rocrate.crate(
            bundle_doc,
            list(zip(bundled, names, strict=True)),
            manifest_name=MANIFEST,
            checksums_name=CHECKSUMS,
            date_published=exported,
            sizes={MANIFEST: len(manifest_text.encode()), CHECKSUMS: len(sums_text.encode())},
        )
        zf.writestr(CRATE, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return dest


def _compressible(path: Path, sample: int = 1 << 18) -> bool:
    """Whether deflating ``path`` pays: a quick zlib pass over its first 256 KiB must save 10 %.
    (Arrays of floats and compressed HDF5 barely shrink but deflate at ~15 MB/s; JSON shrinks a lot.)"""
    with open(path, "rb") as f:
        head = f.read(sample)
    return len(zlib.compress(head, 1)) < 0.9 * len(head) if head else False


def _sha256_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_bundle(path: Path) -> bool:
    """Whether ``path`` is a zip holding a collection manifest at its root."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as zf:
            return MANIFEST in zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _remove_tree(directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)


class Bundle:
    """A read-only view of a bundle; members are extracted (verified) on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path)
        except FileNotFoundError:
            raise FileNotFoundStorageError(f"no such collection bundle: {path}", path=path) from None
        except (OSError, zipfile.BadZipFile) as exc:
            raise CorruptFileError(f"{path} is not a readable zip bundle ({exc})", path=path) from None
        self._closer = weakref.finalize(self, self._zip.close)
        try:
            self.doc, self.members = self._check()
        except BaseException:
            self._zip.close()
            raise
        self._lock = threading.Lock()
        self._cache: Path | None = None
        self._extracted: dict[str, Path] = {}

    def _check(self) -> tuple[dict[str, Any], list[Member]]:
        """Refuse unsafe entry names and manifests whose members are not in the zip."""
        path = self.path
        for info in self._zip.infolist():
            name = info.orig_filename
            if not safe_relative(name.rstrip("/") if info.is_dir() else name):
                raise CorruptFileError(
                    f"bundle {path} holds an unsafe entry name {name!r} (absolute path, '..', drive, "
                    "backslash or NUL): refusing to open it",
                    path=path,
                    key=name,
                )
        try:
            text = self._zip.read(MANIFEST)
        except KeyError:
            raise CorruptFileError(
                f"{path} is a zip but holds no {MANIFEST}: not a collection bundle", path=path
            ) from None
        except (*_ZIP_ERRORS, OSError) as exc:
            raise CorruptFileError(f"{path}: the manifest cannot be read ({exc})", path=path) from None
        doc, members = parse_manifest(text, path=path)
        names = set(self._zip.namelist())
        for m in members:
            if not safe_relative(m.location):
                raise CorruptFileError(
                    f"bundle {path}: member {m.name!r} has an unsafe location {m.location!r}", path=path, key=m.name
                )
            if m.location not in names:
                raise CorruptFileError(
                    f"bundle {path}: member {m.name!r} is listed but {m.location!r} is not in the zip",
                    path=path,
                    key=m.name,
                )
        return doc, members

    def close(self) -> None:
        """Close the zip and remove extracted members."""
        self._closer()
        self._extracted.clear()
        if self._cache is not None:
            _remove_tree(str(self._cache))

    def _member_stream(self, member: Member) -> IO[bytes]:
        if self._zip.fp is None:
            raise StorageError(f"bundle {self.path} was closed; open it again", path=self.path, key=member.name)
        return self._zip.open(member.location)

    def _cache_dir(self) -> Path:
        if self._cache is None:
            self._cache = Path(tempfile.mkdtemp(prefix="sn-bundle-"))
            weakref.finalize(self, _remove_tree, str(self._cache))
        return self._cache

    def checksum(self, member: Member, *, show: bool | None = None) -> tuple[str, int]:
        """(sha256, size) of a member's bytes in the zip, read without extracting."""
        try:
            with (
                self._lock,
                self._member_stream(member) as src,
                _progress.bar(member.size, f"sha256 {member.name}", show=show) as update,
            ):
                return _progress.copy_hashed(src, None, update, limit=member.size)
        except _ZIP_ERRORS as exc:
            raise CorruptFileError(
                f"member {member.name!r} of bundle {self.path} cannot be read ({exc})", path=self.path, key=member.name
            ) from None
        except StorageError:
            raise
        except OSError as exc:
            raise StorageError(f"cannot read bundle {self.path}: {exc}", path=self.path, key=member.name) from None

    def extract(self, member: Member, *, target: Path | None = None, show: bool | None = None) -> Path:
        """Extract ``member`` (to ``target`` or the private cache) after checking size and sha256."""
        with self._lock:
            if target is None and member.name in self._extracted:
                return self._extracted[member.name]
            dest = target if target is not None else self._cache_dir() / member.location
            base = (target.parent if target is not None else self._cache_dir()).resolve()
            if not dest.resolve().is_relative_to(base):  # defence in depth: names were checked at open
                raise CorruptFileError(f"bundle {self.path}: unsafe location {member.location!r}", path=self.path)
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                with (
                    self._member_stream(member) as src,
                    atomic_path(dest) as tmp,
                ):
                    with open(tmp, "wb") as out, _progress.bar(member.size, f"unpack {member.name}", show=show) as up:
                        digest, size = _progress.copy_hashed(src, out, up, limit=member.size)
                    if size != member.size or digest != member.sha256:
                        raise CorruptFileError(
                            f"member {member.name!r} of bundle {self.path} is damaged or was tampered with: "
                            f"{size} bytes with sha256 {digest}, the manifest says {member.size} bytes with "
                            f"sha256 {member.sha256}; do not use this bundle",
                            path=self.path,
                            key=member.name,
                        )
            except _ZIP_ERRORS as exc:
                raise CorruptFileError(
                    f"member {member.name!r} of bundle {self.path} cannot be read ({exc})",
                    path=self.path,
                    key=member.name,
                ) from None
            except StorageError:
                raise
            except OSError as exc:
                raise StorageError(
                    f"cannot extract member {member.name!r} of bundle {self.path} to {dest}: {exc}",
                    path=dest,
                    key=member.name,
                ) from None
            if target is None:
                self._extracted[member.name] = dest
            return dest

    def read(self, name: str) -> bytes | None:
        """The bytes of a small bundle file (manifest, checksums, RO-Crate), None if absent."""
        with self._lock:
            try:
                return self._zip.read(name)
            except KeyError:
                return None
            except (*_ZIP_ERRORS, OSError) as exc:
                raise CorruptFileError(f"{self.path}: {name} cannot be read ({exc})", path=self.path) from None
