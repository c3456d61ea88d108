"""Asking the ``git`` program, for repositories (or parts of them) the file readers in
:mod:`._gitfiles` do not understand: git is the reference for its own formats.

Every call runs ``git -C <work tree> --no-optional-locks --literal-pathspecs`` without the
variables that point git at another repository (:data:`REPOSITORY_VARIABLES`: a save made
inside a git hook must not read the hook's repository), and never writes to the
repository (no index refresh).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from ._gitfiles import Repository

__all__ = ["GitFailed", "MAX_CHANGED", "REPOSITORY_VARIABLES", "state", "status"]

MAX_CHANGED = 10  # changed files listed in a record

#: what ``git rev-parse --local-env-vars`` lists: variables that describe one repository
REPOSITORY_VARIABLES = frozenset(
    {
        "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT",
        "GIT_OBJECT_DIRECTORY", "GIT_DIR", "GIT_WORK_TREE", "GIT_IMPLICIT_WORK_TREE", "GIT_GRAFT_FILE",
        "GIT_INDEX_FILE", "GIT_NO_REPLACE_OBJECTS", "GIT_REPLACE_REF_BASE", "GIT_PREFIX",
        "GIT_INTERNAL_SUPER_PREFIX", "GIT_SHALLOW_FILE", "GIT_COMMON_DIR",
    }
)  # fmt: skip


class GitFailed(Exception):
    """The git program is missing, or could not answer: the text says which, and why."""


def _run(repo: Repository, *args: str) -> str:
    git = shutil.which("git")
    if git is None:
        raise GitFailed("the git executable was not found")
    env = {k: v for k, v in os.environ.items() if k not in REPOSITORY_VARIABLES}
    try:
        done = subprocess.run(
            [git, "-C", str(repo.work_tree), "--no-optional-locks", "--literal-pathspecs", *args],
            capture_output=True,
            env=env,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise GitFailed(f"git could not be run ({type(exc).__name__}: {exc})") from exc
    if done.returncode:
        said = " ".join(done.stderr.decode("utf-8", "replace").split())[:300]
        raise GitFailed(f"git {args[0]} failed: {said or f'exit code {done.returncode}'}")
    return done.stdout.decode("utf-8", "surrogateescape")


def status(repo: Repository, prefix: str) -> tuple[str | None, list[str]]:
    """(the checked-out commit or None on an unborn branch, the tracked paths under ``prefix``
    that differ from it), from ``git status``; raises :class:`GitFailed`."""
    out = _run(
        repo,
        "status",
        "--porcelain=v2",
        "-z",
        "--branch",
        "--untracked-files=no",
        "--no-renames",
        "--",
        prefix or ".",
    )
    commit: str | None = None
    changed: list[str] = []
    for record in out.split("\0"):
        if record.startswith("# branch.oid "):
            oid = record.split(" ", 2)[2]
            commit = None if oid == "(initial)" else oid
        elif record.startswith("1 "):  # "1 XY sub mH mI mW hH hI path"
            changed.append(record.split(" ", 8)[8])
        elif record.startswith("u "):  # "u XY sub m1 m2 m3 mW h1 h2 h3 path" (a conflict)
            changed.append(record.split(" ", 10)[10])
    return commit, sorted(changed)


def state(repo: Repository, relative: str, prefix: str, problem: str) -> dict[str, Any] | None:
    """The git state of the file ``relative`` as git tells it (None when git says it is not
    tracked), or, when git cannot tell, unknown: ``{"commit": None, "dirty": None, "note"}``
    with ``problem`` (why the files were not read here) and git's answer in the note."""
    try:
        if not _run(repo, "ls-files", "-z", "--", relative):
            return None
        commit, changed = status(repo, prefix)
    except GitFailed as exc:
        return {"commit": None, "dirty": None, "note": f"git state unknown: {problem}, and {exc}"}
    out: dict[str, Any] = {"commit": commit, "dirty": bool(changed)}
    if changed:
        out["changed"] = changed[:MAX_CHANGED]
    return out
