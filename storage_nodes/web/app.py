"""The routes of the catalog's web page (Starlette): runs, a run, a value, stats, and their pictures.

``create_app(catalog, roots)`` returns the ASGI application that
:func:`storage_nodes.web.server.serve` runs. Every page is read-only and built from the
catalog (:mod:`.rows`) and from listings (``inspect``, which builds no object); values are
loaded for plots with ``safe=True`` only. Templates are Jinja2 with autoescaping on, so every
string from the catalog or a file is escaped; every response carries a Content-Security-Policy
without any script source, and pictures (the drawn workflow, plots) are separate SVG
responses shown through ``<img>``, where a browser runs no script. A URL names records by id,
never a path (:mod:`.files` decides what may be read); anything else is a 404.

>>> app = create_app(sn.Catalog("results.sqlite"))  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from .. import api
from .._listing_html import listing_html, refused_by_safe_load
from ..errors import CatalogError, InvalidArgumentError, StorageError
from ..keys import join, split
from . import files, plots, rows

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from ..catalog import Catalog, Hit

__all__ = ["HEADERS", "create_app"]

log = logging.getLogger(__name__)

#: sent with every response: no script may run, nothing is framed or sniffed, no referrer leaves
HEADERS = {
    "content-security-policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
#: arrays with at most this many elements also show their values as text
SHOWN_VALUES = 100
_DRAWINGS = 32  # drawn workflows kept in memory (keyed by path and file identity)
#: seconds the stats page's numbers are reused (its two charts are fetched right after it)
STATS_SECONDS = 30.0


class _Headers:
    """ASGI middleware adding :data:`HEADERS` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *((k.encode(), v.encode()) for k, v in HEADERS.items())]
            await send(message)

        await self.app(scope, receive, sending)


def _human(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _shown(value: Any, width: int = 80) -> str:
    """An input value as text: a catalog Summary by its description, else compact JSON, cut at ``width``."""
    description = getattr(value, "description", None)
    text = description if isinstance(description, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def _url(path: str, pairs: Sequence[tuple[str, Any]] = ()) -> str:
    query = urllib.parse.urlencode([(k, str(v)) for k, v in pairs if v is not None])
    return f"{path}?{query}" if query else path


class _Site:
    """What the routes share: the catalog, the roots, the templates, a cache of drawings."""

    def __init__(self, catalog: Catalog, roots: Sequence[Path]) -> None:
        self.catalog = catalog
        self.roots = [Path(r).resolve() for r in roots]
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("storage_nodes.web", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        env.filters["human"] = _human
        env.filters["shown"] = _shown
        env.filters["json"] = lambda v: json.dumps(v, default=str, sort_keys=True)
        env.filters["plain"] = lambda v: v if isinstance(v, str) else json.dumps(v, default=str, sort_keys=True)
        env.globals.update(url=_url, stamp=rows.stamp, location=catalog.location)
        self.env = env
        self.drawings: collections.OrderedDict[tuple[str, int, int], bytes] = collections.OrderedDict()
        self.lock = threading.Lock()
        self._stats: tuple[float, dict[str, Any]] | None = None

    def stats(self) -> dict[str, Any]:
        """``Catalog.stats()``, reused for :data:`STATS_SECONDS` (a page and its charts: one query)."""
        with self.lock:
            cached = self._stats
        if cached is not None and time.monotonic() - cached[0] < STATS_SECONDS:
            return cached[1]
        fresh = self.catalog.stats()
        with self.lock:
            self._stats = (time.monotonic(), fresh)
        return fresh

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(name).render(**context), status_code=status)

    def problem(self, status: int, title: str, message: str) -> HTMLResponse:
        return self.page("problem.html", status, title=title, message=message)

    # ------------------------------------------------------------------ lookups shared by routes

    def hit(self, request: Request) -> Hit:
        """The record named by the URL (``/.../{rid}?at=...``), or a 404."""
        at = request.query_params.get("at", "")
        try:
            when = rows.parse_stamp(at)
        except InvalidArgumentError:
            raise HTTPException(404, "no such record") from None
        found = rows.record_hit(self.catalog, int(request.path_params["rid"]), when)
        if found is None:
            raise HTTPException(404, "no such record")
        return found

    def readable(self, hit: Hit) -> str | None:
        """Why the file of ``hit`` may not be read now, or ``None`` if it may."""
        try:
            files.allowed_path(hit.path, self.roots)
        except files.NotServed as exc:
            return str(exc)
        if hit.is_stale():
            return "the file was moved, deleted or rewritten since it was recorded"
        return None


def _runs_of(hits: Any) -> list[Any]:
    """One hit per run (file) of ``hits``, in their order: the links of a run's lineage."""
    seen: dict[str, Any] = {}
    for h in hits:
        seen.setdefault(str(h.path), h)
    return list(seen.values())


def _value_key(hit: Hit, port: str | None) -> str | None:
    if hit.node is None:
        if port is not None:
            raise HTTPException(404, "a plain save has no ports")
        return hit.key or None
    if port is None or port not in hit.outputs:
        raise HTTPException(404, "no such output")
    return join(*split(hit.key), "outputs", port)


def create_app(catalog: Catalog, roots: Sequence[str | Path] = ()) -> ASGIApp:
    """The read-only web application over ``catalog``; ``roots`` (directories) limit the files
    whose values and bytes are served (none: every recorded file)."""
    site = _Site(catalog, [Path(r) for r in roots])

    def runs(request: Request) -> Response:
        q = request.query_params
        try:
            filters = rows.Filters.from_query({k: q.getlist(k) for k in q})
            sort = q.get("sort") or "created"
            desc = q.get("order", "desc") != "asc"
            page_no = int(q.get("page") or 1) if (q.get("page") or "1").isdigit() else 0
            page = rows.runs_page(catalog, filters, sort=sort, desc=desc, page=page_no)
        except InvalidArgumentError as exc:
            return site.page("runs.html", 400, error=str(exc), page=None, filters=rows.Filters(), fq=[], sorts=[])
        fq = filters.query()
        sorts = []
        for name in rows.SORTS:
            order = "asc" if name == page.sort and page.desc else "desc"
            sorts.append((name, _url("/", [*fq, ("sort", name), ("order", order)]), name == page.sort))
        return site.page("runs.html", error=None, page=page, filters=filters, fq=fq, sorts=sorts)

    def run(request: Request) -> Response:
        at = request.query_params.get("at", "")
        try:
            when = rows.parse_stamp(at)
        except InvalidArgumentError:
            raise HTTPException(404, "no such run") from None
        hits = rows.run_hits(catalog, int(request.path_params["rid"]), when)
        if not hits:
            raise HTTPException(404, "no such run")
        first = hits[0]
        why = site.readable(first)
        environment: dict[str, Any] = {}
        size = None
        if why is None:
            try:
                environment = api.inspect(first.path, depth=0).environment
            except StorageError as exc:
                why = f"the file cannot be listed: {type(exc).__name__}"
            size = files.allowed_path(first.path, site.roots).stat().st_size if why is None else None
        run_id = min(h.record_id for h in hits)
        return site.page(
            "run.html", hits=hits, first=first, run_id=run_id, why=why, size=size, environment=environment,
            drawn=first.node is not None and why is None, fed_by=_runs_of(first.fed_by),
            fed=_runs_of(f for h in hits for f in h.fed),
        )  # fmt: skip

    def drawing(request: Request) -> Response:
        hit = site.hit(request)
        why = site.readable(hit)
        if why is not None or hit.node is None:
            raise HTTPException(404, why or "a plain save has no workflow")
        from ..graph.draw import draw_file

        st = hit.path.stat()
        key = (str(hit.path), st.st_mtime_ns, st.st_size)
        with site.lock:
            svg = site.drawings.get(key)
        if svg is None:
            try:
                svg = draw_file(hit.path).pipe(format="svg")
            except Exception as exc:  # graphviz missing, a recipe flowrep cannot draw: say so, no traceback
                log.warning("cannot draw %s: %s", hit.path, type(exc).__name__)
                raise HTTPException(404, "this workflow cannot be drawn") from None
            with site.lock:
                site.drawings[key] = svg
                while len(site.drawings) > _DRAWINGS:
                    site.drawings.popitem(last=False)
        return Response(svg, media_type="image/svg+xml")

    def value(request: Request) -> Response:
        hit = site.hit(request)
        port = request.query_params.get("port")
        key = _value_key(hit, port)
        why = site.readable(hit)
        listing = entry = None
        numbers: str | None = None
        plotted = False
        if why is None:
            try:
                listing = api.inspect(hit.path, key=key)
            except StorageError as exc:
                why = f"the entry cannot be listed: {type(exc).__name__}"
        if listing is not None:
            entry = listing.root
            safe = not refused_by_safe_load(entry) and listing.backend not in ("pickle", "cloudpickle")
            plotted = safe and plots.plottable(entry)
            if safe and (plotted or entry.type in ("int", "float", "bool", "complex")):
                numbers = _numbers(hit, key, entry)
        return site.page(
            "value.html", hit=hit, port=port, key=key, why=why,
            tree=listing_html(listing) if listing is not None else None, plotted=plotted, numbers=numbers,
            upstream=hit.upstream if hit.node is not None else [],
        )  # fmt: skip

    def plot(request: Request) -> Response:
        hit = site.hit(request)
        key = _value_key(hit, request.query_params.get("port"))
        if site.readable(hit) is not None:
            raise HTTPException(404, "the file may not be read")
        listing = api.inspect(hit.path, key=key, depth=0)
        if listing.backend in ("pickle", "cloudpickle") or not plots.plottable(listing.root):
            raise HTTPException(404, "not a plottable array")
        try:
            values = api.load(hit.path, key=key, safe=True, version_policy="ignore")
        except StorageError:
            raise HTTPException(404, "the value cannot be loaded safely") from None
        return Response(plots.array_svg(values, key or hit.path.name), media_type="image/svg+xml")

    def download(request: Request) -> Response:
        hit = site.hit(request)
        try:
            fd, size = files.open_recorded(hit, site.roots)
        except files.NotServed as exc:
            raise HTTPException(404, str(exc)) from None
        name = hit.path.name
        disposition = f"attachment; filename*=UTF-8''{urllib.parse.quote(name)}"
        return StreamingResponse(
            files.read_chunks(fd), media_type="application/octet-stream",
            headers={"content-disposition": disposition, "content-length": str(size)},
        )  # fmt: skip

    def stats(request: Request) -> Response:
        return site.page("stats.html", stats=site.stats())

    def chart(request: Request) -> Response:
        by = request.path_params["by"]
        s = site.stats()
        if by == "nodes":
            labels, counts = [n["node"] for n in s["nodes"]], [n["records"] for n in s["nodes"]]
            title = "records per node function"
        elif by == "users":
            labels, counts = [u["user"] for u in s["users"]], [u["files"] for u in s["users"]]
            title = "files per user"
        else:
            raise HTTPException(404, "no such chart")
        return Response(plots.bars_svg(labels[:40], counts[:40], title), media_type="image/svg+xml")

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        detail = getattr(exc, "detail", "not found")
        return site.problem(status, "Not found" if status == 404 else "Refused", str(detail))

    async def catalog_error(request: Request, exc: Exception) -> Response:
        return site.problem(503, "The catalog cannot answer", str(exc))  # CatalogError messages are redacted

    def favicon(request: Request) -> Response:
        return Response(status_code=204)

    routes = [
        Route("/", runs),
        Route("/favicon.ico", favicon),
        Route("/run/{rid:int}", run),
        Route("/run/{rid:int}/workflow.svg", drawing),
        Route("/value/{rid:int}", value),
        Route("/value/{rid:int}/plot.svg", plot),
        Route("/download/{rid:int}", download),
        Route("/stats", stats),
        Route("/stats/{by}.svg", chart),
    ]
    app = Starlette(
        routes=routes, exception_handlers={HTTPException: not_found, CatalogError: catalog_error}
    )  # fmt: skip
    return _Headers(app)


def _numbers(hit: Hit, key: str | None, entry: Any) -> str | None:
    """The value as text when it is a number or a small array, loaded with ``safe=True``; else ``None``."""
    size = 1
    for n in entry.shape or ():
        size *= n
    if size > SHOWN_VALUES:
        return None
    try:
        value = api.load(hit.path, key=key, safe=True, version_policy="ignore")
    except StorageError:
        return None
    import numpy as np

    if isinstance(value, np.ndarray):
        return np.array2string(value, threshold=SHOWN_VALUES, max_line_width=100)
    return repr(value)
