"""Let a plain constant feed a ``Literal`` port of pyiron_workflow 0.20.x when it is a member.

The problem: ``pwf.node(SaveNode, backend="json")`` and ``wf.save.inputs.backend = "json"``
turn ``"json"`` into a ``Constant`` node hinted ``type(value)``, i.e. ``str``.
pyiron_workflow 0.20.x then compares *hints* only, and ``str`` is never as specific as
``Literal["cloudpickle", "h5", "json", "pickle"]``, so the edge is refused with a
``TypeError``. The pyironflow GUI, however, needs a ``Literal`` hint to draw a dropdown.

The fix: pyiron_workflow validates constant edges in one private function,
``pyiron_workflow.validation.validate_constant_edge(edge, owner)``. We wrap it so that a
constant feeding a ``Literal`` port (or a union of ``Literal`` s, or either inside
``Annotated``) is checked *by its value*: a member of the ``Literal`` is accepted, anything
else is refused with a ``TypeError`` that lists the allowed values. Every other edge goes
to the original function unchanged. ``_constant_hint_is_uncheckable`` is widened the same
way so ``wf.validate()`` reports such an edge as unchecked (``complete=False``, still
``valid``) instead of invalid, exactly as upstream treats a ``list`` constant feeding a
``list[int]`` port; it has no values to look at, so construction stays the value check.

A second, independent fix: in 0.20.x re-assigning an input that already has a source
(``pwf.node(SaveNode, backend="json")`` then ``wf.save.inputs.backend = "h5"``) adds a
second source instead of replacing the first, and the next run fails with "targets with
multiple sources". Upstream's stated intent (pyiron_workflow PR #673: "when we assign
something new to the attribute of course the old assignment is thrown away") is
replacement, so we wrap the private ``Workflow._realize_pending``: before the new sources
are realized, the edges feeding those inputs are removed, and a ``Constant`` node left
feeding nothing is removed with them. It runs inside pyiron_workflow's own undo scope, so
a refused assignment (e.g. a constant that is not a member) restores the old source.

Scope: only pyiron_workflow 0.20.x (see :data:`SUPPORTED`), applied once when
``storage_nodes.nodes`` is imported. ``tests/graph/test_pwf_compat.py`` fails loudly when
upstream changes these functions, starts accepting member constants itself or replaces
re-assigned sources itself; then delete the fix concerned (or this module and its call in
``nodes.py``).
"""

from __future__ import annotations

import functools
import types
import typing
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["SUPPORTED", "apply", "is_applied", "literal_members", "originals"]

SUPPORTED = "0.20."
_MARK = "__storage_nodes_patch__"
_originals: dict[str, Callable[..., Any]] = {}


def literal_members(hint: Any) -> tuple[Any, ...] | None:
    """Members of ``Literal[...]``, of a union made only of Literals, or of either inside
    ``Annotated``; ``None`` for any other hint.

    >>> literal_members(typing.Literal["a", "b"])
    ('a', 'b')
    """
    while typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return typing.get_args(hint)
    args = typing.get_args(hint)
    if args and origin in (typing.Union, types.UnionType):
        parts = [literal_members(a) for a in args]
        if all(p is not None for p in parts):
            return tuple(m for p in parts for m in p)  # type: ignore[union-attr]
    return None


def _is_member(value: Any, members: tuple[Any, ...]) -> bool:
    # Literal[1] must not accept True (and Literal[True] not 1): compare types as well
    return any(value == m and type(value) is type(m) for m in members)


def _backend_list(value: Any, members: tuple[Any, ...]) -> bool:
    """Whether ``value`` is a list of backend names, tried in order, for a ``backend`` port (a
    Literal of ``None`` and registered backend names): scripts may pass one, the GUI's dropdown
    offers single names."""
    from .. import registry

    names = set(registry.names())
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and None in members
        and all(m is None or m in names for m in members)
        and all(isinstance(v, str) and _is_member(v, members) for v in value)
    )


def _constant_value(edge: Any, owner: Any) -> tuple[bool, Any]:
    node = owner.get_node(edge.source.node) if edge.source.node else None
    recipe = getattr(node, "recipe", None)
    if recipe is None or not hasattr(recipe, "constant"):
        return False, None
    return True, recipe.constant


def _validate_constant_edge(edge: Any, owner: Any) -> Any:
    from pyiron_workflow import validation

    _, target_hint = validation._resolve_edge_hints(edge, owner)
    members = literal_members(target_hint)
    if members is not None:
        found, value = _constant_value(edge, owner)
        if found:
            if _is_member(value, members) or _backend_list(value, members):
                return edge
            raise TypeError(
                f"Processing edge '{edge.source.serialize()}->{edge.target.serialize()}' on "
                f"{owner.lexical_path!r}: the constant {value!r} is not one of the values the port "
                f"accepts: {list(members)!r}"
            )
    return _originals["validate_constant_edge"](edge, owner)


def _constant_hint_is_uncheckable(source_hint: Any, target_hint: Any) -> bool:
    if _originals["_constant_hint_is_uncheckable"](source_hint, target_hint):
        return True
    members = literal_members(target_hint)
    return members is not None and any(type(m) is source_hint for m in members)


def _realize_pending(self: Any, node: Any) -> None:
    from pyiron_workflow.constant import Constant

    replaced = set(node._pending_constants) | set(node._pending_connections)
    for edge in list(self.edges):
        target = edge.target
        if getattr(target, "node", None) != node.label or target.port not in replaced:
            continue
        self._remove_edge(edge)
        source = self.nodes.get(edge.source.node) if getattr(edge.source, "node", None) else None
        if isinstance(source, Constant) and not any(e.source.node == source.label for e in self.edges):
            self._remove_node_shallow(source)
    _originals["_realize_pending"](self, node)


def _mark(func: Callable[..., Any]) -> Callable[..., Any]:
    setattr(func, _MARK, True)
    return func


def is_applied() -> bool:
    """Whether the patch is active in this process."""
    from pyiron_workflow import validation

    return getattr(validation.validate_constant_edge, _MARK, False)


def originals() -> dict[str, Callable[..., Any]]:
    """The unpatched pyiron_workflow functions (empty when the patch is not applied)."""
    return dict(_originals)


@functools.cache
def apply() -> bool:
    """Install the patch once if pyiron_workflow is 0.20.x; returns whether it is active.

    >>> apply()  # doctest: +SKIP
    True
    """
    import pyiron_workflow
    from pyiron_workflow import validation
    from pyiron_workflow.workflow_node import Workflow

    version = getattr(pyiron_workflow, "__version__", "")
    if not version.startswith(SUPPORTED):
        warnings.warn(
            f"storage_nodes: pyiron_workflow {version} is not {SUPPORTED}x; the patch that lets a plain "
            "string constant feed a Literal port (backend='json') is not applied",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    for name in ("validate_constant_edge", "_constant_hint_is_uncheckable", "_resolve_edge_hints"):
        if not callable(getattr(validation, name, None)):
            warnings.warn(
                f"storage_nodes: pyiron_workflow.validation.{name} is missing; not patching",
                RuntimeWarning,
                stacklevel=2,
            )
            return False
    for owner, name in ((Workflow, "_realize_pending"), (Workflow, "_undoable"), (Workflow, "_remove_edge")):
        if not callable(getattr(owner, name, None)):
            warnings.warn(
                f"storage_nodes: pyiron_workflow's Workflow.{name} is missing; not patching",
                RuntimeWarning,
                stacklevel=2,
            )
            return False
    if is_applied():
        return True
    _originals["validate_constant_edge"] = validation.validate_constant_edge
    _originals["_constant_hint_is_uncheckable"] = validation._constant_hint_is_uncheckable
    validation.validate_constant_edge = _mark(
        functools.wraps(_originals["validate_constant_edge"])(_validate_constant_edge)
    )
    validation._constant_hint_is_uncheckable = _mark(
        functools.wraps(_originals["_constant_hint_is_uncheckable"])(_constant_hint_is_uncheckable)
    )
    _originals["_realize_pending"] = Workflow._realize_pending
    Workflow._realize_pending = _mark(
        Workflow._undoable(functools.wraps(_originals["_realize_pending"])(_realize_pending))
    )
    return True
