"""The catalog as a read-only web page: runs, one run, one value, stats.

``storage-nodes catalog serve`` starts it (:mod:`~storage_nodes.web.server`, uvicorn);
open :mod:`~storage_nodes.web.app` first (the routes). :mod:`~storage_nodes.web.rows`
turns catalog hits into the rows the pages show (the one module that talks to the
catalog's query API), :mod:`~storage_nodes.web.files` decides which recorded file may be
read, :mod:`~storage_nodes.web.plots` draws charts with matplotlib, ``templates/`` holds
the Jinja2 pages (autoescaped). Nothing on the server unpickles or imports what a file
names: pages come from the catalog and from listings, plotted values load with
``safe=True``. Needs the ``web`` extra (``pip install "storage-nodes[web]"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_LAZY = {"create_app": "app", "serve": "server"}

if TYPE_CHECKING:
    from .app import create_app
    from .server import serve


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'storage_nodes.web' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = ["create_app", "serve"]
