"""What came close when a query found nothing: :func:`near_misses` names, per filter that
matches nothing on its own, the recorded values near it: a node name that differs only by
module (``md_run`` -> ``__main__.md_run``), the same input port holding another type or
value, a metadata key spelled with another case, a close workflow label or user.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from ..errors import InvalidArgumentError
from . import schema as S
from .engine import Database
from .identity import from_preview, node_name
from .queries import file_conditions, record_conditions
from .queue import run

__all__ = ["check_node", "near_misses", "node_suggestions"]

_SHOWN = 3  # examples per hint


def _typed(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _close(word: str, names: list[str]) -> list[str]:
    """Names equal but for case first, then close spellings."""
    same_case = [n for n in names if n.lower() == word.lower() and n != word]
    return same_case or difflib.get_close_matches(word, names, n=_SHOWN, cutoff=0.75)


def node_suggestions(conn: sa.Connection, name: str) -> list[str]:
    """Recorded node names that differ from ``name`` only by module (``md_run`` -> ``__main__.md_run``),
    else close spellings."""
    names = [n for (n,) in conn.execute(sa.select(S.records.c.node).where(S.records.c.node.is_not(None)).distinct())]
    short = name.rpartition(".")[2]
    by_module = [n for n in names if n != name and (n.rpartition(".")[2] == short or n.endswith("." + name))]
    return sorted(by_module or _close(name, names))[:_SHOWN]


def check_node(db: Database, node: Any) -> None:
    """A ``node=`` string without a module: :class:`InvalidArgumentError` naming the recorded names it may mean."""
    if isinstance(node, str) and node and "." not in node:
        close = run(db, lambda conn: node_suggestions(conn, node), write=False, what="read")
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise InvalidArgumentError(f"node={node!r}: give the function or its 'module.qualname' string{hint}")


def near_misses(db: Database, filters: Mapping[str, Any]) -> list[str]:
    """One sentence per filter that alone matches nothing, saying what the catalog holds near it."""

    def work(conn: sa.Connection) -> list[str]:
        hints: list[str] = []
        r, f, i, m = S.records, S.files, S.inputs, S.metadata
        node = filters.get("node")
        if node is not None:
            name = node_name(node)
            if conn.execute(sa.select(r.c.id).where(*record_conditions(node, None)).limit(1)).first() is None:
                close = node_suggestions(conn, name)
                if close:
                    hints.append(f"no node {name!r}; recorded: {', '.join(close)}")
                else:
                    hints.append(f"no node {name!r} is recorded")
        for port, value in (filters.get("inputs") or {}).items():
            if conn.execute(sa.select(r.c.id).where(*record_conditions(None, {port: value})).limit(1)).first():
                continue
            held = conn.execute(sa.select(i.c.preview).where(i.c.port == str(port)).distinct().limit(_SHOWN)).all()
            if held:
                shown = ", ".join(_typed(from_preview(pv)) for (pv,) in held)
                hints.append(f"input {port!r} never held {_typed(value)}; it held e.g. {shown}")
            else:
                ports = [p for (p,) in conn.execute(sa.select(i.c.port).distinct().limit(10000))]
                close = _close(str(port), ports)
                hints.append(f"no input port {port!r}" + (f"; recorded ports: {', '.join(close)}" if close else ""))
        for name, value in (filters.get("metadata") or {}).items():
            if conn.execute(sa.select(f.c.id).where(*file_conditions(
                metadata={name: value}, user=None, host=None, since=None, until=None, workflow=None
            )).limit(1)).first():  # fmt: skip
                continue
            held = conn.execute(sa.select(m.c.value).where(m.c.name == str(name)).distinct().limit(_SHOWN)).all()
            if held:
                hints.append(
                    f"metadata {name!r} never held {_typed(value)}; it held e.g. {', '.join(v for (v,) in held)}"
                )
            else:
                keys = [k for (k,) in conn.execute(sa.select(m.c.name).distinct().limit(10000))]
                close = _close(str(name), keys)
                hints.append(f"no metadata key {name!r}" + (f"; recorded keys: {', '.join(close)}" if close else ""))
        for option, column in (("workflow", f.c.workflow), ("user", f.c.created_by), ("host", f.c.host)):
            given = filters.get(option)
            if given is None or conn.execute(sa.select(f.c.id).where(column == str(given)).limit(1)).first():
                continue
            names = [n for (n,) in conn.execute(sa.select(column).where(column.is_not(None)).distinct().limit(10000))]
            close = _close(str(given), names)
            hints.append(f"no {option} {given!r}" + (f"; recorded: {', '.join(close)}" if close else ""))
        return hints

    return run(db, work, write=False, what="read")
