"""``ro-crate-metadata.json`` for an exported collection bundle (RO-Crate 1.2).

The bundle is an Attached RO-Crate Package (a zip of the crate root). Filled in, per the
specification (https://w3id.org/ro/crate/1.2):

- the RO-Crate Metadata Descriptor (``@id`` ``ro-crate-metadata.json``, ``about`` the root,
  ``conformsTo`` the 1.2 permalink);
- the Root Data Entity ``./`` (``Dataset``): ``name``, ``description``, ``datePublished``,
  ``license`` (when given, linked to a contextual entity), ``author``, ``keywords``,
  ``hasPart`` listing every File;
- one ``File`` per member (``name``, ``description``, ``contentSize`` in bytes,
  ``encodingFormat`` as an IANA media type, ``sha256``, ``keywords``, ``dateCreated``), plus
  the manifest and the checksum list;
- provenance: a ``CreateAction`` (the export) whose ``instrument`` is storage_nodes
  (``SoftwareApplication`` with its version) and whose ``result`` is the manifest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ._manifest import Member

__all__ = ["CONTEXT", "CONFORMS_TO", "MEDIA_TYPES", "crate"]

CONTEXT = "https://w3id.org/ro/crate/1.2/context"
CONFORMS_TO = "https://w3id.org/ro/crate/1.2"
MEDIA_TYPES = {
    "json": "application/json",
    "h5": "application/x-hdf5",
    "pickle": "application/octet-stream",
    "cloudpickle": "application/octet-stream",
}
_SPDX = re.compile(r"^[A-Za-z0-9.+-]+$")


def _license(value: str) -> tuple[Any, dict[str, Any] | None]:
    """The root's ``license`` value and the contextual entity it links to (if any)."""
    if re.match(r"^https?://", value):
        return {"@id": value}, {
            "@id": value,
            "@type": "CreativeWork",
            "name": value,
            "description": f"License: {value}",
        }
    if _SPDX.match(value):
        url = f"https://spdx.org/licenses/{value}"
        entity = {
            "@id": url,
            "@type": "CreativeWork",
            "name": value,
            "identifier": value,
            "description": f"The license with SPDX identifier {value} ({url})",
        }
        return {"@id": url}, entity
    return value, None  # a textual description of how the crate may be used


def _people(creator: Any) -> list[dict[str, Any]]:
    names = [creator] if isinstance(creator, str) else list(creator or [])
    people = []
    for i, name in enumerate(str(n) for n in names if n):
        orcid = re.match(r"^https://orcid\.org/\S+$", name)
        people.append({"@id": name if orcid else f"#creator-{i + 1}", "@type": "Person", "name": name})
    return people


def _id(arcname: str) -> str:
    return quote(arcname, safe="/")


def crate(
    doc: Mapping[str, Any],
    members: list[tuple[Member, str]],
    *,
    manifest_name: str,
    checksums_name: str,
    date_published: str,
    sizes: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The RO-Crate metadata document for a bundle.

    ``members`` pairs each member with its path inside the bundle; ``sizes`` gives the
    byte size of the manifest and checksum files when known.

    >>> crate({"title": "t"}, [], manifest_name="collection.json",
    ...       checksums_name="SHA256SUMS", date_published="2026-11-25")["@context"]
    'https://w3id.org/ro/crate/1.2/context'
    """
    from .._version import __version__

    title = str(doc.get("title") or "storage_nodes collection")
    description = str(doc.get("description") or f"{title}: {len(members)} stored results (storage_nodes collection)")
    files: list[dict[str, Any]] = []
    tags: set[str] = set()
    for member, arcname in members:
        env = member.environment or {}
        entity: dict[str, Any] = {
            "@id": _id(arcname),
            "@type": "File",
            "name": member.name,
            "description": f"{member.backend} file written by storage_nodes {env.get('storage_nodes', '?')}",
            "contentSize": str(member.size),
            "encodingFormat": MEDIA_TYPES.get(member.backend, "application/octet-stream"),
            "sha256": member.sha256,
        }
        if member.tags:
            entity["keywords"] = list(member.tags)
            tags.update(member.tags)
        if env.get("timestamp"):
            entity["dateCreated"] = env["timestamp"]
        files.append(entity)
    files.append(
        {
            "@id": _id(manifest_name),
            "@type": "File",
            "name": "storage_nodes collection manifest",
            "description": "members, locations, checksums, tags and environment records (docs/format.md)",
            "encodingFormat": "application/json",
        }
    )
    sizes = sizes or {}
    files.append(
        {
            "@id": _id(checksums_name),
            "@type": "File",
            "name": "SHA-256 checksums",
            "description": "sha256sum-compatible checksums of the members and the manifest",
            "encodingFormat": "text/plain",
        }
    )
    for entity in files[-2:]:
        if entity["@id"] in sizes:
            entity["contentSize"] = str(sizes[entity["@id"]])
    root: dict[str, Any] = {
        "@id": "./",
        "@type": "Dataset",
        "name": title,
        "description": description,
        "datePublished": date_published,
        "hasPart": [{"@id": f["@id"]} for f in files],
    }
    if doc.get("created"):
        root["dateCreated"] = doc["created"]
    contextual: list[dict[str, Any]] = []
    if doc.get("license"):
        root["license"], entity_or_none = _license(str(doc["license"]))
        if entity_or_none is not None:
            contextual.append(entity_or_none)
    people = _people(doc.get("creator"))
    if people:
        refs = [{"@id": p["@id"]} for p in people]
        root["author"] = refs[0] if len(refs) == 1 else refs  # RO-Crate 1.2: no singleton arrays
        contextual.extend(people)
    if tags:
        root["keywords"] = sorted(tags)
    software = {
        "@id": "https://pypi.org/project/storage-nodes/",
        "@type": "SoftwareApplication",
        "name": "storage_nodes",
        "version": __version__,
        "url": "https://pypi.org/project/storage-nodes/",
    }
    action = {
        "@id": "#export",
        "@type": "CreateAction",
        "name": "Export of the collection with storage_nodes",
        "endTime": date_published,
        "instrument": {"@id": software["@id"]},
        "result": [{"@id": _id(manifest_name)}, {"@id": _id(checksums_name)}],
    }
    root["mentions"] = {"@id": action["@id"]}
    contextual.extend([software, action])
    descriptor = {
        "@id": "ro-crate-metadata.json",
        "@type": "CreativeWork",
        "conformsTo": {"@id": CONFORMS_TO},
        "about": {"@id": "./"},
    }
    return {"@context": CONTEXT, "@graph": [descriptor, root, *files, *contextual]}
