"""A :class:`~storage_nodes.listing.Listing` as a collapsible HTML tree (Jupyter's ``_repr_html_``).

Plain HTML and one ``<style>`` block: ``<details>``/``<summary>`` open and close the
levels, so no JavaScript (and no trusted notebook) is needed. Every text that comes from a
file — keys, types, metadata, environment — is escaped, so a key such as
``<script>`` shows as text. Long runs of siblings with the same shape of content are
summarised in one line, and at most :data:`MAX_HTML_ENTRIES` entries are written, so a
huge listing gives a bounded page.
"""

from __future__ import annotations

import html
import json
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from ._listing_text import human_size, module_summary
from .shapes import RUN_THRESHOLD, runs

if TYPE_CHECKING:
    from .listing import Entry, Listing

__all__ = ["MAX_HTML_ENTRIES", "RUN_SHOWN", "RUN_THRESHOLD", "entry_html", "listing_html"]

#: entries written at most; the rest are counted in a closing line
MAX_HTML_ENTRIES = 20_000
#: how many entries of a summarised run are shown (the first ones; the last one is shown too)
RUN_SHOWN = 3

_CSS = """<style>
.sn-listing{font-family:var(--jp-code-font-family,monospace);font-size:12px;line-height:1.45}
.sn-listing .sn-head{margin-bottom:4px}
.sn-listing .sn-head td{padding:0 8px 0 0;vertical-align:top;text-align:left}
.sn-listing ul{list-style:none;margin:0;padding-left:1.4em}
.sn-listing summary{cursor:pointer}
.sn-listing .sn-key{font-weight:bold}
.sn-listing .sn-type{color:#05a}
.sn-listing .sn-dim{color:#777}
.sn-listing .sn-mark{color:#fff;background:#b50;border-radius:3px;padding:0 3px;margin-left:4px}
.sn-listing .sn-run{color:#777;font-style:italic}
</style>"""

_SAFE_MODULES = frozenset({None, "builtins", "numpy"})


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def refused_by_safe_load(entry: Entry) -> bool:
    """Whether a ``safe=True`` load of an h5/json file refuses this entry: an opaque blob, or
    an object rebuilt by importing its recorded module (a custom class, a class or function
    stored by reference); not a value of a safe type (a DataFrame, an Atoms ...)."""
    if entry.opaque or "class" in entry.info or "reference" in entry.info:
        return True
    if entry.info.get("safe_type"):  # an h5 ``n`` node: rebuilt by its safe type's fixed constructor
        return False
    return entry.module not in _SAFE_MODULES


def _marks(entry: Entry, backend: str) -> str:
    marks = []
    if entry.opaque:
        marks.append(("opaque", "stored as a cloudpickle blob: loads only with safe=False"))
    elif refused_by_safe_load(entry) and backend not in ("pickle", "cloudpickle"):
        marks.append(("refused if safe", f"a safe=True load refuses it: it imports {entry.module}"))
    if entry.type == "missing":
        marks.append(("missing", str(entry.info.get("error", "the member's file is missing"))))
    return "".join(f'<span class="sn-mark" title="{_e(tip)}">{_e(text)}</span>' for text, tip in marks)


def _facts(entry: Entry) -> str:
    """Type, shape, dtype, length, size: the columns of one line."""
    kind = entry.type if not entry.module else f"{entry.type} ({entry.module})"
    parts = [f'<span class="sn-type">{_e(kind)}</span>']
    dim = []
    if entry.shape is not None:
        dim.append("shape=" + _e(tuple(entry.shape)))
    if entry.dtype is not None:
        dim.append("dtype=" + _e(entry.dtype))
    if entry.length is not None and entry.shape is None:
        dim.append(f"len={entry.length}")
    if entry.size is not None:
        dim.append(_e(human_size(entry.size)))
    if entry.info.get("shared_with"):
        dim.append("the object at " + _e(entry.info["shared_with"]))
    run = entry.info.get("run")
    if isinstance(run, dict):  # a run of a summarised listing (to_dict(full=False))
        dim.append(f"x {_e(run.get('count'))} ({_e(run.get('first'))} … {_e(run.get('last'))})")
    for field in ("class", "reference", "location", "backend"):
        if entry.info.get(field) is not None:
            dim.append(f"{field}={_e(entry.info[field])}")
    if dim:
        parts.append(f'<span class="sn-dim">{", ".join(dim)}</span>')
    return " ".join(parts)


class _Writer:
    def __init__(self, backend: str, limit: int) -> None:
        self.backend = backend
        self.left = limit
        self.skipped = 0
        self.memo: dict[int, Hashable] = {}
        self.out: list[str] = []

    def line(self, entry: Entry) -> str:
        name = entry.name or entry.path or "/"
        return (
            f'<span class="sn-key" title="{_e(entry.path or "/")}">{_e(name)}</span>: '
            f"{_facts(entry)}{_marks(entry, self.backend)}"
        )

    def entry(self, entry: Entry, open_: bool = False) -> None:
        if self.left <= 0:
            self.skipped += sum(1 for _ in entry.walk())
            return
        self.left -= 1
        out = self.out
        if not entry.children and not entry.truncated:
            out.append(f"<li>{self.line(entry)}</li>")
            return
        out.append(f"<li><details{' open' if open_ else ''}><summary>{self.line(entry)}</summary><ul>")
        self.children(entry)
        out.append("</ul></details></li>")

    def children(self, entry: Entry) -> None:
        items = entry.children
        for i, j in runs(items, self.memo):
            if j - i >= RUN_THRESHOLD:
                self.run(items[i:j])
            else:
                for c in items[i:j]:
                    self.entry(c)
        if entry.truncated:
            self.out.append(f'<li class="sn-run">… {entry.truncated:,} more not listed</li>')

    def run(self, run: list[Entry]) -> None:
        for c in run[:RUN_SHOWN]:
            self.entry(c)
        hidden = run[RUN_SHOWN:-1]
        sizes = [c.size for c in hidden if c.size is not None]
        total = f", {_e(human_size(sum(sizes)))} in all" if sizes else ""
        first, last = hidden[0], hidden[-1]
        self.out.append(
            f'<li class="sn-run">… {len(hidden):,} more like {_e(run[0].name)} '
            f"({_e(first.name)} … {_e(last.name)}{total})</li>"
        )
        self.entry(run[-1])


def _header(listing: Listing) -> str:
    rows: list[tuple[str, str]] = []
    where = f", key {listing.key!r}" if listing.key else ""
    rows.append(("file", f"{_e(listing.path)} [{_e(listing.backend)}{_e(where)}, format {_e(listing.format_version)}]"))
    if listing.backend in ("pickle", "cloudpickle"):
        rows.append(("safe load", "refused: this backend unpickles, which can run code"))
    if listing.metadata:
        rows.append(("metadata", _e(json.dumps(listing.metadata, default=str, sort_keys=True))))
    env = listing.environment
    if env:
        py = env.get("python")
        version = py.get("version", "?") if isinstance(py, dict) else "?"
        rows.append(
            (
                "saved",
                f"{_e(env.get('timestamp', '?'))} with storage_nodes {_e(env.get('storage_nodes', '?'))}, "
                f"Python {_e(version)}",
            )
        )
        mods = env.get("modules") or {}
        if isinstance(mods, dict) and mods:
            rows.append(("modules", _e(", ".join(module_summary(n, r) for n, r in sorted(mods.items())))))
    for name, value in sorted(listing.info.items()):
        if value not in (None, [], {}):
            rows.append((_e(name), _e(value if isinstance(value, str) else json.dumps(value, default=str))))
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="sn-head">{body}</table>'


def entry_html(entry: Entry, backend: str = "", *, limit: int = MAX_HTML_ENTRIES, style: bool = False) -> str:
    """The subtree of ``entry`` as HTML (the root level open, deeper levels closed);
    ``style=True`` wraps it with the stylesheet, as Jupyter shows an :class:`Entry`."""
    w = _Writer(backend, limit)
    w.out.append('<ul class="sn-tree" style="padding-left:0">')
    w.entry(entry, open_=True)
    w.out.append("</ul>")
    if w.skipped:
        w.out.append(
            f'<div class="sn-run">… {w.skipped:,} more entries not shown (limit {limit:,}); '
            "look inside with listing[key] or inspect(path, key=...)</div>"
        )
    tree = "".join(w.out)
    return f'{_CSS}<div class="sn-listing">{tree}</div>' if style else tree


def listing_html(listing: Listing, *, limit: int = MAX_HTML_ENTRIES) -> str:
    """The whole listing as HTML: a header (file, metadata, environment) and the entry tree."""
    tree = entry_html(listing.root, listing.backend, limit=limit)
    return f'{_CSS}<div class="sn-listing">{_header(listing)}{tree}</div>'
