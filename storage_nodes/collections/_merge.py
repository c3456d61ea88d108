"""Merging one collection's members into another's manifest: locations re-based, files
already there skipped, clashing names refused or renamed (:meth:`Collection.merge`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import DuplicateMemberError
from ._manifest import (
    Member,
    check_name,
    location_for,
    member_of_file,
    normalized,
    now,
    read_manifest,
    resolve_location,
    updating,
    write_manifest,
)

__all__ = ["merge_members"]


def merge_members(
    manifest: Path, other: Path, other_members: Sequence[Member], *, rename: bool = False
) -> tuple[dict[str, Any], list[Member], dict[str, str]]:
    """Add ``other_members`` (of the manifest ``other``) to the manifest at ``manifest``
    under its writer lock, as :meth:`Collection.merge` documents; all or nothing.

    Returns the manifest written (document and members) and ``{name in other: name here}``
    for the members added.
    """
    incoming = [(m, normalized(resolve_location(m.location, other))) for m in other_members]
    with updating(manifest):
        doc, members = read_manifest(manifest)
        taken = {m.name: m for m in members}
        added: dict[str, str] = {}
        clashes: list[str] = []
        stale: list[tuple[str, str]] = []  # (name there, name here)
        for m, src in incoming:
            new_name = m.name
            location = location_for(src, manifest)
            holder = member_of_file(members, location, m.sha256, src, manifest)
            if holder is not None:  # the file is a member here already: skip it, or the records disagree
                if holder.sha256 != m.sha256:
                    stale.append((m.name, holder.name))
                continue
            if m.name in taken:
                if not rename:
                    clashes.append(m.name)
                    continue
                n = 2
                while f"{m.name}-{n}" in taken:
                    n += 1
                new_name = check_name(f"{m.name}-{n}")
            record = dataclasses.replace(m, name=new_name, location=location)
            taken[new_name] = record
            members.append(record)
            added[m.name] = new_name
        if clashes:
            raise DuplicateMemberError(
                f"cannot merge {other} into {manifest}: both have members named {clashes}; "
                "rename them or pass rename=True",
                path=manifest,
                key=clashes[0],
            )
        if stale:
            raise DuplicateMemberError(
                f"cannot merge {other} into {manifest}: the same file is recorded with different "
                f"checksums ({'; '.join(f'{a!r} there is {b!r} here' for a, b in stale)}); verify both, "
                "re-add the file with replace=True where it is outdated, then merge again",
                path=manifest,
                key=stale[0][1],
            )
        if added:
            doc["modified"] = now()
            write_manifest(manifest, doc, members)
    return doc, members, added
