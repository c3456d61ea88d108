"""No import circles among storage_nodes modules, counting every import: at the top, inside a
function (a lazy import of a module that imports you back is still a circle) and under
``TYPE_CHECKING``.

Read from the source with :mod:`ast`, so a circle is found whether or not a test happens to
import the modules in the order that breaks. The fix for a circle is to move the shared
piece down into a module both can import (DEVELOPERS.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "storage_nodes"

#: circles that were there when this check came (issue 23 removes them): each must go, none may
#: be added. Remove an entry once its circle is gone (the test says so).
KNOWN = [
    ["_listing_html", "listing"],
    ["backends.h5", "backends.h5.update"],
    ["graph.draw", "graph.workflows"],
]


def _modules(package: Path) -> dict[str, Path]:
    """Dotted name (relative to the package, ``""`` for its ``__init__``) -> file."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path, known: set[str], top: str = "storage_nodes") -> set[str]:
    """The package's modules that ``module`` imports anywhere in its source."""
    tree = ast.parse(path.read_text(), str(path))
    parts = module.split(".") if module else []
    package = parts if path.name == "__init__.py" else parts[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == top or alias.name.startswith(top + "."):
                    out.add(alias.name.removeprefix(top).removeprefix("."))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                name = node.module or ""
                if name != top and not name.startswith(top + "."):
                    continue
                base = name.split(".")[1:]
            else:
                base = package[: len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            prefix = ".".join(base)
            for alias in node.names:
                candidate = f"{prefix}.{alias.name}" if prefix else alias.name
                # ``from . import api`` imports a module; ``from .errors import X`` a name of one
                out.add(candidate if candidate in known else prefix)
    out.discard(module)
    return {m for m in out if m in known}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:  # iterative: the package's import chains are deep
        nonlocal counter
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def _graph(package: Path, top: str = "storage_nodes") -> dict[str, set[str]]:
    modules = _modules(package)
    return {m: _imports(m, p, set(modules), top) for m, p in modules.items()}


def test_no_import_circles_among_storage_nodes_modules():
    graph = _graph(PACKAGE)
    circles = _cycles(graph)
    new = [c for c in circles if c not in KNOWN]
    said = [
        " <-> ".join(f"storage_nodes.{m or '__init__'}" for m in c)
        + ": "
        + "; ".join(f"{m or '__init__'} imports {', '.join(sorted(graph[m] & set(c)))}" for m in c)
        for c in new
    ]
    assert not new, "import circles (move the shared piece down):\n  " + "\n  ".join(said)
    gone = [c for c in KNOWN if c not in circles]
    assert not gone, f"these circles are gone: remove them from KNOWN in {Path(__file__).name}: {gone}"


def test_the_catalog_has_no_import_circle():
    assert [c for c in _cycles(_graph(PACKAGE)) if any(m.startswith("catalog") for m in c)] == []


def test_the_checker_sees_a_circle_through_a_function_level_import(tmp_path):
    """The rule is live: a package whose two modules import each other, one of them only inside
    a function, and a third that is not part of it."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..a import x\n    return x\n")
    (pkg / "c.py").write_text("from . import a\nfrom .sub.b import f\n")
    graph = _graph(pkg, top="pkg")
    assert graph["a"] == {"sub.b"} and graph["sub.b"] == {"a"} and graph["c"] == {"a", "sub.b"}
    assert _cycles(graph) == [["a", "sub.b"]]
    (pkg / "sub" / "b.py").write_text("def f():\n    return 1\n")
    assert _cycles(_graph(pkg, top="pkg")) == []
