"""``storage-nodes collection {create,add,remove,inspect,verify,export,merge,unpack}``.

:func:`add_collection_commands` plugs the group into the main parser (``cli.build_parser``);
:func:`run_verify` is what ``storage-nodes verify <collection>`` and
``storage-nodes collection verify`` run: it prints the report and returns the exit code.

The :class:`~storage_nodes.collections.collection.Collection` API words its advice for Python callers
(``pass rename=True``); every subcommand rewords the errors it raises for the command line
(``pass --rename``) with :func:`for_the_command_line`, so the logic stays in one place.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._cliformat import HelpFormatter, examples
from ..errors import (
    DuplicateMemberError,
    FileNotFoundStorageError,
    InvalidArgumentError,
    KeyNotFoundError,
    StorageError,
)

__all__ = ["add_collection_commands", "for_the_command_line", "run_verify"]

# (advice in an error of the Python API, as a regular expression; the same advice for the command line)
_CLI_WORDING: tuple[tuple[str, str], ...] = (
    (r"pass replace=True", "pass --replace"),
    (r"pass rename=True", "pass --rename"),
    (
        r"re-add it with add\(\.\.\., replace=True\)",
        "re-add it with `storage-nodes collection add MANIFEST FILE --replace`",
    ),
    (
        r"re-add the file with replace=True",
        "re-add the file with `storage-nodes collection add MANIFEST FILE --replace`",
    ),
    (r"call remove\(('[^']*'|\"[^\"]*\")\) first", r"run `storage-nodes collection remove MANIFEST \1` first"),
    (r"exists and overwrite=False", "exists and --no-overwrite was given"),
    (
        r"open it with Collection\.open\(\) or pass exist_ok=True",
        "add files to it with `storage-nodes collection add`, or give another file name",
    ),
    (r"Collection\.open\(zip\)\.unpack\(directory\)", "`storage-nodes collection unpack ZIP DIRECTORY`"),
    (r"use export\(\) to write a bundle", "use `storage-nodes collection export` to write a bundle"),
    (r"tags must be a list of non-empty str, e\.g\. \['Cu', '300K'\], got .*", "a --tag must not be empty"),
)


def for_the_command_line(message: str) -> str:
    """Reword the Python advice of a collection error for a command-line user.

    >>> for_the_command_line("both have members named ['a']; rename them or pass rename=True")
    "both have members named ['a']; rename them or pass --rename"
    """
    for pattern, cli in _CLI_WORDING:
        message = re.sub(pattern, cli, message)
    return message


def _in_cli_words(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``command`` with the errors it raises reworded by :func:`for_the_command_line`."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except StorageError as exc:
            exc.message = for_the_command_line(exc.message)
            exc.args = (exc.message,)
            raise

    return run


def _json_object(text: str | None, option: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidArgumentError(f'{option} must be a JSON object, e.g. \'{{"sample": "Cu-3"}}\' ({exc})') from None
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{option} must be a JSON object, got {type(value).__name__}")
    return value


def run_verify(path: str, *, policy: str = "compatible", as_json: bool = False) -> int:
    """Verify the collection (manifest or bundle) at ``path`` and print the report.

    Returns the exit code of ``storage-nodes verify``: 0 when every member is present,
    unchanged and accepted by ``policy``; 1 when not; 2 when the collection cannot be read.

    >>> run_verify("paper.zip")  # doctest: +SKIP
    paper.zip: 2 member(s) checked, OK
    0
    """
    from .collection import verify

    try:
        report = verify(path, policy=policy)  # type: ignore[arg-type]  # argparse restricts the choices
    except StorageError as exc:
        print(f"storage-nodes: error: {for_the_command_line(str(exc))}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2) if as_json else report)
    return 0 if report.ok else 1


def _create(args: argparse.Namespace) -> int:
    from .collection import Collection

    creator = args.creator[0] if args.creator and len(args.creator) == 1 else args.creator
    col = Collection.create(
        args.manifest,
        title=args.title or "",
        description=args.description or "",
        creator=creator,
        license=args.license,
        metadata=_json_object(args.metadata, "--metadata"),
    )
    print(f"created {col.path}")
    return 0


def _add(args: argparse.Namespace) -> int:
    from .. import registry
    from ._manifest import check_name
    from .collection import Collection

    if args.name is not None and len(args.files) > 1:
        raise InvalidArgumentError("--name needs exactly one FILE; without it each member is named after its file")
    if not Path(args.manifest).expanduser().exists():
        raise FileNotFoundStorageError(
            f"no such collection manifest: {args.manifest}; create it first with "
            f"`storage-nodes collection create {args.manifest}`",
            path=args.manifest,
        )
    col = Collection.open(args.manifest)
    metadata = _json_object(args.metadata, "--metadata")
    # all or nothing: refuse a missing or foreign file, a bad name or a name clash before adding the first file
    names = [args.name] if args.name is not None else [Path(f).stem for f in args.files]
    for file, name in zip(args.files, names, strict=True):
        try:
            check_name(name)
            registry.detect(Path(file).expanduser())
        except StorageError as exc:
            exc.message = f"nothing added to {args.manifest}: cannot add member {name!r}: {exc.message}"
            exc.args = (exc.message,)
            raise
    clashes = sorted({n for n in names if names.count(n) > 1 or (n in col and not args.replace)})
    if clashes:
        raise DuplicateMemberError(
            f"nothing added to {args.manifest}: member name(s) {clashes} would clash "
            "(already in the collection or given twice); use --name for one file, or --replace",
            path=args.manifest,
        )
    twice = _files_already_members(col, args.files, names) if len(args.files) > 1 else []  # one: add() says it
    if twice:
        raise DuplicateMemberError(
            f"nothing added to {args.manifest}: a file is a member once, but {'; '.join(twice)}; "
            "leave those FILEs out, or remove the members first with `storage-nodes collection remove`",
            path=args.manifest,
        )
    for file in args.files:
        m = col.add(file, name=args.name, tags=args.tag or None, metadata=metadata, replace=args.replace)
        print(f"added {m.name!r}: {m.location} ({m.backend}, {m.size} bytes)")
    return 0


def _files_already_members(col: Any, files: list[str], names: list[str]) -> list[str]:
    """For a batch add: each FILE that is already a member under another name, or the same
    file as an earlier FILE of the batch (the same location or the same file on disk)."""
    from ._manifest import location_for, resolve_location

    def on_disk(p: Path) -> tuple[int, int] | None:
        try:
            st = os.stat(p)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    known: dict[object, str] = {}  # recorded location or (device, inode) -> member name
    for m in col.members:
        known[m.location] = m.name
        known[on_disk(resolve_location(m.location, col.path))] = m.name
    known.pop(None, None)
    found = []
    for file, name in zip(files, names, strict=True):
        src = Path(file).expanduser()
        keys = [location_for(src, col.path), on_disk(src)]
        holder = next((known[k] for k in keys if k in known), None)
        if holder is not None and holder != name:
            found.append(f"{file} is the file of member {holder!r}")
        known.update({k: name for k in keys if k is not None})
    return found


def _remove(args: argparse.Namespace) -> int:
    from .collection import Collection

    col = Collection.open(args.manifest)
    unknown = [n for n in dict.fromkeys(args.names) if n not in col]
    if unknown:
        raise KeyNotFoundError(
            f"nothing removed from {args.manifest}: no member(s) {unknown}; its members are {col.names}",
            path=args.manifest,
            key=unknown[0],
        )
    for name in dict.fromkeys(args.names):
        m = col.remove(name)
        print(f"removed {m.name!r} (the file {m.location} is left alone)")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from .collection import Collection

    with Collection.open(args.collection) as col:
        listing = col.inspect()
        print(listing.to_json(indent=2) if args.json else listing)
    return 0


def _verify(args: argparse.Namespace) -> int:
    return run_verify(args.collection, policy=args.policy, as_json=args.json)


def _export(args: argparse.Namespace) -> int:
    from .collection import Collection

    with Collection.open(args.collection) as col:
        dest = col.export(args.dest, overwrite=not args.no_overwrite)
    print(f"exported {len(col)} member(s) to {dest}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from .collection import Collection

    added = Collection.open(args.manifest).merge(args.other, rename=args.rename)
    for old, new in added.items():
        print(f"added {new!r}" + (f" (renamed from {old!r})" if old != new else ""))
    print(f"merged {len(added)} member(s) into {args.manifest}")
    return 0


def _unpack(args: argparse.Namespace) -> int:
    from .collection import Collection

    with Collection.open(args.bundle) as col:
        unpacked = col.unpack(args.directory)
    print(f"unpacked {len(unpacked)} member(s) to {unpacked.path}")
    return 0


def add_collection_commands(subparsers: Any) -> None:
    """Add the ``collection`` command group to the main parser's subparsers."""
    group = subparsers.add_parser(
        "collection",
        help="group stored files across directories, verify them, export a publishable zip",
        description="A collection is a JSON manifest listing stored files (any backend, any directory) "
        "with their checksums and environments; `export` packs it into one zip with RO-Crate metadata.",
        formatter_class=HelpFormatter,
        epilog=examples(
            'storage-nodes collection create paper/collection.json --title "Cu relaxations" --creator "A. Author"',
            "storage-nodes collection add paper/collection.json runs/300K/results.h5 --name relax-300K",
            "storage-nodes collection inspect paper/collection.json",
            "storage-nodes collection remove paper/collection.json relax-300K",
            "storage-nodes collection verify paper/collection.json",
            "storage-nodes collection export paper/collection.json paper.zip",
            "storage-nodes collection unpack paper.zip unpacked/",
        ),
    )
    sub = group.add_subparsers(dest="collection_command", metavar="ACTION", required=True)

    p = sub.add_parser(
        "create",
        help="write a new, empty collection manifest",
        description="Write a new, empty collection manifest; refuses to overwrite an existing one.",
        formatter_class=HelpFormatter,
        epilog=examples(
            'storage-nodes collection create paper/collection.json --title "Cu relaxations" --license CC-BY-4.0',
            'storage-nodes collection create c.json --creator "A. Author" --creator https://orcid.org/0000-0002-1825-0097',
        ),
    )
    p.add_argument("manifest", metavar="MANIFEST", help="the manifest file to write, e.g. paper/collection.json")
    p.add_argument("--title", help="a short title (the zip's RO-Crate name)")
    p.add_argument("--description", help="a longer description")
    p.add_argument("--creator", action="append", help="author name or ORCID URL (repeatable)")
    p.add_argument("--license", help="SPDX identifier (CC-BY-4.0), URL or text; used in exports")
    p.add_argument("--metadata", help="collection metadata as a JSON object")
    p.set_defaults(func=_in_cli_words(_create))

    p = sub.add_parser(
        "add",
        help="add stored files (any backend, any directory) as members",
        description="Record FILEs as members of the collection: location relative to the manifest, "
        "backend, size, sha256 and environment. Files stay where they are; nothing is copied.",
        formatter_class=HelpFormatter,
        epilog=examples(
            "storage-nodes collection add paper/collection.json runs/300K/results.h5 --name relax-300K --tag Cu",
            "storage-nodes collection add paper/collection.json a.h5 b.json   # members a and b",
            "storage-nodes collection add paper/collection.json a.h5 --replace   # after a.h5 changed",
        ),
    )
    p.add_argument("manifest", metavar="MANIFEST", help="the collection manifest (from `collection create`)")
    p.add_argument("files", nargs="+", metavar="FILE", help="a stored file of any backend; one member per FILE")
    p.add_argument("--name", help="member name (one FILE only; default: the file's stem)")
    p.add_argument("--tag", action="append", help="a tag (repeatable)")
    p.add_argument("--metadata", help="member metadata as a JSON object")
    p.add_argument("--replace", action="store_true", help="replace a member of the same name")
    p.set_defaults(func=_in_cli_words(_add))

    p = sub.add_parser(
        "remove",
        help="drop members from the manifest (their files stay)",
        description="Drop the members NAMEs from MANIFEST. Their files are left alone.",
        formatter_class=HelpFormatter,
        epilog=examples(
            "storage-nodes collection remove paper/collection.json relax-600K",
        ),
    )
    p.add_argument("manifest", metavar="MANIFEST", help="the collection manifest")
    p.add_argument("names", nargs="+", metavar="NAME", help="a member name (see `collection inspect`)")
    p.set_defaults(func=_in_cli_words(_remove))

    p = sub.add_parser(
        "inspect",
        help="print one tree across all members, without loading data",
        description="Print one tree across all members (entries, types, shapes), without loading data.",
        formatter_class=HelpFormatter,
        epilog=examples(
            "storage-nodes collection inspect paper/collection.json",
            "storage-nodes collection inspect paper.zip --json",
        ),
    )
    p.add_argument("collection", metavar="COLLECTION", help="a manifest or an exported zip")
    p.add_argument("--json", action="store_true", help="print the listing as JSON")
    p.set_defaults(func=_in_cli_words(_inspect))

    p = sub.add_parser(
        "verify",
        help="check members are present, unchanged and compatible; exit 1 if not",
        description="Check that every member is present, unchanged (sha256) and that its environment is "
        "accepted by --policy. Exit 0 when all are, 1 when not, 2 when the collection cannot be read.",
        formatter_class=HelpFormatter,
        epilog=examples(
            "storage-nodes collection verify paper/collection.json",
            "storage-nodes collection verify paper.zip --policy strict --json",
        ),
    )
    p.add_argument("collection", metavar="COLLECTION", help="a manifest or an exported zip")
    p.add_argument(
        "--policy",
        choices=["ignore", "warn", "compatible", "strict"],
        default="compatible",
        help="which environment differences fail the check (default: compatible = breaking ones)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_in_cli_words(_verify))

    p = sub.add_parser(
        "export",
        help="write one zip with manifest, members, checksums and RO-Crate metadata",
        description="Write one zip: the manifest, every member file, SHA256SUMS and ro-crate-metadata.json.",
        formatter_class=HelpFormatter,
        epilog=examples(
            "storage-nodes collection export paper/collection.json paper.zip",
        ),
    )
    p.add_argument("collection", metavar="COLLECTION", help="a manifest or an exported zip")
    p.add_argument("dest", metavar="DEST", help="the zip file to write")
    p.add_argument("--no-overwrite", action="store_true", help="refuse to replace an existing DEST")
    p.set_defaults(func=_in_cli_words(_export))

    p = sub.add_parser(
        "merge",
        help="add the members of OTHER to MANIFEST",
        description="Add the members of OTHER (a manifest; unpack an exported zip first) to MANIFEST. "
        "Members whose file is in MANIFEST already are skipped; clashing names fail unless --rename.",
        formatter_class=HelpFormatter,
        epilog=examples(
            "storage-nodes collection unpack colleague.zip theirs/   # a zip: unpack it first",
            "storage-nodes collection merge paper/collection.json theirs/collection.json --rename",
        ),
    )
    p.add_argument("manifest", metavar="MANIFEST", help="the collection manifest to add to")
    p.add_argument("other", metavar="OTHER", help="the collection manifest whose members are added")
    p.add_argument("--rename", action="store_true", help="rename clashing members (name-2, ...) instead of failing")
    p.set_defaults(func=_in_cli_words(_merge))

    p = sub.add_parser(
        "unpack",
        help="extract an exported zip into a directory (checksums verified)",
        description="Extract an exported zip into DIRECTORY (checksums verified); "
        "DIRECTORY/collection.json is then a normal manifest.",
        formatter_class=HelpFormatter,
        epilog=examples(
            "storage-nodes collection unpack paper.zip unpacked/",
            "storage-nodes collection inspect unpacked/collection.json",
        ),
    )
    p.add_argument("bundle", metavar="ZIP", help="an exported zip")
    p.add_argument("directory", metavar="DIRECTORY", help="where to extract (must not hold a collection.json yet)")
    p.set_defaults(func=_in_cli_words(_unpack))
