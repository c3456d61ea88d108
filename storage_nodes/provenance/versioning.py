"""Load-time version checks: compare a stored environment record with the current one.

Policies (``load(..., version_policy=...)``, ``verify(path, policy=...)``):

``"ignore"``      no check at all.
``"warn"``        (default) a :class:`VersionMismatchWarning` listing each difference.
``"compatible"``  raise :class:`VersionMismatchError` when a package's major version
                  differs (the minor version for 0.x), a stored module cannot be found,
                  or the Python implementation differs; warn on every other difference.
``"strict"``      raise on any difference: package version, git commit, dirty state,
                  source hash of a stored class or function, Python major.minor version.
callable          ``policy(stored_record, current_record)`` decides: raise to refuse
                  (returning ``False`` refuses too, with the standard message).

Each difference reads ``"module: stored X, now Y"``, e.g.
``mypkg.core: stored mypkg==1.2.0, now mypkg==2.0.0``. Python and module differences are
checked only for files that stored classes or functions (plain data does not depend on them).
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from ..errors import CorruptFileError, InvalidArgumentError, VersionMismatchError, VersionMismatchWarning
from .metadata import PolicyCallable, current_record

__all__ = [
    "POLICIES",
    "Difference",
    "VersionPolicy",
    "breaking_version_change",
    "check_environment",
    "compare",
    "refused",
    "evaluate",
    "mismatch",
]

VersionPolicy = Literal["ignore", "warn", "compatible", "strict"]
POLICIES: tuple[str, ...] = ("ignore", "warn", "compatible", "strict")


@dataclasses.dataclass(frozen=True)
class Difference:
    """One difference between the stored and the current environment.

    ``what`` is one of ``"python"``, ``"missing"``, ``"version"``, ``"git commit"``,
    ``"git dirty"``, ``"source"``; ``breaking`` differences are refused by ``"compatible"``.

    >>> str(Difference("mypkg.core", "version", "mypkg==1.2.0", "mypkg==2.0.0", True))
    'mypkg.core: stored mypkg==1.2.0, now mypkg==2.0.0'
    """

    module: str
    what: str
    stored: Any
    now: Any
    breaking: bool

    def __str__(self) -> str:
        label = self.module if self.what in ("version", "missing", "python") else f"{self.module} ({self.what})"
        return f"{label}: stored {_fmt(self.stored)}, now {_fmt(self.now)}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data, with the message under ``"message"``."""
        return {**dataclasses.asdict(self), "message": str(self)}


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


def breaking_version_change(old: str | None, new: str | None) -> bool:
    """Whether going from version ``old`` to ``new`` may break: the major differs (minor for 0.x).

    >>> breaking_version_change("1.2.0", "1.9.1"), breaking_version_change("0.3.1", "0.4.0")
    (False, True)
    """
    a, b = _release(old), _release(new)
    if a is None or b is None:
        return old != new
    a, b = (*a, 0, 0)[:2], (*b, 0, 0)[:2]
    return a[0] != b[0] or (a[0] == 0 and a[1] != b[1])


def _pinned(record: Mapping[str, Any]) -> str | None:
    version = record.get("version")
    if version is None:
        return None
    return f"{record.get('distribution') or record.get('package')}=={version}"


def _python_label(python: Any) -> tuple[str, str] | None:
    if not isinstance(python, Mapping) or not python.get("version"):
        return None
    major_minor = ".".join(str(python["version"]).split(".")[:2])
    return str(python.get("implementation") or "Python"), major_minor


def compare(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[Difference]:
    """List the differences between two environment records.

    Modules absent from ``current`` are not compared (partial checks). Version and git
    differences are reported once per package, source differences per class or function.

    >>> old = {"modules": {"m": {"package": "m", "version": "1.0", "sources": {}}}}
    >>> new = {"modules": {"m": {"package": "m", "version": "2.0", "sources": {}, "found": True}}}
    >>> [str(d) for d in compare(old, new)]
    ['m: stored m==1.0, now m==2.0']
    """
    diffs: list[Difference] = []
    stored_modules = stored.get("modules") or {}
    now_modules = current.get("modules") or {}
    if not stored_modules:
        return diffs
    old_py, new_py = _python_label(stored.get("python")), _python_label(current.get("python"))
    if old_py and new_py and old_py != new_py:
        diffs.append(Difference("python", "python", " ".join(old_py), " ".join(new_py), old_py[0] != new_py[0]))
    reported: set[tuple[str, str]] = set()

    def once_per_package(package: str, diff: Difference) -> None:
        if (package, diff.what) not in reported:
            reported.add((package, diff.what))
            diffs.append(diff)

    for name, old in sorted(stored_modules.items()):
        new = now_modules.get(name)
        if new is None or not isinstance(old, Mapping):
            continue
        package = str(old.get("package") or name.split(".", 1)[0])
        session = bool(old.get("session"))  # __main__, a notebook: code this session may not define
        if session and not new.get("found", True):
            continue
        if not new.get("found", True):
            diffs.append(Difference(name, "missing", _pinned(old) or "present", "not installed", True))
            continue
        if old.get("version") != new.get("version"):
            breaking = breaking_version_change(old.get("version"), new.get("version"))
            once_per_package(package, Difference(name, "version", _pinned(old), _pinned(new), breaking))
        old_git, new_git = old.get("git") or {}, new.get("git") or {}
        if (old_git or new_git) and old_git.get("commit") != new_git.get("commit"):
            once_per_package(
                package, Difference(name, "git commit", old_git.get("commit"), new_git.get("commit"), False)
            )
        if old_git and new_git and old_git.get("dirty") != new_git.get("dirty"):
            once_per_package(package, Difference(name, "git dirty", old_git.get("dirty"), new_git.get("dirty"), False))
        new_sources = new.get("sources") or {}
        for qualname, digest in sorted((old.get("sources") or {}).items()):
            now_digest = new_sources.get(qualname)
            if now_digest is None and session:  # not defined here: the file's own code is what runs
                continue
            if now_digest != digest:
                shown = now_digest[:12] if now_digest else "not found"
                diffs.append(Difference(f"{name}.{qualname}", "source", str(digest)[:12], shown, False))
    return diffs


def refused(diffs: Iterable[Difference], policy: str) -> list[Difference]:
    """The differences ``policy`` refuses: all under ``"strict"``, breaking ones under ``"compatible"``.

    >>> refused([Difference("m", "version", "m==1.0", "m==1.1", False)], "compatible")
    []
    """
    if policy == "strict":
        return list(diffs)
    if policy == "compatible":
        return [d for d in diffs if d.breaking]
    return []


def record_damage(stored: Any) -> str | None:
    """What is wrong with the shape of a stored record, or None when it can be compared."""
    if not isinstance(stored, Mapping):
        return f"the record is a {type(stored).__name__}, not an object"
    modules = stored.get("modules")
    if modules is None:
        return None
    if not isinstance(modules, Mapping):
        return "'modules' is not an object"
    for name, rec in modules.items():
        if not isinstance(rec, Mapping):
            return f"the entry of module {name!r} is not an object"
        for field in ("git", "sources"):
            if rec.get(field) is not None and not isinstance(rec[field], Mapping):
                return f"{field!r} of module {name!r} is not an object"
    return None


def _check_policy(policy: Any, path: Any, key: str | None) -> None:
    if not callable(policy) and policy not in POLICIES:
        raise InvalidArgumentError(
            f"version_policy must be one of {list(POLICIES)} or a callable, got {policy!r}", path=path, key=key
        )


def _mismatch(where: str, policy: str, diffs: list[Difference], path: Any, key: str | None) -> VersionMismatchError:
    listing = "\n  ".join(str(d) for d in diffs) if diffs else "(no difference found; the callable refused)"
    return VersionMismatchError(
        f"{where} was saved in a different environment ({policy!r} policy):\n  {listing}"
        "\ninstall or check out the stored versions, or load with version_policy='warn'",
        path=path,
        key=key,
        differences=[str(d) for d in diffs],
    )


def _user_stacklevel() -> int:
    """The stacklevel that points a warning at the first frame outside storage_nodes."""
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # storage_nodes/
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package_dir):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def check_environment(
    stored: dict[str, Any] | None,
    policy: str | PolicyCallable,
    *,
    path: Any = None,
    key: str | None = None,
    modules: Iterable[str] | None = None,
    allow_import: bool = False,
) -> list[Difference]:
    """Apply ``policy`` to the stored record (only its ``modules``, when given).

    Returns the differences found; raises :class:`VersionMismatchError` or warns
    :class:`VersionMismatchWarning` as the policy says. Never imports anything.

    >>> check_environment({"modules": {}}, "strict", path="a.pkl")
    []
    """
    _check_policy(policy, path, key)
    if policy == "ignore":
        return []
    stored = stored or {}
    damage = record_damage(stored)
    if damage:
        raise CorruptFileError(
            f"{path} has a damaged environment record ({damage}); load with version_policy='ignore' to skip the check",
            path=path,
            key=key,
        )
    where = f"{path}" + (f" (key {key!r})" if key else "")
    if callable(policy):
        now = current_record(stored, modules=modules, allow_import=allow_import)
        if policy(stored, now) is False:
            raise _mismatch(where, "callable", compare(stored, now), path, key)
        return []
    if not stored.get("modules"):
        return []
    diffs = compare(stored, current_record(stored, modules=modules, allow_import=allow_import))
    if not diffs:
        return diffs
    refuse = refused(diffs, policy)
    if refuse:
        raise _mismatch(where, policy, refuse, path, key)
    listing = "\n  ".join(str(d) for d in diffs)
    warnings.warn(
        f"{where} was saved in a different environment:\n  {listing}",
        VersionMismatchWarning,
        stacklevel=_user_stacklevel(),
    )
    return diffs


def evaluate(
    stored: Any, policy: str | PolicyCallable, path: str | os.PathLike[str]
) -> tuple[list[Difference], list[Difference]]:
    """(every difference, the ones ``policy`` refuses) for ``stored``, the record read from ``path``.

    The record-level half of :func:`storage_nodes.verify`: the caller reads the record (this
    layer never opens files through the API), ``path`` only names the file in errors.

    >>> diffs, refuse = evaluate(sn.environment("result.pkl"), "strict", "result.pkl")  # doctest: +SKIP
    """
    _check_policy(policy, path, None)
    damage = record_damage(stored)
    if damage:
        raise CorruptFileError(f"{path} has a damaged environment record ({damage})", path=path)
    now = current_record(stored)
    diffs = compare(stored, now)
    if not callable(policy):
        return diffs, refused(diffs, policy)
    try:
        accepted = policy(stored, now) is not False
    except VersionMismatchError:
        accepted = False
    return diffs, [] if accepted else diffs


def mismatch(
    path: str | os.PathLike[str], policy: str | PolicyCallable, refuse: list[Difference]
) -> VersionMismatchError:
    """The error :func:`storage_nodes.verify` raises when ``policy`` refuses ``refuse``."""
    name = "callable" if callable(policy) else str(policy)
    return _mismatch(str(path), name, refuse, path, None)
