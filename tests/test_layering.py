"""The package's layers, enforced: a module imports only its own layer and the ones below.

The picture is drawn in ``docs/architecture.md``; this test keeps it true. Every import
counts, also those inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "storage_nodes"

# (layer number, module-name prefixes); a module belongs to the first layer whose prefix matches
LAYERS: list[tuple[int, str, tuple[str, ...]]] = [
    (
        0,
        "base",
        (
            "errors", "keys", "atomic", "listing", "_listing_html", "describe",
            "_validation", "_version", "_cliformat", "_secrets", "_mounts", "_reclaim", "shapes", "_listing_text",
            "locks",
        ),
    ),
    (1, "provenance", ("provenance",)),
    (2, "backends", ("backends",)),
    (3, "api", ("registry", "api", "archive", "writable")),
    (4, "subsystems", ("graph", "collections")),
    (5, "catalog and cache", ("catalog", "caching")),
    (6, "web page", ("web",)),
    (7, "entry points", ("nodes", "collection_nodes", "demo", "cli", "__init__", "__main__")),
]


def _layer(module: str) -> tuple[int, str, str]:
    """(layer, layer name, top-level part) of ``storage_nodes.<module>``."""
    head = module.split(".")[0] if module else "__init__"
    for level, name, prefixes in LAYERS:
        if head in prefixes:
            return level, name, head
    raise AssertionError(f"storage_nodes.{module} is in no layer of tests/test_layering.py: add it there")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = list(rel.parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path, *, runtime_only: bool = False) -> set[str]:
    """The storage_nodes modules ``module`` imports (names relative to the package);
    ``runtime_only``: not those under ``if TYPE_CHECKING:`` (they never run)."""
    tree = ast.parse(path.read_text(), str(path))
    skip: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip.update(id(n) for child in node.body for n in ast.walk(child))
    parts = module.split(".") if module else []
    package = parts if path.name == "__init__.py" else parts[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("storage_nodes."):
                    out.add(alias.name.removeprefix("storage_nodes."))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module != "storage_nodes" and not (node.module or "").startswith("storage_nodes."):
                    continue
                base = (node.module or "").split(".")[1:]
            else:
                base = package[: len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            prefix = ".".join(base)
            for alias in node.names:
                candidate = f"{prefix}.{alias.name}" if prefix else alias.name
                # ``from . import api`` imports a module; ``from .errors import X`` a name of one
                out.add(candidate if _is_module(candidate) else prefix)
    return out


def _is_module(name: str) -> bool:
    where = PACKAGE.joinpath(*name.split("."))
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def _violations() -> list[str]:
    bad = []
    for module, path in _modules().items():
        level, name, head = _layer(module)
        for target in sorted(_imports(module, path)):
            t_level, t_name, t_head = _layer(target)
            where = f"storage_nodes.{module or '__init__'} imports storage_nodes.{target}"
            if t_level > level:
                bad.append(f"{where}: layer {name!r} ({level}) must not import layer {t_name!r} ({t_level})")
            elif t_level == level and head != t_head and level in (1, 2, 4, 5):
                bad.append(f"{where}: {head}/ and {t_head}/ are peers and stay independent")
            elif head == "backends" == t_head and module.split(".")[1:2] != target.split(".")[1:2]:
                shared = target.split(".")[1] if "." in target else ""
                if shared not in ("base", "_framed", "_dtype", "safetypes", ""):
                    bad.append(
                        f"{where}: a backend never imports another backend (share via base/_framed/_dtype/safetypes)"
                    )
    return bad


def test_every_module_is_in_a_layer():
    for module in _modules():
        _layer(module)


def test_no_module_imports_a_layer_above_it():
    bad = _violations()
    assert not bad, "layering broken (see docs/architecture.md):\n  " + "\n  ".join(bad)


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    """The rule is live: a core module importing the pyiron_workflow layer is reported."""
    assert "graph.workflows" in _imports("api", _fake(tmp_path, "from .graph import workflows\n"))
    assert _layer("api")[0] < _layer("graph.workflows")[0]
    assert "provenance.versioning" in _imports("api", _fake(tmp_path, "from .provenance.versioning import x\n"))
    assert "api" in _imports("provenance.versioning", _fake(tmp_path, "from ..api import environment\n"))


def _fake(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "mod.py"
    path.write_text(source)
    return path
