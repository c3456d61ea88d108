"""One node of every kind pyiron_workflow 0.20 builds, for tests/graph/test_node_kinds.py.

flowrep parses the source of decorated functions, so they live in a real module; the
recipes name them as ``_node_kinds.<function>`` (``tests/`` is on the test path).
"""

from __future__ import annotations

import flowrep as fr
import numpy as np


@fr.atomic("total")
def plus(a, b):
    return a + b


@fr.atomic("scaled")
def scale(v, factor=2.0):
    return np.asarray(v) * factor if isinstance(v, list | np.ndarray) else v * factor


@fr.atomic("same")
def same(v):
    return v


@fr.atomic("flipped")
def flip(v):
    return -v


@fr.atomic("yes")
def above_zero(v):
    return v > 0


@fr.atomic("smaller")
def halve(v):
    return v // 2


@fr.atomic("ratio")
def ratio(a, b):
    return a / b


@fr.workflow
def chain(a, b):
    s = plus(a, b)
    t = scale(s)
    return s, t


@fr.workflow
def outer(a, b):
    s = plus(a, b)
    first, second = chain(s, b)
    return first, second


@fr.workflow
def absolute(v):
    if above_zero(v):  # noqa: SIM108  (an if statement becomes an If node; a ternary would not)
        r = same(v)
    else:
        r = flip(v)
    return r


@fr.workflow
def halvings(v):
    while above_zero(v):
        v = halve(v)
    return v


@fr.workflow
def guarded_ratio(a, b):
    try:
        r = ratio(a, b)
    except ZeroDivisionError:
        r = same(a)
    return r


@fr.workflow
def shifted(values, by):
    out = []
    for v in values:
        s = plus(v, by)
        out.append(s)
    return out


def inner(workflow_function, kind: str):
    """The single flow-control recipe of kind ``kind`` inside a parsed ``@fr.workflow``."""
    found = [r for r in workflow_function.flowrep_recipe.nodes.values() if r.type == kind]
    assert len(found) == 1, (kind, list(workflow_function.flowrep_recipe.nodes))
    return found[0]
