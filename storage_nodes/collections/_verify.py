"""Verifying a collection's members: present, unchanged (size and sha256), saved in a
compatible environment. :meth:`Collection.verify` and :func:`verify` return its report.
"""

from __future__ import annotations

import dataclasses
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from ..errors import InvalidArgumentError, StorageError
from ..provenance.metadata import current_record
from ..provenance.versioning import POLICIES, VersionPolicy, compare, record_damage, refused
from ._bundle import Bundle
from ._manifest import Member, resolve_location
from ._progress import sha256_file

__all__ = ["Problem", "ProblemKind", "VerifyReport", "check_members"]

ProblemKind = Literal["missing", "checksum", "unreadable", "environment"]


@dataclasses.dataclass(frozen=True)
class Problem:
    """One finding of :meth:`Collection.verify`; ``fatal`` ones make the report not ``ok``."""

    member: str
    kind: ProblemKind
    message: str
    fatal: bool

    def __str__(self) -> str:
        return f"{'ERROR' if self.fatal else 'warning'} {self.member}: {self.message}"


@dataclasses.dataclass
class VerifyReport:
    """What :meth:`Collection.verify` found. ``ok`` is False when any problem is fatal.

    >>> report = Collection.open("paper/collection.json").verify()  # doctest: +SKIP
    >>> report.ok, [str(p) for p in report.problems]  # doctest: +SKIP
    (True, [])
    """

    path: str
    checked: int
    problems: list[Problem] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(p.fatal for p in self.problems)

    def __bool__(self) -> bool:
        return self.ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "checked": self.checked,
            "problems": [dataclasses.asdict(p) for p in self.problems],
        }

    def __str__(self) -> str:
        head = f"{self.path}: {self.checked} member(s) checked, " + ("OK" if self.ok else "PROBLEMS FOUND")
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


def check_members(
    manifest: Path,
    members: Sequence[Member],
    bundle: Bundle | None,
    *,
    policy: VersionPolicy = "compatible",
    progress: bool | None = None,
) -> VerifyReport:
    """Check every member of the collection at ``manifest`` (its files, or in ``bundle``)
    and its environment record as ``policy`` says; see :meth:`Collection.verify`."""
    if policy not in POLICIES:
        raise InvalidArgumentError(f"policy must be one of {list(POLICIES)}, got {policy!r}")
    report = VerifyReport(path=str(manifest), checked=len(members))
    for m in members:
        problem = _check_file(m, manifest, bundle, progress)
        if problem is not None:
            report.problems.append(problem)
        if policy == "ignore" or not m.environment.get("modules"):
            continue
        damage = record_damage(m.environment)
        if damage:  # a hand-edited or damaged manifest entry
            report.problems.append(
                Problem(m.name, "environment", f"its recorded environment is unreadable ({damage})", True)
            )
            continue
        diffs = compare(m.environment, current_record(m.environment))
        fatal = {id(d) for d in refused(diffs, policy)}
        for d in diffs:
            report.problems.append(Problem(m.name, "environment", str(d), id(d) in fatal))
    return report


def _check_file(m: Member, manifest: Path, bundle: Bundle | None, progress: bool | None) -> Problem | None:
    """The problem with member ``m``'s file (missing, unreadable, changed), or None."""
    try:
        if bundle is not None:
            digest, size = bundle.checksum(m, show=progress)
        else:
            p = resolve_location(m.location, manifest)
            if not p.is_file():
                return Problem(m.name, "missing", f"no file at {p} (recorded as {m.location!r})", True)
            digest, size = sha256_file(p, show=progress)
    except (OSError, StorageError, EOFError, zipfile.BadZipFile) as exc:
        return Problem(m.name, "unreadable", f"cannot read it: {exc}", True)
    if size != m.size or digest != m.sha256:
        return Problem(
            m.name,
            "checksum",
            f"changed since it was added: {size} bytes with sha256 {digest[:16]}..., "
            f"recorded {m.size} bytes with sha256 {m.sha256[:16]}...",
            True,
        )
    return None
