"""gitinfo reads commit and dirty state from the repository files; checked against real git."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from storage_nodes.provenance import _gitfiles, gitinfo


def git(repo: Path, *args: str, strip: bool = True) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() if strip else out.stdout


def status(repo: Path, scope: str) -> list[str]:
    lines = git(repo, "status", "--porcelain", "--untracked-files=no", "--", scope, strip=False).splitlines()
    return sorted(line[3:] for line in lines)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "pkg" / "sub").mkdir(parents=True)
    (repo / "pkg" / "__init__.py").write_text("")
    (repo / "pkg" / "a.py").write_text("A = 1\n")
    (repo / "pkg" / "sub" / "b.py").write_text("B = 1\n" * 50)
    (repo / "other.txt").write_text("x\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    return repo


def state(repo: Path, file: str = "pkg/a.py", scope: str = "pkg") -> dict | None:
    _gitfiles.read_index.cache_clear()  # the tests rewrite files within one mtime tick
    _gitfiles.blob_id.cache_clear()
    return gitinfo.git_state(repo / file, repo / scope)


def test_clean_repository(repo: Path) -> None:
    assert state(repo) == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": False}


def test_same_size_edit_is_dirty_like_git_status(repo: Path) -> None:
    (repo / "pkg" / "sub" / "b.py").write_text("B = 2\n" + "B = 1\n" * 49)
    assert state(repo) == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": True, "changed": ["pkg/sub/b.py"]}
    assert status(repo, "pkg") == ["pkg/sub/b.py"]


def test_edit_outside_the_package_leaves_it_clean(repo: Path) -> None:
    (repo / "other.txt").write_text("changed\n")
    assert state(repo)["dirty"] is False
    assert state(repo, scope=".")["changed"] == ["other.txt"]


def test_staged_change_deletion_and_new_file_are_dirty(repo: Path) -> None:
    (repo / "pkg" / "a.py").write_text("A = 22\n")
    git(repo, "add", "pkg/a.py")
    assert state(repo)["changed"] == ["pkg/a.py"]
    git(repo, "commit", "-q", "-m", "two")
    assert state(repo) == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": False}
    git(repo, "rm", "-q", "pkg/sub/b.py")
    assert state(repo)["changed"] == ["pkg/sub/b.py"] == status(repo, "pkg")
    git(repo, "reset", "-q", "--hard")
    (repo / "pkg" / "c.py").write_text("C = 1\n")
    assert state(repo)["dirty"] is False  # untracked files do not count
    git(repo, "add", "pkg/c.py")
    assert state(repo)["changed"] == ["pkg/c.py"] == status(repo, "pkg")


def test_packed_objects_refs_and_index_v4(repo: Path) -> None:
    for i in range(3):  # history whose packed objects are deltas of each other
        (repo / "pkg" / "sub" / "b.py").write_text("B = 1\n" * 50 + f"C = {i}\n")
        git(repo, "commit", "-q", "-am", f"change {i}")
    git(repo, "gc", "-q", "--aggressive")
    git(repo, "pack-refs", "--all")
    git(repo, "update-index", "--index-version", "4")
    assert not list((repo / ".git" / "objects").glob("??/*"))  # everything is packed
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    head = git(repo, "rev-parse", "HEAD")
    assert state(repo) == {"commit": head, "dirty": False}
    from dulwich.object_store import DiskObjectStore

    objects = DiskObjectStore(str(repo / ".git" / "objects"))  # the store committed_blobs reads
    for commit in git(repo, "rev-list", "HEAD").split():  # older blobs are stored as deltas
        listed = dict(line.split()[2:4][::-1] for line in git(repo, "ls-tree", "-r", commit, "pkg").splitlines())
        tree = _gitfiles.committed_blobs(repo / ".git", "sha1", commit, "pkg")
        assert {p: sha.decode() for p, sha in tree.items()} == listed
        for sha in listed.values():
            blob = objects[sha.encode()]
            assert (blob.type_name, blob.as_raw_string()) == (
                b"blob",
                git(repo, "cat-file", "blob", sha, strip=False).encode(),
            )
    objects.close()
    (repo / "pkg" / "a.py").write_text("A = 3\n")
    assert state(repo) == {"commit": head, "dirty": True, "changed": ["pkg/a.py"]}


def test_detached_head_and_linked_worktree(repo: Path, tmp_path: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    (repo / "pkg" / "a.py").write_text("A = 2\n")
    git(repo, "commit", "-q", "-am", "two")
    git(repo, "worktree", "add", "-q", "--detach", str(tmp_path / "wt"), first)
    assert state(tmp_path / "wt") == {"commit": first, "dirty": False}
    (tmp_path / "wt" / "pkg" / "a.py").write_text("A = 9\n")
    assert state(tmp_path / "wt")["changed"] == ["pkg/a.py"]
    assert state(repo) == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": False}


def test_untracked_or_outside_a_repository_is_none(repo: Path, tmp_path: Path) -> None:
    (repo / "pkg" / "new.py").write_text("")  # e.g. a .venv's site-packages inside a repository
    assert state(repo, "pkg/new.py") is None
    (tmp_path / "loose.py").write_text("")
    assert gitinfo.git_state(tmp_path / "loose.py") is None


def test_unknown_layout_falls_back_then_says_so(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unsupported(*args: object) -> list[str]:
        raise gitinfo.GitFormatError("the index is split (core.splitIndex)")

    monkeypatch.setattr(gitinfo, "_changed_files", unsupported)
    (repo / "pkg" / "a.py").write_text("A = 5\n")
    assert state(repo)["changed"] == ["pkg/a.py"]  # from `git status`
    head = git(repo, "rev-parse", "HEAD")
    monkeypatch.setenv("PATH", "")
    assert state(repo) == {
        "commit": head,
        "dirty": None,
        "note": "dirty state unknown: the index is split (core.splitIndex) and the git executable was not found",
    }


def test_unborn_branch_has_no_commit(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "m.py").write_text("")
    git(repo, "add", "m.py")
    assert gitinfo.git_state(repo / "m.py") == {"commit": None, "dirty": True, "changed": ["m.py"]}


def test_symlinked_file_is_compared_by_target(repo: Path) -> None:
    os.symlink("a.py", repo / "pkg" / "link.py")
    git(repo, "add", "pkg/link.py")
    git(repo, "commit", "-q", "-m", "link")
    assert state(repo)["dirty"] is False


def test_unreadable_index_keeps_the_commit(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    head = git(repo, "rev-parse", "HEAD")
    (repo / ".git" / "index").write_bytes(b"DIRC\x00\x00\x00\x09\x00\x00\x00\x00")  # an index version we do not know
    monkeypatch.setenv("PATH", "")
    assert state(repo) == {
        "commit": head,
        "dirty": None,
        "note": "dirty state unknown: index version 9 is not supported and the git executable was not found",
    }


def test_a_kept_state_is_looked_at_again_after_an_edit_a_commit_or_a_branch_switch(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git_state keeps an answer while inotify reports nothing; every change is seen."""
    determined: list[str] = []
    real = gitinfo._determine

    def counting(*args: object) -> object:
        determined.append("x")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(gitinfo, "_determine", counting)
    gitinfo.forget()
    first = git(repo, "rev-parse", "HEAD")
    look = lambda: gitinfo.git_state(repo / "pkg" / "a.py", repo / "pkg")  # noqa: E731
    assert look() == {"commit": first, "dirty": False}
    assert look() == {"commit": first, "dirty": False} and len(determined) == 1  # kept: nothing changed
    (repo / "pkg" / "sub" / "b.py").write_text("B = 2\n")  # an edit in a sibling directory
    assert look() == {"commit": first, "dirty": True, "changed": ["pkg/sub/b.py"]} and len(determined) == 2
    git(repo, "commit", "-q", "-am", "two")
    second = git(repo, "rev-parse", "HEAD")
    assert look() == {"commit": second, "dirty": False} and len(determined) == 3
    git(repo, "checkout", "-q", "-b", "feature/x", first)  # a branch in a directory of its own
    assert look() == {"commit": first, "dirty": False}
    (repo / "pkg" / "a.py").write_text("A = 3\n")
    git(repo, "commit", "-q", "-am", "three")
    assert look() == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": False}
    look()["changed"] = ["mutated"]  # the kept answer is a copy
    assert "changed" not in look()


def test_without_inotify_every_call_looks_again(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from storage_nodes.provenance import _watch

    monkeypatch.setattr(_watch, "watcher", lambda: None)
    gitinfo.forget()
    look = lambda: gitinfo.git_state(repo / "pkg" / "a.py", repo / "pkg")  # noqa: E731
    assert look()["dirty"] is False
    (repo / "pkg" / "a.py").write_text("A = 10\n")
    assert look()["changed"] == ["pkg/a.py"]


def test_a_network_file_system_is_not_watched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from storage_nodes.provenance import _watch

    w = _watch.watcher()
    assert w is not None  # Linux: inotify is there
    assert w.watch([str(tmp_path)])  # a local file system
    monkeypatch.setattr(w, "_mounts", [("/", "nfs4")])  # as if on NFS: edits on other hosts send no event
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert not w.watch([str(fresh)])


def test_a_new_watcher_does_not_trust_states_kept_under_the_old_one(repo: Path) -> None:
    """After fork the child makes its own inotify instance, which saw none of the earlier changes."""
    from storage_nodes.provenance import _watch

    look = lambda: gitinfo.git_state(repo / "pkg" / "a.py", repo / "pkg")  # noqa: E731
    assert look()["dirty"] is False
    _watch.reset()  # as in a forked child: the parent's queue is not ours
    (repo / "pkg" / "a.py").write_text("A = 11\n")
    assert look()["changed"] == ["pkg/a.py"]


def test_mount_points_with_escaped_spaces_are_read() -> None:
    from storage_nodes._mounts import read_mounts

    assert all("\\040" not in point for point, _ in read_mounts())
