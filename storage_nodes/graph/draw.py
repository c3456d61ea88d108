"""A stored workflow as a picture: its recipe drawn by flowrep, with the stored port values.

Nothing is rebuilt or run: the recipe is parsed (pydantic, no imports of node code) and
drawn with flowrep's drawing model; each port shows its stored value where that is small
(a number, a short string, an array of a few elements) and a summary otherwise
(``ndarray (64, 3) float64``). :func:`draw_stored` draws a loaded
:class:`~.workflows.StoredWorkflow`; :func:`draw_file` draws a file without loading its
large values — it lists the file and reads only the small entries, with ``safe=True``.
Rendering needs the ``graphviz`` package and Graphviz's ``dot`` program.

>>> sn.load_workflow("relax_workflow.h5").draw()                # doctest: +SKIP
>>> write_drawing(draw_file("relax_workflow.h5"), "graph.svg")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import api
from ..errors import CorruptFileError, InvalidArgumentError, KeyNotFoundError, StorageError, UnsafeLoadError
from ..keys import escape
from .document import FORMAT, WORKFLOW_KEY, recipe_from_json

if TYPE_CHECKING:
    import graphviz

    from ..listing import Entry
    from .workflows import StoredWorkflow

__all__ = ["FORMATS", "VALUE_WIDTH", "draw_file", "draw_stored", "small_value", "write_drawing"]

#: the longest value text shown on a port (longer texts are cut with "…")
VALUE_WIDTH = 32
#: arrays with at most this many elements show their values
SMALL_ARRAY = 4
#: what :func:`write_drawing` writes, by suffix (``dot``/``gv``: the graphviz source text)
FORMATS = ("svg", "png", "pdf", "dot", "gv")

_SCALARS = (bool, int, float, complex, str, bytes, type(None))
_SCALAR_TYPES = frozenset({"bool", "int", "float", "complex", "str", "bytes", "NoneType"})

#: (node path segments, "inputs" | "outputs", port) -> the text to show, or None
Lookup = Callable[[tuple[str, ...], str, str], "str | None"]


def _cut(text: str, width: int = VALUE_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def small_value(value: Any, width: int = VALUE_WIDTH) -> str:
    """The text a port shows for ``value``: the value where it is small, a summary otherwise.

    >>> small_value(0.5), small_value("h5"), small_value(list(range(100)))
    ('0.5', "'h5'", 'list len=100')
    """
    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        text = repr(value)
        return text if len(text) <= 10 else f"{value:.6g}"
    if isinstance(value, _SCALARS):
        text = repr(value)
        if len(text) <= width:
            return text
        if isinstance(value, (str, bytes)):
            return _cut(f"{type(value).__name__} len={len(value)}: {text}", width)
        return _cut(text, width)
    if isinstance(value, np.ndarray):
        if value.size <= SMALL_ARRAY and value.dtype.kind in "biufc":
            return _cut(np.array2string(value, precision=4, separator=", "), width)
        return f"ndarray {tuple(value.shape)} {value.dtype}"
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        text = repr(value)
        if len(text) <= width and all(
            isinstance(v, _SCALARS) for v in (value.values() if isinstance(value, dict) else value)
        ):
            return text
        return f"{type(value).__name__} len={len(value)}"
    return _cut(type(value).__qualname__, width)


def _annotate(node: Any, lookup: Lookup, segments: tuple[str, ...]) -> Any:
    """A copy of flowrep's drawing node with a value badge on every port that has a stored value."""

    def port(p: Any, io: str) -> Any:
        if p.badge is not None:  # flow controls badge some ports themselves: keep theirs
            return p
        text = lookup(segments, io, p.label)
        return p if text is None else dataclasses.replace(p, badge="= " + text)

    children = tuple(_annotate(c, lookup, (*segments, c.path.rsplit("/", 1)[-1])) for c in node.children)
    return dataclasses.replace(
        node,
        inputs=tuple(port(p, "inputs") for p in node.inputs),
        outputs=tuple(port(p, "outputs") for p in node.outputs),
        children=children,
    )


def _draw(recipe: Any, label: str, lookup: Lookup, depth: int) -> graphviz.Digraph:
    if depth < 0:
        raise InvalidArgumentError(f"depth must be >= 0, got {depth}")
    try:
        from flowrep.drawing import prospective, render
    except ImportError as exc:  # flowrep's message names the pip and conda routes
        raise StorageError(f"drawing a workflow needs the graphviz package: {exc}") from None
    graph = _annotate(prospective.build(recipe, depth=depth), lookup, ())
    return render.render(dataclasses.replace(graph, label=label))


def _key(segments: tuple[str, ...], io: str, port: str) -> str:
    """The stored document's key of a port: ``a/nodes/b/inputs/x`` (the root: ``inputs/x``)."""
    parts: list[str] = []
    for i, s in enumerate(segments):
        parts.extend(["nodes", s] if i else [s])
    return "/".join(escape(p) for p in (*parts, io, port))


def draw_stored(stored: StoredWorkflow, depth: int = 1) -> graphviz.Digraph:
    """Draw ``stored``'s recipe with its port values (``depth``: nested levels expanded)."""

    def lookup(segments: tuple[str, ...], io: str, port: str) -> str | None:
        record: Any = {"inputs": stored.inputs, "outputs": stored.outputs}
        for i, s in enumerate(segments):
            record = (stored.nodes if i == 0 else record.get("nodes", {})).get(s)
            if not isinstance(record, dict):
                return None
        ports = record.get(io)
        if not isinstance(ports, dict) or port not in ports:
            return None
        return small_value(ports[port])

    return _draw(stored.recipe, stored.label, lookup, depth)


def _entry_text(entry: Entry, load: Callable[[], Any]) -> str:
    """A port's text from its listing entry (a shared reference: the entry it shares);
    only small entries are read (``load``)."""
    small_array = entry.shape is not None and entry.type == "ndarray" and _size(entry.shape) <= SMALL_ARRAY
    if entry.type in _SCALAR_TYPES or small_array:
        try:
            return small_value(load())
        except UnsafeLoadError:
            pass
    if entry.type == "ndarray" and entry.shape is not None:
        return f"ndarray {tuple(entry.shape)} {entry.dtype}"
    name = entry.type if entry.length is None else f"{entry.type} len={entry.length}"
    return _cut(name)


def _size(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def draw_file(path: str | os.PathLike[str], depth: int = 1, *, backend: str | None = None) -> graphviz.Digraph:
    """Draw the workflow stored in ``path`` without loading it: the recipe and the small
    values are read with ``safe=True``, everything else is described from ``inspect``."""
    p = Path(path).expanduser()
    try:
        header = api.load(p, backend, key=WORKFLOW_KEY, safe=True, version_policy="ignore")
    except KeyNotFoundError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT or not isinstance(header.get("recipe"), str):
        raise CorruptFileError(
            f"{p} does not hold a stored workflow (no {WORKFLOW_KEY!r} entry of format {FORMAT!r}): draw files "
            f"written by save_workflow; list this one with `storage-nodes inspect {p}`",
            path=p,
        )
    entries = {e.path: e for e in api.inspect(p).root.walk()}

    def lookup(segments: tuple[str, ...], io: str, port: str) -> str | None:
        key = _key(segments, io, port)
        entry = entries.get(key)
        if entry is not None and entry.info.get("shared_with") in entries:  # stored once, at its first place
            entry = entries[entry.info["shared_with"]]
        if entry is None:
            return None
        return _entry_text(entry, lambda: api.load(p, backend, key=key, safe=True, version_policy="ignore"))

    return _draw(recipe_from_json(header["recipe"]), str(header.get("label", "workflow")), lookup, depth)


def write_drawing(digraph: graphviz.Digraph, output: str | os.PathLike[str]) -> Path:
    """Write ``digraph`` to ``output``, the format from its suffix (:data:`FORMATS`)."""
    out = Path(output).expanduser()
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise InvalidArgumentError(
            f"cannot write a drawing as {out.name!r}: give a file ending in .svg, .png, .pdf or .dot"
        )
    if fmt in ("dot", "gv"):
        data = digraph.source.encode()
    else:
        import graphviz

        try:
            data = digraph.pipe(format=fmt)
        except graphviz.ExecutableNotFound:
            raise StorageError(
                "drawing needs Graphviz's `dot` program: install Graphviz (Debian: apt-get install graphviz; "
                "conda: conda install -c conda-forge graphviz)"
            ) from None
    from ..atomic import atomic_path

    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    return out
