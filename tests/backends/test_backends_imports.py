"""No import circles among the backends' modules, counting every import (also those inside
functions and under ``TYPE_CHECKING``): a lazy import of a module that imports you back is a
circle too."""

from __future__ import annotations

import ast
from pathlib import Path

import storage_nodes

BACKENDS = Path(storage_nodes.__file__).parent / "backends"


def _module(path: Path) -> str:
    parts = list(path.relative_to(BACKENDS.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The backends modules ``path`` imports (``from . import x``: the module x if it is one)."""
    package = _module(path).split(".") if path.name == "__init__.py" else _module(path).split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
            for alias in node.names:
                candidate = [*base, alias.name]
                where = BACKENDS.parent.joinpath(*candidate)
                is_module = where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()
                found.add(".".join(candidate if is_module else base))
        elif isinstance(node, ast.Import | ast.ImportFrom) and not getattr(node, "level", 0):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found.update(n.removeprefix("storage_nodes.") for n in names if n.startswith("storage_nodes.backends"))
    return {m for m in found if m.startswith("backends")}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each import circle once, as the modules along it."""
    circles, done = [], set()

    def visit(module: str, trail: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in trail:
                circle = trail[trail.index(target) :]
                if frozenset(circle) not in done:
                    done.add(frozenset(circle))
                    circles.append(circle)
            elif target != module:
                visit(target, [*trail, target])

    for module in sorted(graph):
        visit(module, [module])
    return circles


def test_backends_import_no_circle():
    graph = {_module(p): _imports(p) - {_module(p)} for p in BACKENDS.rglob("*.py")}
    assert "backends.h5.edits" in graph["backends.h5.update"]  # the reader sees imports
    assert not _circles(graph), _circles(graph)


def test_the_circle_check_sees_a_lazy_import_back():
    graph = {"a": {"b"}, "b": set()}
    assert not _circles(graph)
    graph["b"] = {"a"}  # e.g. `from . import a` inside a function of b
    assert _circles(graph) == [["a", "b"]]
