"""Edits of a stored recipe before it is rebuilt: set any child's input, redirect SaveNodes.

A recipe here is the parsed flowrep JSON (plain dicts). A workflow recipe lists its
children under ``nodes``; an edge ``"child.port": "source.port"`` in ``edges`` or
``"child.port": "<own input>"`` in ``input_edges`` feeds each input. Setting an input
replaces whatever fed it by a new ``constant`` node (a constant left feeding nothing is
removed), which is what ``wf.child.inputs.port = value`` does on a live workflow, at any
depth of nested workflows (macros).

:func:`redirect_saves` keeps a rerun away from the files the first run wrote: a
``SaveNode`` whose ``path`` (a ``CollectNode`` whose ``manifest``) is a relative constant
or a relative input of the top workflow, at any depth, is re-rooted into the rerun's
directory; one whose file is absolute and exists is refused (unless ``overwrite``); a
SaveNode whose path is computed while running gets ``overwrite=False``, so an existing
file is refused by the save itself.

Both reach into the bodies of flow controls (``for_each``, ``if``, ``while``, ``try``):
their labelled sub-recipes (``body``, ``condition_0``, ``else_body``, ``try_body``...)
count as children, so ``"for_each_0.body.SaveNode_0.path"`` names an input inside a loop
body. A body's own inputs are fed by the flow control's inputs (``input_edges`` only, no
constants live there), so a path comes down from the enclosing workflow: one path, or,
when a for-each iterates over it, a list of paths, each re-rooted.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import FileExistsStorageError, InvalidArgumentError, KeyNotFoundError
from ..keys import suggest

__all__ = ["SAVE_NODE", "Redirect", "input_paths", "node_functions", "redirect_saves", "set_input"]

#: how a recipe names storage_nodes' SaveNode (module, qualname)
SAVE_NODE = ("storage_nodes.nodes", "SaveNode")
#: the nodes that write files, and the input naming the file each writes
WRITERS = {SAVE_NODE: "path", ("storage_nodes.collection_nodes", "CollectNode"): "manifest"}


#: flowrep's flow-control kinds (the recipe's ``type``)
FLOW_CONTROLS = ("for_each", "if", "while", "try")


def _is_workflow(recipe: Any) -> bool:
    return isinstance(recipe, dict) and recipe.get("type") == "workflow" and isinstance(recipe.get("nodes"), dict)


def _is_flow_control(recipe: Any) -> bool:
    return isinstance(recipe, dict) and recipe.get("type") in FLOW_CONTROLS


def _is_container(recipe: Any) -> bool:
    return _is_workflow(recipe) or _is_flow_control(recipe)


def _labelled(recipe: dict[str, Any]) -> list[Any]:
    """The ``{"label", "recipe"}`` entries a flow control holds (bodies, conditions, except bodies)."""
    kind = recipe.get("type")
    if kind == "for_each":
        return [recipe.get("body_node")]
    if kind == "if":
        cases = [part for case in recipe.get("cases") or [] for part in (case.get("condition"), case.get("body"))]
        return [*cases, recipe.get("else_case")]
    if kind == "while":
        case = recipe.get("case") or {}
        return [case.get("condition"), case.get("body")]
    if kind == "try":
        return [recipe.get("try_node"), *(case.get("body") for case in recipe.get("exception_cases") or [])]
    return []


def _nodes(recipe: dict[str, Any]) -> dict[str, Any]:
    """``{label: sub-recipe}`` of a workflow (its ``nodes``) or of a flow control (its labelled parts)."""
    if _is_workflow(recipe):
        return recipe["nodes"]
    return {
        part["label"]: part["recipe"]
        for part in _labelled(recipe)
        if isinstance(part, dict) and isinstance(part.get("label"), str) and isinstance(part.get("recipe"), dict)
    }


def _children(recipe: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for label, child in _nodes(recipe).items():
        if isinstance(child, dict) and child.get("type") != "constant":
            yield label, child


#: recipe fields that never hold a node (skipped when looking for node functions)
_NO_NODES = frozenset(
    {"reference", "inputs", "outputs", "edges", "input_edges", "output_edges", "constant", "inputs_with_defaults"}
)


def node_functions(recipe: Any, prefix: str = "") -> dict[tuple[str, str], list[str]]:
    """``{(module, qualname): [dotted node paths using it]}`` for every function the recipe names.

    >>> r = {"type": "workflow", "nodes": {"md": {"type": "atomic",
    ...      "reference": {"info": {"module": "__main__", "qualname": "md_run"}}}}}
    >>> node_functions(r)
    {('__main__', 'md_run'): ['md']}
    """
    found: dict[tuple[str, str], list[str]] = {}
    stack: list[tuple[Any, str]] = [(recipe, prefix)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            if item.get("type") == "constant":
                continue
            reference = item.get("reference")
            info = reference.get("info") if isinstance(reference, dict) else None
            if isinstance(info, dict) and isinstance(info.get("module"), str) and isinstance(info.get("qualname"), str):
                found.setdefault((info["module"], info["qualname"]), []).append(where.rstrip(".") or "(the node)")
            for key, value in item.items():
                if key == "nodes" and isinstance(value, dict):
                    stack.extend((child, f"{where}{label}.") for label, child in value.items())
                elif isinstance(value, dict | list) and key not in _NO_NODES:
                    stack.append((value, where))
        elif isinstance(item, list):
            stack.extend((v, where) for v in item if isinstance(v, dict | list))
    return {k: sorted(set(v)) for k, v in found.items()}


def input_paths(recipe: dict[str, Any], prefix: str = "") -> list[str]:
    """Every ``"child.port"`` (``"macro.child.port"`` for nested workflows, ``"for_each_0.body.child.port"``
    inside a flow control's body) a rerun can set; a flow control's parts' own inputs are not listed
    (their flow control's inputs feed them).

    >>> input_paths({"type": "workflow", "nodes": {"md": {"type": "atomic", "inputs": ["T"]}}})
    ['md.T']
    """
    found: list[str] = []
    if not _is_container(recipe):
        return found
    for label, child in _children(recipe):
        if _is_workflow(recipe):
            found.extend(f"{prefix}{label}.{port}" for port in child.get("inputs") or [])
        found.extend(input_paths(child, f"{prefix}{label}."))
    return found


def _container_of(recipe: dict[str, Any], dotted: str) -> tuple[dict[str, Any], str, str]:
    """(the workflow recipe holding the child, the child's label, the port) of ``"a.b.port"``."""
    *labels, port = dotted.split(".")
    container = recipe
    for depth, label in enumerate(labels):
        child = _nodes(container).get(label) if _is_container(container) else None
        if child is None or child.get("type") == "constant":
            raise KeyError(dotted)
        if depth == len(labels) - 1:
            if port not in (child.get("inputs") or []):
                raise KeyError(dotted)
            return container, label, port
        container = child
    raise KeyError(dotted)


def _unknown(recipe: dict[str, Any], dotted: str, label: str) -> KeyNotFoundError:
    valid = input_paths(recipe)
    hint = suggest(dotted, valid)
    listing = ", ".join(valid) if len(valid) <= 40 else ", ".join(valid[:40]) + f", ... ({len(valid)} in all)"
    return KeyNotFoundError(f"{label} has no input {dotted!r}{hint}; the inputs a rerun can set: {listing}", key=dotted)


def _new_label(container: dict[str, Any], base: str) -> str:
    label, n = base, 0
    while label in container["nodes"]:
        n += 1
        label = f"{base}_{n}"
    return label


def _source_of(container: dict[str, Any], target: str) -> tuple[str, str] | None:
    """("edge", "node.port") or ("input", "<own input>") feeding ``target`` ("child.port")."""
    edges = container.get("edges") or {}
    if target in edges:
        return "edge", edges[target]
    inputs = container.get("input_edges") or {}
    if target in inputs:
        return "input", inputs[target]
    return None


def _constant_feeding(container: dict[str, Any], target: str) -> tuple[str, Any] | None:
    """(constant node label, its value) when a constant feeds ``target``."""
    source = _source_of(container, target)
    if source is None or source[0] != "edge":
        return None
    node = source[1].split(".", 1)[0]
    child = container["nodes"].get(node)
    if isinstance(child, dict) and child.get("type") == "constant":
        return node, child.get("constant")
    return None


def _put_constant(container: dict[str, Any], label: str, port: str, value: Any) -> None:
    target = f"{label}.{port}"
    old = _source_of(container, target)
    for table in ("edges", "input_edges"):
        (container.get(table) or {}).pop(target, None)
    if old is not None and old[0] == "edge":  # a constant left feeding nothing goes with its edge
        node = old[1].split(".", 1)[0]
        child = container["nodes"].get(node)
        still_used = any(str(s).split(".", 1)[0] == node for s in (container.get("edges") or {}).values())
        if isinstance(child, dict) and child.get("type") == "constant" and not still_used:
            del container["nodes"][node]
    constant = _new_label(container, f"{label}_{port}_rerun")
    container["nodes"][constant] = {
        "type": "constant",
        "inputs": [],
        "outputs": ["constant"],
        "description": None,
        "constant": value,
    }
    container.setdefault("edges", {})[target] = f"{constant}.constant"


def set_input(recipe: dict[str, Any], dotted: str, value: Any, *, label: str = "the workflow") -> None:
    """Feed the input ``dotted`` (``"md_2.T"``, ``"macro.child.T"``) the constant ``value``, in place.

    Raises :class:`KeyNotFoundError` for an unknown path (listing the valid ones), :class:`InvalidArgumentError` for a
    value pyiron_workflow cannot hold as a constant (not JSON-able).

    >>> r = {"type": "workflow", "nodes": {"md": {"type": "atomic", "inputs": ["T"]}}, "edges": {}}
    >>> set_input(r, "md.T", 1200.0); r["edges"]
    {'md.T': 'md_T_rerun.constant'}
    """
    try:
        container, child, port = _container_of(recipe, dotted)
    except KeyError:
        raise _unknown(recipe, dotted, label) from None
    if not _is_workflow(container):
        own = (container.get("input_edges") or {}).get(f"{child}.{port}")
        outer = dotted.rsplit(".", 2)[0]
        instead = f"set {f'{outer}.{own}'!r} instead" if own else "nothing feeds it"
        raise InvalidArgumentError(
            f"rerun input {dotted!r} of {label}: {child!r} is part of the {container.get('type')} flow control "
            f"{outer!r}, whose parts take their inputs only from the flow control's own inputs (there is no "
            f"place for a constant there); {instead}, or set an input of a node inside {child!r}"
        )
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"rerun input {dotted!r}: a {type(value).__name__} cannot be set here; pyiron_workflow holds a "
            "child's input as a constant, which must be JSON-able (numbers, strings, lists, dicts)"
        ) from None
    _put_constant(container, child, port, value)


@dataclasses.dataclass
class Redirect:
    """What :func:`redirect_saves` changed: re-rooted paths and inputs set to ``overwrite=False``."""

    moved: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)  # (node, old path, new path)
    guarded: list[str] = dataclasses.field(default_factory=list)  # nodes whose path is computed while running
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)  # workflow inputs re-rooted (a path or paths)


def _written_port(child: dict[str, Any]) -> str | None:
    """The input naming the file a writing node (SaveNode, CollectNode) writes; None for other nodes."""
    info = (child.get("reference") or {}).get("info") or {}
    return WRITERS.get((str(info.get("module")), str(info.get("qualname"))))


Chain = list[tuple[dict[str, Any], str]]


def _save_nodes(recipe: dict[str, Any], chain: Chain | None = None) -> Iterator[Chain]:
    """Each SaveNode as its chain ``[(workflow or flow control, child label), ...]`` from the top down to it."""
    if not _is_container(recipe):
        return
    for label, child in list(_children(recipe)):
        here = [*(chain or []), (recipe, label)]
        if _written_port(child):
            yield here
        yield from _save_nodes(child, here)


def _feeding(chain: Chain, port: str) -> tuple[str, Any, Any, bool]:
    """What feeds ``port`` of the last node of ``chain``, followed up through the workflows' and
    flow controls' own inputs: ``("constant", workflow, constant label, carried)``, ``("input",
    name, None, carried)`` for an input of the top node, or ``("computed", None, None, False)``.
    ``carried``: a while loop carries the value on, so later passes compute it."""
    level = len(chain) - 1
    container, label = chain[level]
    target = f"{label}.{port}"
    carried = False
    while True:
        source = _source_of(container, target)
        if source is None:
            return "computed", None, None, False
        if source[0] == "edge":
            constant = _constant_feeding(container, target)
            if constant is None:
                return "computed", None, None, False
            return "constant", container, constant[0], carried
        if container.get("type") == "while" and _carried_elsewhere(chain, level, source[1], port):
            carried = True
        if level == 0:
            return "input", source[1], None, carried
        level -= 1
        container, label = chain[level]
        target = f"{label}.{source[1]}"


def _carried_elsewhere(chain: Chain, level: int, name: str, port: str) -> bool:
    """Whether the while loop at ``chain[level]`` feeds its input ``name`` on later passes from a body
    output other than the path the SaveNode at the end of ``chain`` wrote (so later paths are computed)."""
    loop, label = chain[level]
    source = (loop.get("output_edges") or {}).get(name)
    if source is None:
        return False  # not carried: every pass gets the (re-rooted) input
    if port != "path":
        return True
    if level == len(chain) - 1:  # the SaveNode is the body itself
        return bool(source != f"{label}.path")
    body, writer = chain[level + 1]
    written = (body.get("output_edges") or {}).get(str(source).split(".", 1)[-1])
    return not (level + 1 == len(chain) - 1 and written == f"{writer}.path")


def _guard(chain: Chain) -> None:
    """Give the SaveNode at the end of ``chain`` ``overwrite=False``: a constant in the workflow holding
    it, or, for one sitting directly in a flow control, a new input of the flow control fed from above."""
    level = len(chain) - 1
    label, port = chain[level][1], "overwrite"
    while not _is_workflow(chain[level][0]):
        container = chain[level][0]
        name, n = f"{label}__{port}", 0
        while name in (container.get("inputs") or []):
            n += 1
            name = f"{label}__{port}_{n}"
        if level == 0:
            raise InvalidArgumentError(
                f"the SaveNode {label!r} sits directly in the stored {container.get('type')} node, which holds no "
                "constants: its path cannot be kept off the first run's files; pass overwrite=True to rerun it anyway"
            )
        container.setdefault("inputs", []).append(name)
        container.setdefault("input_edges", {})[f"{label}.{port}"] = name
        level -= 1
        label, port = chain[level][1], name
    _put_constant(chain[level][0], label, port, False)


def _moved(value: Any, directory: Path) -> Any:
    """``value`` (a path, or paths in nested lists for a for-each) with every relative path put into ``directory``."""
    if isinstance(value, str):
        return value if os.path.isabs(value) else str(directory / value)
    return [_moved(v, directory) for v in value]


def _strings(value: Any) -> list[str] | None:
    """The paths in ``value`` (a path, or nested lists of paths); None if it holds anything else."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and value:
        found = [_strings(v) for v in value]
        return None if any(f is None for f in found) else [s for f in found for s in f or []]
    return None


def redirect_saves(
    recipe: dict[str, Any],
    directory: Path,
    *,
    run_inputs: Mapping[str, Any],
    overwrite: bool,
    refuse: bool = True,
    guard_inputs: bool = False,
) -> Redirect:
    """Point every SaveNode of ``recipe`` (in place) away from the files a first run wrote.

    A relative constant path goes into ``directory``; a relative path given as one of the
    workflow's own inputs (``run_inputs``) likewise (returned in ``inputs``). An absolute
    path that exists raises :class:`FileExistsStorageError` unless ``overwrite``; without
    ``overwrite``, a path computed while running gets ``overwrite=False``; so does an
    absolute path that exists when ``refuse`` is false (the node is built, its save refuses),
    and, with ``guard_inputs``, a path fed by a workflow input (a node run by hand gets that
    input from its caller, maybe the first run's file).
    """
    done = Redirect()
    refused: list[str] = []
    alone = _written_port(recipe) if isinstance(recipe, dict) and recipe.get("type") == "atomic" else None
    if alone is not None:  # a SaveNode saved on its own: the path is one of its run inputs
        value = run_inputs.get(alone)
        if isinstance(value, str) and not os.path.isabs(value):
            done.inputs[alone] = str(directory / value)
            done.moved.append(("(the node)", value, done.inputs[alone]))
        elif isinstance(value, str) and os.path.exists(value) and not overwrite:
            refused.append(f"(the node) -> {value}")
    for chain in list(_save_nodes(recipe)):
        container, label = chain[-1]
        where = ".".join(lbl for _, lbl in chain)
        port = _written_port(_nodes(container)[label]) or "path"
        kind, holder, name, carried = _feeding(chain, port)
        if kind == "constant":
            value = holder["nodes"][name].get("constant")
        elif kind == "input":  # the top node's own input, set when it runs
            value = done.inputs.get(holder, run_inputs.get(holder))
        else:
            value = None
        paths = _strings(value)
        if paths is not None:
            guard = carried or (guard_inputs and kind == "input")  # later passes of a while loop compute the path
            for path in paths:
                if os.path.isabs(path) and os.path.exists(path) and not overwrite:
                    if refuse or port != "path":
                        refused.append(f"{where} -> {path}")
                    else:
                        guard = True
            new = _moved(value, directory)
            if new != value:  # (a source shared by several SaveNodes is moved at the first)
                if kind == "constant":
                    holder["nodes"][name]["constant"] = new
                else:
                    done.inputs[holder] = new
                for old, moved in zip(paths, _strings(new) or [], strict=True):
                    if old != moved:
                        done.moved.append((where, old, moved))
            if guard and not overwrite and port == "path":
                _guard(chain)
                done.guarded.append(where)
            continue
        if not overwrite and port == "path":  # computed while running: the save itself refuses an existing file
            _guard(chain)
            done.guarded.append(where)
    if refused:
        raise FileExistsStorageError(
            "the rerun would overwrite what the first run saved: "
            + "; ".join(refused)
            + " (an absolute SaveNode path that exists); pass overwrite=True to the rerun to replace it"
        )
    return done
