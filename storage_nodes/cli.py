"""The ``storage-nodes`` command line."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .collection_cli import add_collection_commands
from .errors import StorageError


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    if args.directory is None:
        with tempfile.TemporaryDirectory(prefix="storage-nodes-demo-") as d:
            return run_demo(Path(d))
    directory = Path(args.directory)
    directory.mkdir(parents=True, exist_ok=True)
    return run_demo(directory)


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .api import inspect

    listing = inspect(args.file, key=args.key)
    print(listing.to_json(indent=2) if args.json else listing)
    return 0


def _cmd_backends(args: argparse.Namespace) -> int:
    from . import registry

    for name in registry.names():
        b = registry.get(name)
        flags = [f for f in ("supports_browse", "supports_partial_read", "supports_partial_write") if getattr(b, f)]
        safe = "safe load" if b.supports_safe_load else "runs code on load"
        print(f"{name:12s} suffixes={','.join(b.suffixes) or '-'}  {safe}  {' '.join(flags)}")
    return 0


def _verify_collection(args: argparse.Namespace) -> int:
    """A collection manifest or bundle: members present, checksums unchanged, environments."""
    import json

    from .collection import verify

    try:
        report = verify(args.file, policy=args.policy)
    except StorageError as exc:
        print(f"storage-nodes: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report)
    return 0 if report.ok else 1


def _cmd_verify(args: argparse.Namespace) -> int:
    """Exit 0: accepted by the policy; 1: refused; 2: the file cannot be read."""
    import json

    from .collection import is_collection
    from .versioning import refused, verify_file

    if is_collection(args.file):
        return _verify_collection(args)
    try:
        diffs, code = verify_file(args.file, args.policy)
    except StorageError as exc:
        print(f"storage-nodes: error: {exc}", file=sys.stderr)
        return 2
    refuse = set(map(str, refused(diffs, args.policy))) if code else set()
    if args.json:
        doc = {
            "path": args.file,
            "policy": args.policy,
            "exit_code": code,
            "differences": [{**d.to_dict(), "refused": str(d) in refuse} for d in diffs],
        }
        print(json.dumps(doc, indent=2))
        return code
    if not diffs:
        print(f"{args.file}: the environment matches the stored record")
        return code
    verdict = f"refused by the {args.policy!r} policy" if code else f"accepted by the {args.policy!r} policy"
    print(f"{args.file}: {len(diffs)} difference(s), {verdict}")
    for d in diffs:
        print(f"  {'!' if str(d) in refuse else '-'} {d}")
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storage-nodes",
        description="Save, load and browse pyiron_workflow results (storage_nodes).",
    )
    parser.add_argument("--version", action="version", version=f"storage_nodes {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="run a small workflow that saves, reloads and inspects its results")
    demo.add_argument("directory", nargs="?", help="where to write the files (default: a temporary directory)")
    demo.set_defaults(func=_cmd_demo)

    insp = sub.add_parser("inspect", help="print what a stored file holds, without loading it")
    insp.add_argument("file")
    insp.add_argument("--key", default=None, help="only the entry at this /-separated key")
    insp.add_argument("--json", action="store_true", help="print the listing as JSON")
    insp.set_defaults(func=_cmd_inspect)

    ver = sub.add_parser(
        "verify",
        help="compare a file's (or a collection's) stored environment with the current one",
        description="Print the differences between FILE's environment record and the current environment. "
        "FILE may also be a collection manifest or bundle: then members are checked for presence, "
        "checksums and environment differences. "
        "Exit 0 when the policy accepts them, 1 when it refuses them, 2 when FILE cannot be read.",
    )
    ver.add_argument("file")
    ver.add_argument(
        "--policy",
        choices=["strict", "compatible", "warn", "ignore"],
        default="strict",
        help="strict: refuse any difference (default); compatible: refuse breaking ones "
        "(major version, missing module); warn/ignore: report only",
    )
    ver.add_argument("--json", action="store_true", help="print the differences as JSON")
    ver.set_defaults(func=_cmd_verify)

    bk = sub.add_parser("backends", help="list the registered backends and what each can do")
    bk.set_defaults(func=_cmd_backends)
    add_collection_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except StorageError as exc:
        print(f"storage-nodes: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
