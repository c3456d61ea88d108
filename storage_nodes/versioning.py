"""Load-time version checks: compare a stored environment record with the current one.

Policies (``load(..., version_policy=...)``):

``"ignore"``      no check at all.
``"warn"``        (default) a :class:`VersionMismatchWarning` listing each difference.
``"compatible"``  raise :class:`VersionMismatchError` when a package's major version
                  differs (the minor version for 0.x) or a stored module cannot be found;
                  warn on every other difference.
``"strict"``      raise on any difference in package version, git commit, dirty state or
                  source hash of a stored class or function.
callable          ``policy(stored_record, current_record)`` decides: raise to refuse.

Each difference reads ``"module: stored X, now Y"``.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Iterable
from typing import Any, Literal

from .errors import InvalidArgumentError, VersionMismatchError, VersionMismatchWarning
from .metadata import PolicyCallable, current_record

__all__ = ["POLICIES", "Difference", "check_environment", "compare", "VersionPolicy"]

VersionPolicy = Literal["ignore", "warn", "compatible", "strict"]
POLICIES: tuple[str, ...] = ("ignore", "warn", "compatible", "strict")


@dataclasses.dataclass(frozen=True)
class Difference:
    """One difference between the stored and the current environment."""

    module: str
    what: str  # "version", "missing", "git commit", "git dirty", "source"
    stored: Any
    now: Any
    breaking: bool  # refused by the "compatible" policy

    def __str__(self) -> str:
        label = self.module if self.what in ("version", "missing") else f"{self.module} ({self.what})"
        return f"{label}: stored {_fmt(self.stored)}, now {_fmt(self.now)}"


def _fmt(value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "dirty" if value else "clean"
    return str(value)


def _release(version: str | None) -> tuple[int, ...] | None:
    if not version:
        return None
    m = re.match(r"v?(\d+(?:\.\d+)*)", version)
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def _breaking_version_change(old: str | None, new: str | None) -> bool:
    a, b = _release(old), _release(new)
    if a is None or b is None:
        return old != new
    a = a + (0,) * (2 - len(a)) if len(a) < 2 else a
    b = b + (0,) * (2 - len(b)) if len(b) < 2 else b
    if a[0] != b[0]:
        return True
    return a[0] == 0 and a[1] != b[1]


def compare(stored: dict[str, Any], current: dict[str, Any]) -> list[Difference]:
    """List the differences between two environment records (module by module)."""
    diffs: list[Difference] = []
    now_modules = current.get("modules") or {}
    for name, old in sorted((stored.get("modules") or {}).items()):
        new = now_modules.get(name)
        if new is None:
            continue
        if not new.get("found", True):
            diffs.append(Difference(name, "missing", old.get("version") or "present", "not installed", True))
            continue
        if old.get("version") != new.get("version"):
            diffs.append(
                Difference(
                    name,
                    "version",
                    old.get("version"),
                    new.get("version"),
                    _breaking_version_change(old.get("version"), new.get("version")),
                )
            )
        old_git, new_git = old.get("git") or {}, new.get("git") or {}
        if old_git.get("commit") != new_git.get("commit") and (old_git or new_git):
            diffs.append(Difference(name, "git commit", old_git.get("commit"), new_git.get("commit"), False))
        if old_git and new_git and old_git.get("dirty") != new_git.get("dirty"):
            diffs.append(Difference(name, "git dirty", old_git.get("dirty"), new_git.get("dirty"), False))
        new_sources = new.get("sources") or {}
        for qualname, digest in sorted((old.get("sources") or {}).items()):
            now_digest = new_sources.get(qualname)
            if now_digest is not None and now_digest != digest:
                diffs.append(Difference(f"{name}.{qualname}", "source", digest[:12], now_digest[:12], False))
    return diffs


def check_environment(
    stored: dict[str, Any] | None,
    policy: str | PolicyCallable,
    *,
    path: Any = None,
    key: str | None = None,
    modules: Iterable[str] | None = None,
    allow_import: bool = False,
) -> list[Difference]:
    """Apply ``policy`` to the stored record (only ``modules`` of it, when given).

    Returns the differences found; raises :class:`VersionMismatchError` or warns
    :class:`VersionMismatchWarning` as the policy says.
    """
    if callable(policy):
        if stored is None:
            stored = {}
        policy(stored, current_record(stored, modules=modules, allow_import=allow_import))
        return []
    if policy not in POLICIES:
        raise InvalidArgumentError(
            f"version_policy must be one of {list(POLICIES)} or a callable, got {policy!r}", path=path, key=key
        )
    if policy == "ignore" or not stored or not stored.get("modules"):
        return []
    diffs = compare(stored, current_record(stored, modules=modules, allow_import=allow_import))
    if not diffs:
        return diffs
    where = f"{path}" + (f" (key {key!r})" if key else "")
    listing = "\n  ".join(str(d) for d in diffs)
    refused = diffs if policy == "strict" else [d for d in diffs if d.breaking] if policy == "compatible" else []
    if refused:
        raise VersionMismatchError(
            f"{where} was saved in a different environment ({policy!r} policy):\n  "
            + "\n  ".join(str(d) for d in refused)
            + "\ninstall or check out the stored versions, or load with version_policy='warn'",
            path=path,
            key=key,
            differences=[str(d) for d in refused],
        )
    warnings.warn(
        f"{where} was saved in a different environment:\n  {listing}",
        VersionMismatchWarning,
        stacklevel=4,
    )
    return diffs
