"""Serve the catalog's web page with uvicorn: print the address, stop cleanly on Ctrl-C.

>>> serve("results.sqlite", port=8765)  # doctest: +SKIP
storage-nodes: serving catalog sqlite:////home/alice/results.sqlite at http://127.0.0.1:8765/ (Ctrl-C stops)
"""

from __future__ import annotations

import ipaddress
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def serve(
    catalog: Any = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    roots: Sequence[str | os.PathLike[str]] = (),
) -> None:
    """Serve the read-only web page of ``catalog`` (a :class:`~storage_nodes.catalog.Catalog`, a
    path or a URL; ``None``: the default catalog) on ``host:port`` until interrupted (Ctrl-C,
    SIGTERM). ``roots`` limit value pages and downloads to recorded files under these
    directories. ``port=0`` takes a free port; the address printed says which.
    """
    import uvicorn

    from ..catalog import Catalog
    from .app import create_app

    for r in roots:
        if not Path(r).is_dir():
            raise InvalidArgumentError(f"--root {r}: not a directory; give directories whose recorded files to serve")
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidArgumentError(f"port {port!r}: give a TCP port 0-65535 (0: any free port)")
    cat = catalog if isinstance(catalog, Catalog) else Catalog(catalog)
    cat.stats()  # opens (and checks) the catalog now: a wrong URL fails here, not on the first page
    app = create_app(cat, [Path(r) for r in roots])
    where = cat.location

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if not self.started:
                return
            for server in self.servers:
                for sock in server.sockets:
                    address = sock.getsockname()
                    shown = f"[{address[0]}]" if ":" in address[0] else address[0]
                    print(f"storage-nodes: serving catalog {where} at http://{shown}:{address[1]}/ (Ctrl-C stops)",
                          flush=True)  # fmt: skip
            if not _loopback(host):
                print(
                    f"storage-nodes: warning: listening on {host}: everyone who can reach it reads every recorded "
                    "file; put it behind the group's authenticating proxy (docs/catalog.md, 'A web page')",
                    file=sys.stderr,
                    flush=True,
                )

    config = uvicorn.Config(app, host=host, port=port, lifespan="off", log_level="info", server_header=False)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again with the
    # handler it found: Ctrl-C arrives as KeyboardInterrupt, SIGTERM is made to do the same
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        _Server(config).run()
    except KeyboardInterrupt:
        pass
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        cat.close()
    print("storage-nodes: stopped", flush=True)
