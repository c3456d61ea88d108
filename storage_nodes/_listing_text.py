"""Texts that the printed and the HTML listing share: sizes and the line of a module's record."""

from __future__ import annotations

from typing import Any

__all__ = ["human_size", "module_summary"]


def human_size(n: int) -> str:
    """A byte count for people: ``512 B``, ``1.5 KB``, ``3.2 MB``."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def module_summary(name: str, rec: Any) -> str:
    """``name==version`` plus the git commit and dirty state when recorded."""
    if not isinstance(rec, dict):
        return name
    text = f"{name}=={rec['version']}" if rec.get("version") else name
    git = rec.get("git")
    if isinstance(git, dict) and git.get("commit"):
        state = git.get("dirty")
        dirty = ", dirty" if state is True else "" if state is False else ", dirty state unknown"
        text += f" (git {str(git['commit'])[:10]}{dirty})"
    return text
