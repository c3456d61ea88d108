"""``storage-nodes catalog {index,find,runs,show,rm,stats,prune}``.

:func:`add_catalog_commands` plugs the group into the main parser (``cli.build_parser``).
SQLAlchemy is imported only when a catalog command runs, so ``storage-nodes --help``
stays fast. Every command takes ``--catalog URL`` (default: ``$STORAGE_NODES_CATALOG``,
else the per-user SQLite file) and ``--json`` for machine-readable output. A command that
reads a catalog says which one on stderr (``catalog: LOCATION``), so stdout stays the table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
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


def _open(args: argparse.Namespace, *, reads: bool = True) -> Any:
    from .catalog import Catalog

    cat = Catalog(args.catalog)
    if reads:
        print(f"catalog: {cat.location}", file=sys.stderr)
    return cat


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    inputs = dict(parse_assignment(t, "--input") for t in args.input)
    meta = dict(parse_assignment(t, "--meta") for t in args.meta)
    return {"node": args.node, "inputs": inputs or None, "metadata": meta or None, "user": args.user,
            "host": args.host, "since": args.since, "until": args.until, "workflow": args.workflow}  # fmt: skip


def _near(cat: Any, filters: dict[str, Any]) -> None:
    """When nothing matched: what came close, one line each."""
    from .explain import near_misses

    for hint in near_misses(cat._db, filters):
        print(f"  close: {hint}")


def _jsonable(value: Any) -> Any:
    from .records import Summary

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
        "id": h.id,
        "kind": h.kind,
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
    cat = _open(args, reads=False)
    report = cat.index(args.directory, safe=not args.unsafe)
    if args.json:
        doc = {"catalog": cat.location, "recorded": report.recorded, "unchanged": report.unchanged,
               "skipped": [{"path": p, "reason": r} for p, r in report.skipped], "foreign": report.foreign}  # fmt: skip
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
    if report.foreign:
        print(f"  ignored {report.foreign_summary()}")
    return 0


def _cmd_find(args: argparse.Namespace) -> int:
    cat = _open(args)
    filters = _filters(args)
    hits = cat.find(**filters, limit=args.limit, explain=True)
    if args.json:
        doc = {"catalog": cat.location, "hits": [_hit_dict(h) for h in hits], "near": hits.near}
        print(json.dumps(doc, indent=2))
        return 0
    if not hits:
        print(f"{cat.location}: no matching entries")
        for hint in hits.near:
            print(f"  close: {hint}")
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


#: the runs table's columns at a terminal, in the order they are dropped last (inputs fill the rest)
_RUN_COLUMNS = ("id", "created_at", "workflow", "user", "stale")
_LATER = ("node", "host", "path")


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, list):
        return ",".join(map(str, value))
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y-%m-%d %H:%M"))
    if isinstance(value, bool):
        return "STALE" if value else ""
    return str(value)


def _fit(frame: Any, width: int) -> list[str]:
    """The columns shown at a terminal ``width`` wide: id, date, workflow, user, then input ports while they fit."""
    wanted = [c for c in _RUN_COLUMNS if c in frame.columns] + [c for c in frame.columns if c.startswith("in.")]
    wanted += [c for c in _LATER if c in frame.columns]
    shown: list[str] = []
    used = 0
    for c in wanted:
        cells = [_cell(v) for v in frame[c].head(50)]
        if c != "id" and not any(cells):
            continue  # nothing to show in the rows at hand
        w = max([len(c), *map(len, cells)]) + 2
        if shown and used + w > width:
            continue
        shown.append(c)
        used += w
    return shown


def _cmd_runs(args: argparse.Namespace) -> int:
    cat = _open(args)
    filters = _filters(args)
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    frame = cat.table(**filters, kind=args.kind, columns=columns, limit=args.limit)
    if args.csv:
        frame.to_csv(sys.stdout, index=False)
        return 0
    if args.json:
        rows = json.loads(frame.to_json(orient="records", date_format="iso", default_handler=str))
        print(json.dumps({"catalog": cat.location, "rows": rows}, indent=2))
        return 0
    if frame.empty:
        print(f"{cat.location}: no matching entries")
        _near(cat, filters)
        return 0
    shown = columns or _fit(frame, shutil.get_terminal_size((120, 24)).columns)
    print(_table([[_cell(v) for v in row] for row in frame[shown].itertuples(index=False)], shown))
    hidden = len(frame.columns) - len(shown)
    if hidden and not columns:
        print(f"({len(frame)} row(s); {hidden} more column(s): --columns, --csv or --json show them)", file=sys.stderr)
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from .. import api
    from ..errors import StorageError

    cat = _open(args)
    hit = cat.get(args.id)
    nodes = hit.nodes if hit.kind == "run" else [hit]
    try:
        env: Any = api.environment(hit.path) if not hit.stale else None
    except StorageError as exc:
        env = f"(cannot read: {exc})"
    if args.json:
        doc = {"catalog": cat.location, **_hit_dict(hit), "nodes": [_hit_dict(n) for n in nodes], "environment": env}
        print(json.dumps(doc, indent=2, default=str))
        return 0
    print(f"{hit.id}  {hit.kind} {hit.workflow or hit.node or ''}".rstrip())
    print(f"  file     {hit.path}" + (f" :: {hit.key}" if hit.key else "") + ("  STALE" if hit.stale else ""))
    print(f"  by       {hit.created_by}@{hit.host} at {hit.created_at:%Y-%m-%d %H:%M:%S} UTC")
    for k, v in hit.metadata.items():
        print(f"  meta     {k} = {_short(v, 60)}")
    for n in nodes if hit.kind == "run" else []:
        print(f"  node {n.id}  {n.key}: {n.node}")
        for k, v in n.inputs.items():
            print(f"      in  {k} = {_short(v, 60)}")
        print(f"      out {', '.join(n.outputs)}")
    if hit.kind != "run":
        for k, v in hit.inputs.items():
            print(f"  in       {k} = {_short(v, 60)}")
        print(f"  outputs  {', '.join(hit.outputs)}")
    if isinstance(env, dict):
        for k in ("python", "platform", "storage_nodes"):
            if k in env:
                print(f"  env      {k}: {_short(env[k], 80)}")
        for name, mod in sorted((env.get("modules") or {}).items()):
            if isinstance(mod, dict):
                git = mod.get("git") or {}
                where = f" git {str(git.get('commit'))[:12]}{' dirty' if git.get('dirty') else ''}" if git else ""
                print(f"  env      {name} {mod.get('version') or ''}{where}".rstrip())
    elif env:
        print(f"  env      {env}")
    return 0


def _cmd_rm(args: argparse.Namespace) -> int:
    cat = _open(args)
    hits = [cat.get(i) for i in args.ids]  # every id checked before anything is asked or removed
    for h in hits:  # with --json on stderr, so stdout stays JSON
        print(f"  {h.id}  {h.kind} {h.workflow or h.node or ''}  {h.path}" + (f" :: {h.key}" if h.key else ""),
              file=sys.stderr if args.json else sys.stdout)  # fmt: skip
    if not args.yes:
        what = "these entries and the files only they point at" if args.files else "these entries (files stay)"
        try:
            answer = input(f"remove {what} from {cat.location}? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 1
    report = cat.remove(hits, files=args.files)
    if args.json:
        doc = {"catalog": cat.location, "removed": report.ids, "records": report.records,
               "deleted": report.deleted, "kept": [{"path": p, "reason": r} for p, r in report.kept]}  # fmt: skip
        print(json.dumps(doc, indent=2))
        return 0
    print(f"{cat.location}: removed {len(report.ids)} entr{'y' if len(report.ids) == 1 else 'ies'} "
          f"({report.records} record(s))")  # fmt: skip
    for p in report.deleted:
        print(f"  deleted {p}")
    for p, reason in report.kept:
        print(f"  kept {p}: {reason}")
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
            "storage-nodes catalog runs --input relax__T=600",
            "storage-nodes catalog show r12",
            "storage-nodes catalog rm r12 --files",
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

    def filters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--node", metavar="MODULE.QUALNAME", default=None, help="the node function")
        p.add_argument("--input", action="append", default=[], metavar="PORT=VALUE", help="an input port's value")
        p.add_argument("--meta", action="append", default=[], metavar="NAME=VALUE", help="a user-metadata entry")
        p.add_argument("--user", default=None, help="recorded by this login name")
        p.add_argument("--host", default=None, help="recorded on this machine")
        p.add_argument("--since", default=None, metavar="DATE", help="recorded at or after (UTC, ISO: 2026-11-01)")
        p.add_argument("--until", default=None, metavar="DATE", help="recorded before (UTC, ISO)")
        p.add_argument("--workflow", default=None, metavar="LABEL", help="from a run of this workflow")
        p.add_argument("--limit", type=int, default=None, metavar="N", help="at most N entries")

    p = sub.add_parser(
        "runs",
        help="the job table: one row per run and plain save (or per node), newest first",
        description="The catalog as a job table (Catalog.table): one row per saved run and plain save, "
        "newest first, with the columns that fit the terminal (id, date, workflow, user, then input ports); "
        "--csv and --json give every column. Filters as for `find`; numbers compare by value (T=600 finds 600.0).",
        formatter_class=HelpFormatter,
        epilog=examples(
            "storage-nodes catalog runs",
            "storage-nodes catalog runs --input relax__T=600 --user alice",
            "storage-nodes catalog runs --kind node --node storage_nodes.demo.relax --csv > relax.csv",
        ),
    )
    filters(p)
    p.add_argument("--kind", choices=("run", "node", "save"), default="run", help="one row per run, node or save")
    p.add_argument("--columns", default=None, metavar="A,B,...", help="these columns (e.g. id,in.relax__T,created_at)")
    p.add_argument("--csv", action="store_true", help="print every column as CSV")
    common(p)
    p.set_defaults(func=_cmd_runs)

    p = sub.add_parser(
        "show",
        help="one entry by id: a run's nodes with inputs and outputs, its file, metadata and environment",
        description="Show the entry ID (the id column of `catalog runs`): a run's nodes with their inputs and "
        "outputs, the file, its metadata and the environment it was saved in.",
        formatter_class=HelpFormatter,
        epilog=examples("storage-nodes catalog show r12", "storage-nodes catalog show n345 --json"),
    )
    p.add_argument("id", metavar="ID", help="an entry id: r12 (a run), n345 (a node), s345 (a plain save)")
    common(p)
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser(
        "rm",
        help="remove entries by id (a run with its nodes); --files also deletes files no other entry uses",
        description="Remove the entries ID... from the catalog: a run with its node records, a plain save, a "
        "node. With --files, also delete each file no remaining entry points at (a file another entry uses is "
        "kept and named). Asks first unless --yes. All or nothing: on any error every row and file stays.",
        formatter_class=HelpFormatter,
        epilog=examples("storage-nodes catalog rm r12", "storage-nodes catalog rm r12 r13 --files --yes"),
    )
    p.add_argument("ids", nargs="+", metavar="ID", help="entry ids (the id column of `catalog runs`)")
    p.add_argument("--files", action="store_true", help="also delete the files only these entries point at")
    p.add_argument("--yes", action="store_true", help="do not ask")
    common(p)
    p.set_defaults(func=_cmd_rm)

    p = sub.add_parser(
        "find",
        help="list entries matching node, inputs, metadata, user and dates (newest first)",
        description="List the entries matching every given filter, newest first. --input and --meta values "
        "are read as JSON where they parse: T=300 is the number 300 (it finds 300 and 300.0), name=Cu a string, "
        'name=\'"300"\' the string "300". Stale entries (files moved or rewritten) are marked STALE. When '
        "nothing matches, the lines `close:` say what came close.",
        formatter_class=HelpFormatter,
        epilog=examples(
            "storage-nodes catalog find --node storage_nodes.demo.relax --input steps=40",
            "storage-nodes catalog find --meta sample=Cu-3 --user alice --since 2026-11-01",
        ),
    )
    filters(p)
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
