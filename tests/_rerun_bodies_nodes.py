"""Workflows with a SaveNode inside each flow-control body, for tests/graph/test_rerun_bodies.py.

flowrep parses the source of decorated functions, so they live in a real module
(``tests/`` is on the test path).
"""

from __future__ import annotations

import flowrep as fr
from _node_kinds import above_zero, halve, ratio  # the bodies' conditions and steps: the node-kind fixtures'

from storage_nodes import SaveNode


@fr.workflow
def save_each(values):
    """for-each: a relative constant path in the body (every pass writes it)."""
    out = []
    for v in values:
        p = SaveNode(v, "each.json", "json")
        out.append(p)
    return out


@fr.workflow
def save_paths(values, paths):
    """for-each over paths: the body's path comes from the workflow's input, one per pass."""
    out = []
    for v, p in zip(values, paths):
        w = SaveNode(v, p, "json")
        out.append(w)
    return out


@fr.workflow
def save_if(v, path):
    """if: the body's path passed in from the workflow's input; the else body's a constant."""
    if above_zero(v):  # noqa: SIM108  (an if statement becomes an If node; a ternary would not)
        r = SaveNode(v, path, "json")
    else:
        r = SaveNode(v, "negative.json", "json")
    return r


@fr.workflow
def save_while(v):
    """while: a relative constant path in the body, written on every pass."""
    while above_zero(v):
        v = halve(v)
        w = SaveNode(v, "halved.json", "json")  # noqa: F841  (flowrep takes no bare calls)
    return v


@fr.workflow
def save_try(a, b):
    """try: a relative constant path in the try body and in the except body."""
    try:
        r = ratio(a, b)
        w = SaveNode(r, "ratio.json", "json")
    except ZeroDivisionError:
        w = SaveNode(a, "failed.json", "json")
    return w


@fr.atomic("name")
def name_of(stem, v):
    return f"{stem}_{v}.json"


@fr.workflow
def save_named(values, stem):
    """for-each: the body computes its path while running (so a rerun cannot re-root it)."""
    out = []
    for v in values:
        p = name_of(stem, v)
        w = SaveNode(v, p, "json")
        out.append(w)
    return out


@fr.workflow
def save_carried(v, path):
    """while: the path the body saved to is carried into the next pass (the same file, rewritten)."""
    while above_zero(v):
        v = halve(v)
        path = SaveNode(v, path, "json")
    return v, path


@fr.workflow
def save_renamed(v, path):
    """while: the next pass's path is computed from this one (so the rerun guards the SaveNode)."""
    while above_zero(v):
        v = halve(v)
        w = SaveNode(v, path, "json")  # noqa: F841  (flowrep takes no bare calls)
        path = name_of(path, v)
    return v, path
