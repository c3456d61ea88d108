"""No import circles among storage_nodes' modules, also through imports inside functions.

A lazy import of a module that imports you back is still a circle (the shared piece
belongs in a module below both). Imports under ``if TYPE_CHECKING:`` are for the type
checker only and never run, so they are not edges here (``tests/test_layering.py``
still holds them to the layers).
"""

from __future__ import annotations

from pathlib import Path

from test_layering import _imports, _modules


def _runtime_imports(module: str, path: Path) -> set[str]:
    """The storage_nodes modules ``module`` imports when it runs (any scope, not TYPE_CHECKING)."""
    return _imports(module, path, runtime_only=True) - {module}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    # a package's __init__ importing its own submodules is how packages work; the submodule
    # importing a name from the package __init__ back is a circle like any other
    return {m: _runtime_imports(m, p) for m, p in modules.items()}


def test_no_import_circles():
    circles = _cycles(_graph())
    pretty = ["  " + " <-> ".join(c) for c in circles]
    assert not circles, "import circles (move the shared piece into a module below both):\n" + "\n".join(pretty)


def test_the_checker_sees_a_circle_through_a_function_level_import(tmp_path):
    a = tmp_path / "a.py"
    a.write_text("def f():\n    from .listing import Entry\n")
    assert "listing" in _runtime_imports("api", a)
    guarded = tmp_path / "b.py"
    guarded.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .listing import Entry\n")
    assert "listing" not in _runtime_imports("api", guarded)
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
