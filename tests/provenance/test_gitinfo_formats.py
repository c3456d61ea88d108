"""gitinfo on repositories of other formats: SHA-256 objects, reftable refs, extensions its
readers do not know. Each record is compared with what git itself says (``git rev-parse
HEAD``, ``git status``), or, where git cannot tell either, must say "unknown" with a note:
never a guess."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from storage_nodes.provenance import _gitfiles, gitinfo

IDENTITY = ["-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main"]


def git(repo: Path, *args: str, strip: bool = True) -> str:
    out = subprocess.run(["git", *IDENTITY, *args], cwd=repo, check=True, capture_output=True, text=True)
    return out.stdout.strip() if strip else out.stdout


def git_can(*init_args: str, where: Path) -> bool:
    """Whether the installed git can ``git init`` with these options."""
    where.mkdir()
    return subprocess.run(["git", "init", "-q", *init_args, str(where)], capture_output=True).returncode == 0


def truth(repo: Path, scope: str = "pkg") -> dict:
    """The record git itself gives: HEAD, and the tracked paths under ``scope`` that differ."""
    lines = git(repo, "status", "--porcelain", "--untracked-files=no", "--no-renames", "--", scope, strip=False)
    changed = sorted(line[3:] for line in lines.splitlines())
    out = {"commit": git(repo, "rev-parse", "HEAD"), "dirty": bool(changed)}
    if changed:
        out["changed"] = changed
    return out


def state(repo: Path, file: str = "pkg/a.py", scope: str = "pkg") -> dict | None:
    _gitfiles.read_index.cache_clear()  # the tests rewrite files within one mtime tick
    _gitfiles.blob_id.cache_clear()
    gitinfo.forget()
    return gitinfo.git_state(repo / file, repo / scope)


def make(repo: Path, *init_args: str) -> Path:
    (repo / "pkg" / "sub").mkdir(parents=True, exist_ok=True)
    (repo / "pkg" / "__init__.py").write_text("")
    (repo / "pkg" / "a.py").write_text("A = 1\n")
    (repo / "pkg" / "sub" / "b.py").write_text("B = 1\n" * 50)
    (repo / "other.txt").write_text("x\n")
    git(repo, "init", "-q", *init_args)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    return repo


def snapshot(git_dir: Path) -> dict[str, str]:
    """Every file under ``git_dir`` with a hash of its content (directories by name)."""
    return {
        str(p.relative_to(git_dir)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(git_dir.rglob("*"))
    }


@pytest.fixture
def sha256_repo(tmp_path: Path) -> Path:
    assert git_can("--object-format=sha256", where=tmp_path / "probe")  # git >= 2.29
    repo = make(tmp_path / "repo", "--object-format=sha256")
    assert len(git(repo, "rev-parse", "HEAD")) == 64
    return repo


def test_sha256_clean_edited_staged_and_added(sha256_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = sha256_repo
    assert state(repo) == truth(repo) == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": False}
    (repo / "pkg" / "sub" / "b.py").write_text("B = 2\n" + "B = 1\n" * 49)  # same size: hashed with SHA-256
    assert state(repo) == truth(repo) and truth(repo)["changed"] == ["pkg/sub/b.py"]
    git(repo, "add", "pkg/sub/b.py")
    (repo / "pkg" / "c.py").write_text("C = 1\n")
    git(repo, "add", "pkg/c.py")
    assert state(repo) == truth(repo) and truth(repo)["changed"] == ["pkg/c.py", "pkg/sub/b.py"]
    git(repo, "commit", "-q", "-m", "two")
    expected = truth(repo)
    assert expected["dirty"] is False
    monkeypatch.setenv("PATH", "")  # read from the files, not asked of git
    assert state(repo) == expected


def test_sha256_packed_deltas_detached_head_and_worktree(sha256_repo: Path, tmp_path: Path) -> None:
    repo = sha256_repo
    first = git(repo, "rev-parse", "HEAD")
    for i in range(3):  # history whose packed objects are deltas of each other
        (repo / "pkg" / "sub" / "b.py").write_text("B = 1\n" * 50 + f"C = {i}\n")
        git(repo, "commit", "-q", "-am", f"change {i}")
    git(repo, "gc", "-q", "--aggressive")
    git(repo, "pack-refs", "--all")
    assert not list((repo / ".git" / "objects").glob("??/*"))  # everything is packed
    (pack,) = (repo / ".git" / "objects" / "pack").glob("*.idx")
    listing = git(repo, "verify-pack", "-v", str(pack)).splitlines()
    assert any(len(line.split()) == 7 for line in listing)  # "<id> blob <size> ... <depth> <base>": a delta
    assert state(repo) == truth(repo) and truth(repo)["dirty"] is False
    for commit in git(repo, "rev-list", "HEAD").split():
        listed = dict(line.split()[2:4][::-1] for line in git(repo, "ls-tree", "-r", commit, "pkg").splitlines())
        blobs = _gitfiles.committed_blobs(repo / ".git", "sha256", commit, "pkg")
        assert {p: sha.decode() for p, sha in blobs.items()} == listed
    git(repo, "checkout", "-q", "--detach", "HEAD~2")
    assert state(repo) == truth(repo) and state(repo)["commit"] == git(repo, "rev-parse", "HEAD~0")
    git(repo, "worktree", "add", "-q", "--detach", str(tmp_path / "wt"), first)
    assert state(tmp_path / "wt") == truth(tmp_path / "wt") == {"commit": first, "dirty": False}
    (tmp_path / "wt" / "pkg" / "a.py").write_text("A = 9\n")
    assert state(tmp_path / "wt") == truth(tmp_path / "wt") and truth(tmp_path / "wt")["changed"] == ["pkg/a.py"]


def test_reftable_is_read_by_git_or_recorded_as_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reftable refs are not read by hand (HEAD there names no branch file): where git can
    create reftable repositories (2.45 and later) the record is what git says; the
    installed git here may be older, so a repository declaring reftable in its config is
    also checked: git, if it reads it, or "unknown" with a note naming reftable."""
    if git_can("--ref-format=reftable", where=tmp_path / "probe"):
        real = make(tmp_path / "real", "--ref-format=reftable")
        assert (real / ".git" / "reftable").is_dir()
        assert state(real) == truth(real) and truth(real)["dirty"] is False
        (real / "pkg" / "a.py").write_text("A = 2\n")
        assert state(real) == truth(real) and truth(real)["changed"] == ["pkg/a.py"]
        git(real, "checkout", "-q", "--detach")
        assert state(real) == truth(real)
    declared = make(tmp_path / "declared")
    (declared / "pkg" / "a.py").write_text("A = 3\n")
    git(declared, "config", "core.repositoryformatversion", "1")
    git(declared, "config", "extensions.refStorage", "reftable")
    before = snapshot(declared / ".git")
    try:
        expected: dict | None = truth(declared)
    except subprocess.CalledProcessError as exc:  # this git does not know reftable
        assert "refstorage" in exc.stderr
        expected = None
    record = state(declared)
    if expected is not None:
        assert record == expected
    else:
        assert record is not None and record["commit"] is None and record["dirty"] is None
        assert "reftable (extensions.refstorage)" in record["note"]
        assert "git ls-files failed: fatal: unknown repository extension found: refstorage" in record["note"]
    monkeypatch.setenv("PATH", "")
    assert state(declared) == {
        "commit": None,
        "dirty": None,
        "note": "git state unknown: the repository keeps its refs in reftable (extensions.refstorage), "
        "and the git executable was not found",
    }
    assert snapshot(declared / ".git") == before  # nothing written into the repository


def test_an_extension_only_git_knows_is_asked_of_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A partial clone's extension: objects may be missing here, so git answers."""
    repo = make(tmp_path / "repo")
    git(repo, "config", "core.repositoryformatversion", "1")
    git(repo, "config", "extensions.partialClone", "origin")
    assert state(repo) == truth(repo) and truth(repo)["dirty"] is False
    (repo / "pkg" / "a.py").write_text("A = 2\n")
    git(repo, "rm", "-q", "pkg/sub/b.py")
    assert state(repo) == truth(repo) and truth(repo)["changed"] == ["pkg/a.py", "pkg/sub/b.py"]
    (repo / "pkg" / "new.py").write_text("")
    assert state(repo, "pkg/new.py") is None  # untracked, as git ls-files says
    other = make(tmp_path / "other")  # as in a git hook of another repository
    (other / "pkg" / "a.py").write_text("A = 'other'\n")
    git(other, "commit", "-q", "-am", "another history")
    expected = truth(repo)
    with monkeypatch.context() as m:
        m.setenv("GIT_DIR", str(other / ".git"))
        m.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
        assert state(repo) == expected
    monkeypatch.setenv("PATH", "")
    assert state(repo) == {
        "commit": None,
        "dirty": None,
        "note": "git state unknown: the repository uses extensions.partialclone, which this reader "
        "does not know, and the git executable was not found",
    }


def test_known_extensions_are_read_from_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make(tmp_path / "repo")
    git(repo, "config", "core.repositoryformatversion", "1")
    git(repo, "config", "extensions.worktreeConfig", "true")
    (repo / "pkg" / "a.py").write_text("A = 2\n")
    expected = truth(repo)
    monkeypatch.setenv("PATH", "")
    assert state(repo) == expected and expected["changed"] == ["pkg/a.py"]


def test_an_unknown_format_version_is_not_guessed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make(tmp_path / "repo")
    git(repo, "config", "core.repositoryformatversion", "2")
    record = state(repo)
    assert record is not None and record["commit"] is None and record["dirty"] is None
    assert record["note"].startswith("git state unknown: the repository format version is 2, and git ls-files failed:")
    monkeypatch.setenv("PATH", "")
    assert state(repo)["note"] == (
        "git state unknown: the repository format version is 2, and the git executable was not found"
    )


def test_a_symbolic_ref_chain_is_followed(tmp_path: Path) -> None:
    repo = make(tmp_path / "repo")
    git(repo, "symbolic-ref", "refs/heads/alias", "refs/heads/main")
    git(repo, "symbolic-ref", "HEAD", "refs/heads/alias")
    assert state(repo) == truth(repo) and state(repo)["commit"] == git(repo, "rev-parse", "main")


def test_a_file_in_a_submodule(tmp_path: Path) -> None:
    """A submodule's ``.git`` is a file naming ``.git/modules/<name>`` of the superproject."""
    library = make(tmp_path / "library")
    top = make(tmp_path / "top")
    git(top, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library), "lib")
    git(top, "commit", "-q", "-m", "with lib")
    sub = top / "lib"
    assert (sub / ".git").is_file()
    assert state(sub) == truth(sub) and truth(sub)["commit"] == git(library, "rev-parse", "HEAD")
    (sub / "pkg" / "a.py").write_text("A = 7\n")
    assert state(sub) == truth(sub) and truth(sub)["changed"] == ["pkg/a.py"]
    assert state(top) == truth(top) and truth(top)["dirty"] is False  # the superproject's own package
    assert state(top, scope=".") == truth(top, ".") and truth(top, ".")["changed"] == ["lib"]  # edited inside
    git(sub, "commit", "-q", "-am", "ahead of the superproject")
    assert state(top, scope=".") == truth(top, ".") and truth(top, ".")["changed"] == ["lib"]  # new commit


def test_a_split_index_and_a_sparse_checkout_ask_git_for_the_dirty_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dulwich stops reading at an index extension git requires readers to know ("link"):
    that must not be taken for a complete index."""
    repo = make(tmp_path / "repo")
    git(repo, "update-index", "--split-index")
    assert (repo / ".git" / "index").read_bytes().find(b"link") > 0
    (repo / "pkg" / "a.py").write_text("A = 2\n")
    assert state(repo) == truth(repo) and truth(repo)["changed"] == ["pkg/a.py"]
    head = git(repo, "rev-parse", "HEAD")
    with monkeypatch.context() as m:
        m.setenv("PATH", "")
        assert state(repo) == {
            "commit": head,
            "dirty": None,
            "note": "dirty state unknown: the index is split (core.splitIndex) and the git executable was not found",
        }
    git(repo, "update-index", "--no-split-index")
    git(repo, "checkout", "-q", "--", ".")
    git(repo, "sparse-checkout", "set", "--no-cone", "/pkg/")  # other.txt: skip-worktree, absent from the work tree
    assert not (repo / "other.txt").exists()
    assert state(repo, scope=".") == truth(repo, ".") and truth(repo, ".")["dirty"] is False
    monkeypatch.setenv("PATH", "")
    assert state(repo, scope=".")["note"] == (
        "dirty state unknown: the index has skip-worktree entries (sparse checkout) "
        "and the git executable was not found"
    )


def test_other_extensions_in_a_version_0_repository_are_left_to_git(tmp_path: Path) -> None:
    """git 2.39 ignores ``refStorage`` in a version 0 repository and refuses ``objectFormat``
    there: whichever it does, the record follows git, or says it cannot tell."""
    repo = make(tmp_path / "repo")
    git(repo, "config", "extensions.refStorage", "reftable")
    (repo / "pkg" / "a.py").write_text("A = 2\n")
    try:
        expected = truth(repo)
    except subprocess.CalledProcessError:
        record = state(repo)
        assert record is not None and record["dirty"] is None and "version 0" in record["note"]
    else:
        assert state(repo) == expected and expected["changed"] == ["pkg/a.py"]
    git(repo, "config", "extensions.objectFormat", "sha256")
    record = state(repo)
    assert record is not None and record["commit"] is None and record["dirty"] is None
    assert "extensions (objectformat, refstorage) in a repository of format version 0" in record["note"]


def test_a_changed_executable_bit_is_a_change_where_core_filemode_says_so(tmp_path: Path) -> None:
    repo = make(tmp_path / "repo")
    (repo / "pkg" / "a.py").chmod(0o755)
    assert state(repo) == truth(repo) and truth(repo)["changed"] == ["pkg/a.py"]
    git(repo, "config", "core.fileMode", "false")
    assert state(repo) == truth(repo) and truth(repo)["dirty"] is False
    git(repo, "config", "core.fileMode", "true")
    (repo / "pkg" / "a.py").unlink()
    (repo / "pkg" / "a.py").symlink_to("__init__.py")  # a file turned into a symlink
    assert state(repo) == truth(repo) and truth(repo)["changed"] == ["pkg/a.py"]


def test_bytes_that_differ_only_by_a_conversion_are_what_git_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where attributes or config may convert a file (a filter driver here), git hashes the
    converted bytes: a file whose own bytes differ from the index may be unchanged for git."""
    repo = make(tmp_path / "repo")  # pkg/a.py is committed as "A = 1\n"
    git(repo, "config", "filter.upper.clean", "tr a-z A-Z")
    git(repo, "config", "filter.upper.smudge", "cat")
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "attributes").write_text("*.py filter=upper\n")
    (repo / "pkg" / "a.py").write_text("a = 1\n")  # other bytes, the same size: "A = 1\n" for git
    assert truth(repo)["dirty"] is False
    assert state(repo) == truth(repo)
    assert gitinfo.kept(repo / "pkg" / "a.py", repo / "pkg")  # kept under inotify like a read state
    (repo / "pkg" / "a.py").write_text("a = 2\n")
    assert state(repo) == truth(repo) and truth(repo)["changed"] == ["pkg/a.py"]
    monkeypatch.setenv("PATH", "")
    record = state(repo)
    assert record is not None and record["dirty"] is None
    assert record["note"].startswith("dirty state unknown: attributes apply (")
    assert "info/attributes): a file whose bytes changed may be unchanged for git" in record["note"]
    monkeypatch.undo()

    other = make(tmp_path / "other")  # the same through a committed .gitattributes file
    git(other, "config", "filter.upper.clean", "tr a-z A-Z")
    git(other, "config", "filter.upper.smudge", "cat")
    (other / ".gitattributes").write_text("*.py filter=upper\n")
    git(other, "add", ".gitattributes")
    git(other, "commit", "-q", "-m", "attributes")
    (other / "pkg" / "a.py").write_text("a = 1\n")
    assert state(other) == truth(other) and truth(other)["dirty"] is False
    index = _gitfiles.index_key(_gitfiles.find_repository(str(other)))
    layout = _gitfiles.read_layout(other / ".git")
    reason = _gitfiles.conversions(_gitfiles.find_repository(str(other)), layout, *index)
    assert reason == "the repository has .gitattributes files"
    monkeypatch.setenv("HOME", str(tmp_path))  # no user attributes or config of this machine
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    third = make(tmp_path / "third")
    git(third, "config", "core.autocrlf", "input")
    index = _gitfiles.index_key(_gitfiles.find_repository(str(third)))
    reason = _gitfiles.conversions(_gitfiles.find_repository(str(third)), layout, *index)
    assert reason == f"{third / '.git' / 'config'} sets core.autocrlf"


def test_without_conversions_a_changed_file_is_read_from_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make(tmp_path / "repo")
    (repo / "pkg" / "a.py").write_bytes(b"A = 1\r\n")
    expected = truth(repo)
    assert expected["changed"] == ["pkg/a.py"]  # no conversion: CRLF is a change
    monkeypatch.setenv("PATH", "")
    monkeypatch.setenv("HOME", str(tmp_path))  # no user config of this machine
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    assert state(repo) == expected


def test_dulwich_is_imported_only_when_the_index_or_head_is_read(tmp_path: Path) -> None:
    """Importing the package and a save whose git state is kept cost no dulwich import."""
    repo = make(tmp_path / "repo")
    script = f"""
import sys
import storage_nodes
from storage_nodes.provenance import gitinfo
assert not [m for m in sys.modules if m.startswith("dulwich")], "imported with the package"
assert gitinfo.git_state({str(tmp_path / "loose.py")!r}) is None
assert not [m for m in sys.modules if m.startswith("dulwich")], "imported for a file outside git"
print(gitinfo.git_state({str(repo / "pkg" / "a.py")!r}, {str(repo / "pkg")!r})["dirty"])
print(sorted(m for m in sys.modules if m.startswith("dulwich"))[:1])
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["False", "['dulwich']"]  # the first look reads the index: imported then
