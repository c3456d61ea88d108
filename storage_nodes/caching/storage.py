"""The ``"storage_nodes"`` fleche value storage: one h5 archive of ours per cached value.

A value fleche caches under key ``K`` is written with :func:`storage_nodes.save` (atomic
replace, the environment record, ``metadata={"fleche": {"key": K}}``) to
``root/K[:prefix_length]/K.h5``, so ``storage_nodes.inspect(file)`` (or ``storage-nodes
inspect file``) shows what is cached and ``storage_nodes.load(file, key="a/b")`` reads part
of it. Each value is one archive unless ``remaining_depth`` turns on fleche's destructuring:
then a value stored as destructured parts is one archive per part, the parent holding
fleche's ``Digested`` wrapper, and loads back whole through the storage.

>>> from storage_nodes.caching import ValueArchive
>>> values = ValueArchive("cache/values", compression="gzip")  # doctest: +SKIP
>>> key = values.save({"energy": -3.2})  # doctest: +SKIP
>>> values.load(key)  # doctest: +SKIP
{'energy': -3.2}
"""

from __future__ import annotations

import builtins
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleche.digest import DIGEST_LENGTH, Digest, digest
from fleche.storage.base import SaveError, StorageBackend, ValueMixin, register_storage
from fleche.storage.destructuring import DestructuringMixin
from fleche.storage.thread_safe import PerKeyLockMixin

from ..api import load, save
from ..backends.h5 import HDF5_MAGIC
from ..errors import (
    CorruptFileError,
    FileNotFoundStorageError,
    InvalidArgumentError,
    StorageError,
)
from ..provenance.versioning import POLICIES
from . import digests as _digests
from . import scientific_digests as _scientific
from . import uncached as _uncached

TYPE_NAME = "storage_nodes"
SUFFIX = ".h5"
_COMPRESSIONS = (None, "gzip", "lzf")
_HEX = frozenset("0123456789abcdef")
logger = logging.getLogger(__name__)
#: archives found damaged by a load in this process: a content-addressed save rewrites them
_damaged: set[str] = set()


def _check_compression(value: Any) -> None:
    if value in _COMPRESSIONS:
        return
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9:
        return
    raise InvalidArgumentError(
        f"fleche storage {TYPE_NAME!r}: compression must be None, 'gzip', 'lzf' or a gzip level 0-9, got {value!r}"
    )


@dataclass(frozen=True)
class ArchiveBackend(StorageBackend):
    """Keyed files of ours under ``root``: ``root/<key[:prefix_length]>/<key>.h5``.

    ``compression`` goes to the h5 backend (``None``, ``"gzip"``, ``"lzf"`` or 0-9);
    ``prefix_length`` is the number of leading key characters naming the subdirectory
    (0: all files directly in ``root``); ``version_policy`` and ``safe`` are
    :func:`storage_nodes.load`'s (``safe=True``: a cached value that needs importing or
    running code is refused with :class:`storage_nodes.UnsafeLoadError`, for caches others
    can write to).
    """

    root: Path
    compression: str | int | None = None
    prefix_length: int = 2
    version_policy: str = "warn"
    safe: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).expanduser().absolute().resolve())
        _check_compression(self.compression)
        if (
            not isinstance(self.prefix_length, int)
            or isinstance(self.prefix_length, bool)
            or not 0 <= self.prefix_length <= 8
        ):
            raise InvalidArgumentError(
                f"fleche storage {TYPE_NAME!r} at {self.root}: prefix_length must be an integer 0-8, "
                f"got {self.prefix_length!r}"
            )
        if not isinstance(self.safe, bool):
            raise InvalidArgumentError(
                f"fleche storage {TYPE_NAME!r} at {self.root}: safe must be True or False, got {self.safe!r}"
            )
        if self.version_policy not in POLICIES:
            raise InvalidArgumentError(
                f"fleche storage {TYPE_NAME!r} at {self.root}: version_policy must be one of {POLICIES}, "
                f"got {self.version_policy!r}"
            )

    def path(self, key: Digest | str) -> Path:
        """The archive file of ``key`` (a full digest), whether or not it exists."""
        key = str(key)
        if len(key) != DIGEST_LENGTH or not _HEX.issuperset(key):
            raise KeyError(key)
        directory = self.root / key[: self.prefix_length] if self.prefix_length else self.root
        return directory / f"{key}{SUFFIX}"

    def list(self) -> Iterable[Digest]:
        """Every key with an archive; files that are not ``<64 hex digits>.h5`` are ignored."""
        if not self.root.is_dir():
            return []
        if not self.prefix_length:
            return self._keys_in(self.root)
        keys: builtins.list[Digest] = []
        for directory in self.root.iterdir():
            if len(directory.name) == self.prefix_length and directory.is_dir():
                keys.extend(self._keys_in(directory))
        return keys

    @staticmethod
    def _keys_in(directory: Path) -> builtins.list[Digest]:
        try:
            names = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return []
        keys = []
        for name in names:  # temp files of atomic writes start with "." and never match
            stem = name[: -len(SUFFIX)]
            if name.endswith(SUFFIX) and len(stem) == DIGEST_LENGTH and _HEX.issuperset(stem):
                keys.append(Digest(stem))
        return keys

    def _prefix_candidates(self, prefix: str) -> Iterable[Digest]:
        if not _HEX.issuperset(prefix):  # no key starts with it (and it never names a path)
            return []
        # a prefix at least as long as the directory names only needs its own directory listed
        if self.prefix_length and len(prefix) >= self.prefix_length:
            keys: Iterable[Digest] = self._keys_in(self.root / prefix[: self.prefix_length])
        else:
            keys = self.list()
        return sorted(k for k in keys if k.startswith(prefix))[:2]

    def put(self, value: Any, key: Digest) -> Digest:
        """Write ``value`` as the archive of ``key``; any failure is fleche's :class:`SaveError`.

        fleche's contract for a value a storage cannot hold is ``SaveError``: for an argument it
        falls back to a digest-only reference, for a result it logs the rejection and the call
        still returns its value. So every failure to store (the value cannot be encoded, the
        archive cannot be written, the disk is full, the encoder failed) is raised as
        ``SaveError`` with the original exception chained as its ``__cause__``; a file already
        at the key's path stays as it was (the write is atomic).
        """
        path = self.path(key)
        try:
            if not os.path.isdir(path.parent):  # a stat; mkdir of an existing directory raises and catches
                path.parent.mkdir(parents=True, exist_ok=True)
            save(value, path, "h5", metadata={"fleche": {"key": str(key)}}, compression=self.compression)
        except Exception as exc:
            # our errors name the file already
            where = "" if isinstance(exc, StorageError) else f" in {path}"
            detail = str(exc) if isinstance(exc, StorageError) else f"{type(exc).__name__}: {exc}"
            message = f"{TYPE_NAME}: cannot store the value of key {key}{where}: {detail}"
            logger.warning("%s", message)
            raise SaveError(message) from exc
        _damaged.discard(str(path))
        return key

    def holds(self, key: Digest | str) -> bool:
        """Whether ``key`` has an archive that is not known to be damaged (a stat and 8 bytes read).

        An archive a load in this process found damaged, or whose first bytes are not an
        HDF5 file's, does not count: a content-addressed save writes it again.
        """
        try:
            path = self.path(key)
            with open(path, "rb") as f:
                head = f.read(len(HDF5_MAGIC))
        except (KeyError, OSError):
            return False
        return head == HDF5_MAGIC and str(path) not in _damaged

    def get(self, key: Digest) -> Any:
        path = self.path(key)
        try:
            return load(path, "h5", version_policy=self.version_policy, safe=self.safe)  # type: ignore[arg-type]
        except FileNotFoundStorageError:
            raise KeyError(key) from None
        except CorruptFileError as exc:
            # like fleche's own file storages: an unreadable entry is a miss, recomputed and rewritten
            logger.error("corrupt cached value %s: %s", path, exc)
            _damaged.add(str(path))
            raise KeyError(key) from exc

    def _contains(self, key: Digest) -> bool:
        try:
            return self.path(key).is_file()
        except KeyError:
            return False

    def _evict(self, key: Digest) -> None:
        try:
            self.path(key).unlink(missing_ok=True)
        except KeyError:
            pass


@dataclass(frozen=True)
class ValueArchive(PerKeyLockMixin, DestructuringMixin, ValueMixin, ArchiveBackend):
    """fleche value storage ``"storage_nodes"``: values as h5 archives of ours (see the module docstring).

    ``remaining_depth=None`` (the default) stores each value whole, as one archive: it can be
    browsed and loaded in parts as it is, and fleche's destructuring (which stores every
    array, ``None`` and opaque object of a value as an entry of its own, whatever the depth)
    would cost one file per part. An integer turns fleche's destructuring on exactly as for
    its own storages (shared sub-values are then stored once).
    """

    remaining_depth: int | None = None

    def save(self, value: Any, key: Digest | None = None) -> Digest:
        """Store ``value`` under ``key`` (default: its digest); return the key.

        Without ``key`` the value is content-addressed: an archive already held under its
        digest is the value, so it is not written again (an argument many cached calls
        share is stored once, by the first of them). With ``key`` the archive is written
        (replacing what was there), as fleche's storages do.
        """
        if self.remaining_depth is not None:
            return super().save(value, key)
        if key is not None:
            return ValueMixin.save(self, value, key)
        key = digest(value)
        with self._operation_context(key):
            if self.holds(key):
                return key
            return self.put(value, key)

    def to_config(self) -> dict[str, Any]:
        """The config dict :func:`fleche.config.storage_from_config` rebuilds this storage from."""
        return {
            "type": TYPE_NAME,
            "root": str(self.root),
            "compression": self.compression,
            "prefix_length": self.prefix_length,
            "version_policy": self.version_policy,
            "safe": self.safe,
            "remaining_depth": self.remaining_depth,
        }


def register() -> None:
    """Register :class:`ValueArchive` with fleche as value storage ``"storage_nodes"`` (idempotent).

    Also installs the canonical digests of scientific types
    (:mod:`~storage_nodes.caching.scientific_digests`) and the warning for calls fleche runs
    uncached (:mod:`~storage_nodes.caching.uncached`). ``import storage_nodes`` does all this
    by itself as soon as fleche is imported.
    """
    register_storage(TYPE_NAME, kind="value")(ValueArchive)
    _scientific.enable_scientific_digests()
    _uncached.install()


register()
# the opt-in exact float digests, for processes (e.g. executor workers) told so by the environment
_digests.enable_from_environment()

__all__ = ["SUFFIX", "TYPE_NAME", "ArchiveBackend", "StorageError", "ValueArchive", "register"]
