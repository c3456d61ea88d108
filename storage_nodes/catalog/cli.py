"""``storage-nodes catalog {index,find,stats,prune}``.

:func:`add_catalog_commands` plugs the group into the main parser (``cli.build_parser``).
SQLAlchemy is imported only when a catalog command runs, so ``storage-nodes --help``
stays fast. Every command takes ``--catalog URL`` (default: ``$STORAGE_NODES_CATALOG``,
else the per-user SQLite file) and ``--json`` for machine-readable output.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .._cliformat import HelpFormatter, examples
from ..errors import InvalidArgumentError

__all__ = ["add_catalog_commands", "parse_assignment"]


def parse_assignment(text: str, option: str) -> tuple[str, Any]:
    """``NAME=VALUE`` with VALUE read as JSON where it parses (``T=300`` -> 300, ``name=Cu`` -> "Cu").

    >>> parse_assignment("T=300", "--input"), parse_assignment("x=-1.0", "--input"), parse_assignment("s=Cu", "--meta")
    (('T', 300), ('x', -1.0), ('s', 'Cu'))
    """
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise InvalidArgumentError(f"{option} {text!r}: expected NAME=VALUE, e.g. {option} T=300")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return name, value


def _open(args: argparse.Namespace) -> Any:
    from .catalog import Catalog

    return Catalog(args.catalog)


def _jsonable(value: Any) -> Any:
    from .catalog import Summary

    if isinstance(value, Summary):
        return {"summary": value.description}
    return value


def _hit_dict(h: Any) -> dict[str, Any]:
    return {
        "path": str(h.path),
        "key": h.key,
        "node": h.node,
        "label": h.label,
        "workflow": h.workflow,
        "inputs": {k: _jsonable(v) for k, v in h.inputs.items()},
        "undigested": h.undigested,
        "outputs": h.outputs,
        "metadata": h.metadata,
        "created_by": h.created_by,
        "host": h.host,
        "created_at": h.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "version": h.version,
        "stale": h.stale,
    }


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def _short(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _cmd_index(args: argparse.Namespace) -> int:
    cat = _open(args)
    report = cat.index(args.directory, safe=not args.unsafe)
    if args.json:
        doc = {"catalog": cat.location, "recorded": report.recorded, "unchanged": report.unchanged,
               "skipped": [{"path": p, "reason": r} for p, r in report.skipped]}  # fmt: skip
        print(json.dumps(doc, indent=2))
        return 0
    print(
        f"{cat.location}: recorded {len(report.recorded)} file(s), {len(report.unchanged)} already up to date, "
        f"skipped {len(report.skipped)}"
    )
    for p in report.recorded:
        print(f"  + {p}")
    for p, reason in report.skipped:
        print(f"  - {p}: {reason}")
    return 0


def _cmd_find(args: argparse.Namespace) -> int:
    cat = _open(args)
    inputs = dict(parse_assignment(t, "--input") for t in args.input)
    meta = dict(parse_assignment(t, "--meta") for t in args.meta)
    hits = cat.find(
        node=args.node, inputs=inputs or None, metadata=meta or None, user=args.user, since=args.since,
        until=args.until, workflow=args.workflow, limit=args.limit,
    )  # fmt: skip
    if args.json:
        print(json.dumps({"catalog": cat.location, "hits": [_hit_dict(h) for h in hits]}, indent=2))
        return 0
    if not hits:
        print(f"{cat.location}: no matching entries")
        return 0
    rows = []
    for h in hits:
        ins = ", ".join(f"{k}={_short(v, 24)}" for k, v in h.inputs.items())
        if h.undigested:
            ins += f" (not digested: {', '.join(h.undigested)})"
        rows.append(
            [
                h.created_at.strftime("%Y-%m-%d %H:%M"),
                f"{h.created_by}@{h.host}",
                h.node or "(save)",
                str(h.path) + (f" :: {h.key}" if h.key else ""),
                "STALE" if h.stale else "",
                ins,
            ]
        )
    print(_table(rows, ["created (UTC)", "by", "node", "file :: key", "", "inputs"]))
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    cat = _open(args)
    stats = cat.stats()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(f"{stats['catalog']}: {stats['files']} file(s), {stats['records']} record(s)")
    if stats["nodes"]:
        print()
        rows = [[n["node"], str(n["records"]), str(n["distinct_inputs"]), ", ".join(n["users"]), n["last"] or ""]
                for n in stats["nodes"]]  # fmt: skip
        print(_table(rows, ["node", "records", "distinct inputs", "users", "last (UTC)"]))
    if stats["users"]:
        print()
        rows = [[u["user"], str(u["files"]), str(u["records"]), u["first"] or "", u["last"] or ""]
                for u in stats["users"]]  # fmt: skip
        print(_table(rows, ["user", "files", "records", "first (UTC)", "last (UTC)"]))
    return 0


def _cmd_prune(args: argparse.Namespace) -> int:
    cat = _open(args)
    dropped = cat.prune(dry_run=args.dry_run)
    if args.json:
        doc = {"catalog": cat.location, "dry_run": args.dry_run,
               "dropped": [{"path": d.path, "reason": d.reason, "records": d.records} for d in dropped]}  # fmt: skip
        print(json.dumps(doc, indent=2))
        return 0
    verb = "would drop" if args.dry_run else "dropped"
    print(f"{cat.location}: {verb} {len(dropped)} file(s)")
    for d in dropped:
        print(f"  - {d.path}: {d.reason} ({d.records} record(s))")
    return 0


def add_catalog_commands(subparsers: Any) -> Any:
    """Add the ``catalog`` command group to the main parser's subparsers; return the group's
    subparsers, where an upper layer adds its commands (``web/cli.py``: ``serve``)."""
    group = subparsers.add_parser(
        "catalog",
        help="index stored results in a database and find them by node, inputs, metadata, user, date",
        description="The catalog is a database (an SQLite file, or PostgreSQL for a group) beside the files: "
        "which runs computed a node with which inputs, who made them, when, where the files are.",
        formatter_class=HelpFormatter,
        epilog=examples(
            "storage-nodes catalog index runs/",
            "storage-nodes catalog find --node storage_nodes.demo.relax --input steps=40 --user alice",
            "storage-nodes catalog find --meta sample=Cu-3 --since 2026-11-01 --json",
            "storage-nodes catalog stats --catalog postgresql://alice@db.example/pyiron",
            "storage-nodes catalog prune --dry-run",
        ),
    )
    sub = group.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--catalog",
            metavar="URL",
            default=None,
            help="an SQLite file path or a database URL (default: $STORAGE_NODES_CATALOG, else the per-user file)",
        )
        p.add_argument("--json", action="store_true", help="print machine-readable JSON")

    p = sub.add_parser(
        "index",
        help="record the stored files under DIR that the catalog lacks (idempotent)",
        description="Record every storage_nodes file under DIR (recursively) that the catalog does not hold "
        "or holds with an outdated identity. Workflow files get one record per node. Pickle files are "
        "recorded from their header unless --unsafe.",
        formatter_class=HelpFormatter,
        epilog=examples("storage-nodes catalog index runs/", "storage-nodes catalog index runs/ --catalog team.sqlite"),
    )
    p.add_argument("directory", metavar="DIR", help="the directory to scan")
    p.add_argument("--unsafe", action="store_true", help="also unpickle pickled workflows to record their nodes")
    common(p)
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser(
        "find",
        help="list entries matching node, inputs, metadata, user and dates (newest first)",
        description="List the entries matching every given filter, newest first. --input and --meta values "
        "are read as JSON where they parse: T=300 is the int 300, x=-1.0 a float, name=Cu a string, "
        'name=\'"300"\' the string "300". Stale entries (files moved or rewritten) are marked STALE.',
        formatter_class=HelpFormatter,
        epilog=examples(
            "storage-nodes catalog find --node storage_nodes.demo.relax --input steps=40",
            "storage-nodes catalog find --meta sample=Cu-3 --user alice --since 2026-11-01",
        ),
    )
    p.add_argument("--node", metavar="MODULE.QUALNAME", default=None, help="the node function")
    p.add_argument("--input", action="append", default=[], metavar="PORT=VALUE", help="an input port's value")
    p.add_argument("--meta", action="append", default=[], metavar="NAME=VALUE", help="a user-metadata entry")
    p.add_argument("--user", default=None, help="recorded by this login name")
    p.add_argument("--since", default=None, metavar="DATE", help="recorded at or after (UTC, ISO: 2026-11-01)")
    p.add_argument("--until", default=None, metavar="DATE", help="recorded before (UTC, ISO)")
    p.add_argument("--workflow", default=None, metavar="LABEL", help="from a run of this workflow")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="at most N entries")
    common(p)
    p.set_defaults(func=_cmd_find)

    p = sub.add_parser(
        "stats",
        help="per node function and per user: how much is recorded",
        description="Per node function: records, distinct inputs, users; per user: files and records.",
        formatter_class=HelpFormatter,
        epilog=examples("storage-nodes catalog stats", "storage-nodes catalog stats --json"),
    )
    common(p)
    p.set_defaults(func=_cmd_stats)

    p = sub.add_parser(
        "prune",
        help="drop entries whose files are gone or were rewritten",
        description="Drop the entries whose files are gone or were rewritten since they were recorded "
        "(`catalog index` records rewritten files again).",
        formatter_class=HelpFormatter,
        epilog=examples("storage-nodes catalog prune --dry-run", "storage-nodes catalog prune"),
    )
    p.add_argument("--dry-run", action="store_true", help="only list what would be dropped")
    common(p)
    p.set_defaults(func=_cmd_prune)
    return sub
