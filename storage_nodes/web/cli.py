"""``storage-nodes catalog serve``: the catalog's read-only web page.

:func:`add_serve_command` adds the command to the ``catalog`` group that
:func:`storage_nodes.catalog.cli.add_catalog_commands` returns; ``cli.build_parser``
plugs the two together, so the catalog never imports the web page.
"""

from __future__ import annotations

import argparse
from typing import Any

from .._cliformat import HelpFormatter, examples
from .server import DEFAULT_HOST, DEFAULT_PORT

__all__ = ["add_serve_command"]


def _cmd_serve(args: argparse.Namespace) -> int:
    from .server import serve

    serve(args.catalog, host=args.host, port=args.port, roots=args.root)
    return 0


def add_serve_command(catalog_commands: Any) -> None:
    """Add ``serve`` to the ``catalog`` group's subparsers."""
    p = catalog_commands.add_parser(
        "serve",
        help="a read-only web page of the catalog: runs, a run's workflow, values and plots, stats",
        description="Serve a read-only web page of the catalog until Ctrl-C: the runs (filters in the URL), "
        "one run (its drawn workflow, nodes, metadata, environment), one value (its listing and a plot), "
        "stats. It binds to 127.0.0.1 unless --host says otherwise; access control is the database's and "
        "an authenticating proxy's. Needs the web extra: pip install 'storage-nodes[web]'.",
        formatter_class=HelpFormatter,
        epilog=examples(
            "storage-nodes catalog serve",
            "storage-nodes catalog serve --catalog postgresql://alice@db.example/pyiron --port 8800",
            "storage-nodes catalog serve --catalog results.sqlite --root /shared/runs",
        ),
    )
    p.add_argument(
        "--catalog",
        metavar="URL",
        default=None,
        help="an SQLite file path or a database URL (default: $STORAGE_NODES_CATALOG, else the per-user file)",
    )
    p.add_argument("--host", default=DEFAULT_HOST, help=f"the address to listen on (default: {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the TCP port (default: {DEFAULT_PORT}; 0: any)")
    p.add_argument(
        "--root",
        action="extend",
        nargs="+",
        default=[],
        metavar="DIR",
        help="serve values and downloads only of recorded files under DIR (repeatable; default: all)",
    )
    p.set_defaults(func=_cmd_serve)
