"""The ``storage-nodes`` command line."""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ._cliformat import HelpFormatter
from ._version import __version__
from .catalog.cli import add_catalog_commands
from .collections.cli import add_collection_commands
from .errors import InvalidArgumentError, StorageError
from .listing import Listing
from .web.cli import add_serve_command

_DEMO_FILES = ("results.h5", "relax_workflow.h5", "summary.data")


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    if args.directory is None:
        with tempfile.TemporaryDirectory(prefix="storage-nodes-demo-") as d:
            print(f"files go to the temporary directory {d} (removed at the end; `storage-nodes demo DIR` keeps them)")
            return run_demo(Path(d))
    directory = Path(args.directory)
    if directory.exists() and not directory.is_dir():
        raise InvalidArgumentError(f"{directory} is a file, not a directory; give a directory for the demo's files")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {directory} ({exc.strerror}); give a writable directory") from None
    print(f"files go to {directory.resolve()}")
    code = run_demo(directory)
    first = directory / _DEMO_FILES[0]
    print(f"kept: {', '.join(_DEMO_FILES)} in {directory}; look inside with `storage-nodes inspect {first}`")
    return code


def _inspect_collection(file: str, key: str | None) -> Listing:
    """A collection manifest or bundle: one tree across its members (as ``collection inspect``)."""
    import dataclasses

    from .collections.collection import Collection

    with Collection.open(file) as col:
        listing = col.inspect()
    return listing if key is None else dataclasses.replace(listing, root=listing[key], key=key)


def _cmd_inspect(args: argparse.Namespace) -> int:
    import dataclasses

    from .api import inspect
    from .collections.collection import is_collection
    from .listing import prune

    if args.draw or args.output is not None:
        return _draw(args)
    if is_collection(args.file):
        listing = _inspect_collection(args.file, args.key)
        if args.depth is not None:
            listing = dataclasses.replace(listing, root=prune(listing.root, args.depth))
    else:
        listing = inspect(args.file, key=args.key, depth=args.depth)
    print(listing.to_json(indent=2) if args.json else listing.text(full=args.all))
    return 0


def _draw(args: argparse.Namespace) -> int:
    """``inspect --draw FILE [-o OUT]``: the stored workflow as a graph, nothing rebuilt or run."""
    from .graph.draw import draw_file, write_drawing

    if not args.draw:
        raise InvalidArgumentError(
            "-o/--output writes a drawing: add --draw (storage-nodes inspect --draw FILE -o graph.svg)"
        )
    if args.key is not None or args.json or args.all:
        raise InvalidArgumentError("--draw draws the whole stored workflow: leave out --key, --json and --all")
    digraph = draw_file(args.file, depth=1 if args.depth is None else args.depth)
    if args.output is None:
        print(digraph.source)
    else:
        print(f"wrote {write_drawing(digraph, args.output)}")
    return 0


def _depth(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _cmd_backends(args: argparse.Namespace) -> int:
    from . import registry

    can = {"supports_browse": "browse", "supports_partial_read": "partial load", "supports_partial_write": "update"}
    for name in registry.names():
        b = registry.get(name)
        flags = [text for flag, text in can.items() if getattr(b, flag)]
        safe = "safe load" if b.supports_safe_load else "runs code on load"
        print(f"{name:12s} suffixes={','.join(registry.suffixes(name)) or '-'}  {safe}  {', '.join(flags) or '-'}")
    print(f"other suffixes save with {registry.DEFAULT_BACKEND!r}; choose with save(..., backend=NAME)")
    return 0


def _session_code(path: str) -> list[str]:
    """``module.qualname`` of each function or class of the record defined in ``__main__``, a
    notebook or a module made at run time (a command-line process defines none of them)."""
    from .api import environment

    modules = environment(path).get("modules") or {}
    return sorted(
        f"{name}.{qualname}"
        for name, record in modules.items()
        if isinstance(record, dict) and record.get("session")
        for qualname in (record.get("sources") or {})
    )


def _cmd_verify(args: argparse.Namespace) -> int:
    """Exit 0: accepted by the policy; 1: refused; 2: the file cannot be read."""
    import json

    from .api import check_record
    from .collections.collection import is_collection

    if is_collection(args.file):  # members present, checksums unchanged, environments
        from .collections.cli import run_verify

        return run_verify(args.file, policy=args.policy, as_json=args.json)
    try:
        diffs, refused_diffs = check_record(args.file, args.policy)
        code = 1 if refused_diffs else 0
        session = _session_code(args.file)
    except StorageError as exc:
        print(f"storage-nodes: error: {exc}", file=sys.stderr)
        return 2
    refuse = set(map(str, refused_diffs))
    if args.json:
        doc = {
            "path": args.file,
            "policy": args.policy,
            "exit_code": code,
            "differences": [{**d.to_dict(), "refused": str(d) in refuse} for d in diffs],
            "session_code": session,
        }
        print(json.dumps(doc, indent=2))
        return code
    note = (
        f"  ({len(session)} function(s) or class(es) were defined in a notebook or script: {', '.join(session)}; "
        "they are compared with their stored source hash where a session defines them, e.g. "
        "sn.load_workflow(FILE, version_policy='strict') in that notebook)"
    )
    if not diffs:
        print(f"{args.file}: the environment matches the stored record")
        if session:
            print(note)
        return code
    verdict = f"refused by the {args.policy!r} policy" if code else f"accepted by the {args.policy!r} policy"
    print(f"{args.file}: {len(diffs)} difference(s), {verdict}")
    for d in diffs:
        print(f"  {'!' if str(d) in refuse else '-'} {d}")
    if session:
        print(note)
    if any(d.what == "missing" for d in diffs):  # the console script does not see the current directory
        print(
            "  (modules are looked up on this Python's path: for modules beside your scripts, run "
            "`python -m storage_nodes verify FILE` in their directory or set PYTHONPATH)"
        )
    return code


_MAIN_EPILOG = """\
examples:
  storage-nodes demo out/                       run the demo, keep its files in out/
  storage-nodes inspect out/results.h5          the tree, metadata and environment of a file
  storage-nodes inspect out/results.h5 --key final/positions
  storage-nodes verify out/results.h5           does the current environment match the saving one?
  storage-nodes collection create paper/collection.json --title "Cu relaxations"
  storage-nodes collection add paper/collection.json out/results.h5
  storage-nodes catalog index out/                 record the files under out/ in the catalog
  storage-nodes catalog find --node storage_nodes.demo.relax --input steps=40

Run `storage-nodes COMMAND --help` for the options of each command.
Errors print one line `storage-nodes: error: ...` and exit non-zero."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storage-nodes",
        description="Save, load and browse pyiron_workflow results (storage_nodes).",
        formatter_class=HelpFormatter,
        epilog=_MAIN_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"storage_nodes {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run a small workflow that saves, reloads and inspects its results",
        description="Run two small pyiron_workflow workflows that save their results through SaveNodes "
        "(results.h5, summary.data), store the whole workflow (relax_workflow.h5), load one entry back "
        "through a LoadNode and re-run the stored workflow. Prints each step and where the files are.",
        formatter_class=HelpFormatter,
        epilog="examples:\n  storage-nodes demo          # files in a temporary directory, removed afterwards\n"
        "  storage-nodes demo out/     # keep the files in out/, then: storage-nodes inspect out/results.h5",
    )
    demo.add_argument("directory", nargs="?", help="where to write the files (default: a temporary directory)")
    demo.set_defaults(func=_cmd_demo)

    insp = sub.add_parser(
        "inspect",
        help="print what a stored file holds, without loading it",
        description="Print the tree of entries (types, shapes, sizes), the user metadata and the saving "
        "environment of FILE (any backend; pickle files are listed from their header, not unpickled). "
        "Long runs of same-shaped entries are summarised in one line unless --all is given. "
        "Exit 1 with one error line when FILE cannot be read or KEY is not in it.",
        formatter_class=HelpFormatter,
        epilog="examples:\n  storage-nodes inspect results.h5\n"
        "  storage-nodes inspect results.h5 --key final/positions\n"
        "  storage-nodes inspect relax_workflow.h5 --key relax/outputs --json\n"
        "  storage-nodes inspect big_archive.h5 --depth 1   # the top level and its children only\n"
        "  storage-nodes inspect records.h5 --all   # every entry, no '0..4999: dict(...) x 5000' lines\n"
        "  storage-nodes inspect paper.zip --key relax-300K/final   # a collection: <member>/<key>\n"
        "  storage-nodes inspect --draw relax_workflow.h5 -o graph.svg   # a stored workflow as a graph",
    )
    insp.add_argument(
        "file", help="a file written by storage_nodes (h5, json, pickle, cloudpickle), or a collection manifest or zip"
    )
    insp.add_argument("--key", default=None, help="only the entry at this /-separated key")
    insp.add_argument(
        "--depth",
        type=_depth,
        default=None,
        metavar="N",
        help="list N levels below the entry (0: the entry alone); default: all. With --draw: expand N "
        "levels of nested workflows (default 1)",
    )
    insp.add_argument(
        "--all",
        action="store_true",
        help="print every entry; default: a run of 8 or more same-shaped entries is one line "
        "(0..4999: dict(id, name, e, tags) x 5000) and at most 50 lines are printed per level",
    )
    insp.add_argument("--json", action="store_true", help="print the listing as JSON (always every entry)")
    insp.add_argument(
        "--draw",
        action="store_true",
        help="draw the workflow stored in FILE by save_workflow: its recipe as a graph, each port with its "
        "stored value where small (read with safe=True; nothing is rebuilt or run). Needs Graphviz's dot",
    )
    insp.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="OUT",
        help="with --draw: write the drawing to OUT (.svg, .png, .pdf; .dot: the graphviz source); "
        "default: print the graphviz source",
    )
    insp.set_defaults(func=_cmd_inspect)

    ver = sub.add_parser(
        "verify",
        help="compare a file's (or a collection's) stored environment with the current one",
        description="Print the differences between FILE's environment record and the current environment. "
        "FILE may also be a collection manifest or bundle: then members are checked for presence, "
        "checksums and environment differences. "
        "Exit 0 when the policy accepts them, 1 when it refuses them, 2 when FILE cannot be read.",
        formatter_class=HelpFormatter,
        epilog="examples:\n  storage-nodes verify results.h5\n"
        "  storage-nodes verify results.h5 --policy compatible --json\n"
        "  storage-nodes verify paper.zip   # a collection bundle (same as `collection verify`, but strict by default)",
    )
    ver.add_argument("file", help="a stored file, a collection manifest or an exported collection zip")
    ver.add_argument(
        "--policy",
        choices=["strict", "compatible", "warn", "ignore"],
        default="strict",
        help="strict: refuse any difference (default); compatible: refuse breaking ones "
        "(major version, missing module); warn/ignore: report only",
    )
    ver.add_argument("--json", action="store_true", help="print the differences as JSON")
    ver.set_defaults(func=_cmd_verify)

    bk = sub.add_parser(
        "backends",
        help="list the registered backends and what each can do",
        description="One line per registered backend: its suffixes, whether loading can run code "
        "(pickle, cloudpickle) and what it can do: browse (inspect lists every level), partial load "
        "(load(key=...) reads only that entry), update (save(key=...) rewrites one entry in place).",
    )
    bk.set_defaults(func=_cmd_backends)
    add_collection_commands(sub)
    add_serve_command(add_catalog_commands(sub))
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
        print(f"storage-nodes: error: {_for_the_shell(str(exc))}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `storage-nodes inspect big.h5 | head`: the reader left early, not our error
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        except (OSError, ValueError):
            pass
        return 1


def _for_the_shell(message: str) -> str:
    """Point hints at the command line: ``storage_nodes.inspect('f')`` -> ``storage-nodes inspect f``."""
    return re.sub(r"storage_nodes\.inspect\('([^']*)'\)", r"`storage-nodes inspect \1`", message)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
