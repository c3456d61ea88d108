"""Help-text formatting shared by every ``storage-nodes`` command group.

The main parser (:mod:`storage_nodes.cli`) and the command groups of the subsystems
(``collection ...``) import it; it imports nothing of the package, so a command group
never needs the main CLI module.
"""

from __future__ import annotations

import argparse

__all__ = ["HelpFormatter", "examples"]


class HelpFormatter(argparse.HelpFormatter):
    """Wraps descriptions like argparse does, but keeps an ``examples:`` epilog line by line."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def examples(*commands: str) -> str:
    """An ``examples:`` epilog, one command a line."""
    return "examples:\n" + "\n".join(f"  {c}" for c in commands)
