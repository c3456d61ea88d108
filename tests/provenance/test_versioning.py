"""Policies on hand-made records: what differs, what each policy refuses, how it is reported."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from _docs import DOCS, run_python_blocks

import storage_nodes as sn
from storage_nodes import api, cli
from storage_nodes.provenance import versioning
from storage_nodes.provenance.versioning import Difference, breaking_version_change, compare
from tests._objects import Point

PY = {"version": "3.11.7", "implementation": "CPython"}


def module(version: str | None = "1.2.0", commit: str | None = "a" * 40, dirty: bool | None = False, **sources: str):
    git = None if commit is None else {"commit": commit, "dirty": dirty}
    return {"package": "mypkg", "distribution": "my-pkg", "version": version, "git": git, "sources": sources}


def record(**modules: dict[str, Any]) -> dict[str, Any]:
    return {"python": PY, "modules": {name.replace("_", "."): rec for name, rec in modules.items()}}


@pytest.mark.parametrize(
    ("old", "new", "breaking"),
    [
        ("1.2.0", "1.9.3", False),
        ("1.2.0", "2.0.0", True),
        ("0.3.1", "0.3.9", False),
        ("0.3.1", "0.4.0", True),
        ("1", "1.1", False),
        ("v2.0", "2.1rc1", False),
        ("1.2.0", None, True),
        ("weird", "other", True),
    ],
)
def test_breaking_version_change(old: str, new: str | None, breaking: bool) -> None:
    assert breaking_version_change(old, new) is breaking


def test_each_kind_of_difference_reads_module_stored_now() -> None:
    stored = record(mypkg_core=module(Model="1" * 64), mypkg_util=module(), other_mod={**module(), "package": "other"})
    now = record(
        mypkg_core={**module("2.0.0", "b" * 40, True, Model="2" * 64), "found": True},
        mypkg_util={**module("2.0.0", "b" * 40, True), "found": True},
        other_mod={**module(), "found": False},
    )
    now["python"] = {"version": "3.12.1", "implementation": "CPython"}
    assert [str(d) for d in compare(stored, now)] == [
        "python: stored CPython 3.11, now CPython 3.12",
        "mypkg.core: stored my-pkg==1.2.0, now my-pkg==2.0.0",
        f"mypkg.core (git commit): stored {'a' * 40}, now {'b' * 40}",
        "mypkg.core (git dirty): stored clean, now dirty",
        "mypkg.core.Model (source): stored 111111111111, now 222222222222",
        "other.mod: stored my-pkg==1.2.0, now not installed",
    ]  # version and git once per package, not again for mypkg.util
    assert [d.breaking for d in compare(stored, now)] == [False, True, False, False, False, True]


def test_no_difference_when_equal_partial_or_plain_data() -> None:
    stored = record(mypkg_core=module(Model="1" * 64))
    assert compare(stored, {**stored, "modules": {"mypkg.core": {**module(Model="1" * 64), "found": True}}}) == []
    assert compare(stored, {"python": PY, "modules": {}}) == []  # module not checked (partial load)
    assert compare({"python": PY, "modules": {}}, {"python": {"version": "3.13.0"}, "modules": {}}) == []


def test_vanished_source_and_git_appearing_are_differences() -> None:
    stored = record(mypkg_core=module(commit=None, Model="1" * 64))
    now = record(mypkg_core={**module(), "found": True})
    assert [str(d) for d in compare(stored, now)] == [
        f"mypkg.core (git commit): stored unknown, now {'a' * 40}",
        "mypkg.core.Model (source): stored 111111111111, now not found",
    ]


@pytest.fixture
def changed(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A stored record whose package now has a new minor version (what current_record returns)."""
    stored = record(mypkg_core=module())
    now = record(mypkg_core={**module("1.3.0"), "found": True})
    monkeypatch.setattr(versioning, "current_record", lambda stored, **kw: now)
    return stored


def test_policies_on_a_minor_version_change(changed: dict[str, Any]) -> None:
    assert versioning.check_environment(changed, "ignore") == []
    with pytest.warns(sn.VersionMismatchWarning, match=re.escape("stored my-pkg==1.2.0, now my-pkg==1.3.0")) as w:
        assert len(versioning.check_environment(changed, "warn", path="f.pkl")) == 1
    assert w[0].filename == __file__  # the warning points at the caller, not at storage_nodes
    with pytest.warns(sn.VersionMismatchWarning):
        versioning.check_environment(changed, "compatible", path="f.pkl")
    with pytest.raises(sn.VersionMismatchError, match="'strict' policy") as err:
        versioning.check_environment(changed, "strict", path="f.pkl", key="a/b")
    assert err.value.differences == ["mypkg.core: stored my-pkg==1.2.0, now my-pkg==1.3.0"]
    assert err.value.path == "f.pkl" and err.value.key == "a/b" and "(key 'a/b')" in str(err.value)


def test_callable_policy_sees_both_records_and_refuses_by_false_or_raising(changed: dict[str, Any]) -> None:
    calls: list[tuple[dict[str, Any], dict[str, Any]]] = []
    assert versioning.check_environment(changed, lambda s, n: calls.append((s, n))) == []
    assert calls[0][0] is changed and calls[0][1]["modules"]["mypkg.core"]["version"] == "1.3.0"
    with pytest.raises(sn.VersionMismatchError, match="'callable' policy"):
        versioning.check_environment(changed, lambda s, n: False, path="f.pkl")

    def mine(stored: dict[str, Any], now: dict[str, Any]) -> None:
        raise RuntimeError("not in my lab")

    with pytest.raises(RuntimeError, match="not in my lab"):
        versioning.check_environment(changed, mine)
    with pytest.raises(sn.VersionMismatchError, match=re.escape("(no difference found; the callable refused)")):
        versioning.check_environment({"modules": {}}, lambda s, n: False, path="plain.json")


def test_unknown_policy_is_an_argument_error(tmp_path: Path) -> None:
    path = sn.save({"a": 1}, tmp_path / "a.json")
    with pytest.raises(sn.InvalidArgumentError):
        sn.load(path, version_policy="loose")  # type: ignore[arg-type]
    with pytest.raises(sn.InvalidArgumentError, match="version_policy must be one of"):
        versioning.check_environment({}, "loose")
    with pytest.raises(sn.InvalidArgumentError):
        sn.verify(path, policy="loose")


def test_verify_without_differences(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = sn.save(Point(1, 2), tmp_path / "p.pkl")
    assert sn.verify(path, policy="strict") == []
    assert api.check_record(path, "strict") == ([], [])
    assert cli.main(["verify", str(path)]) == 0
    assert "the environment matches the stored record" in capsys.readouterr().out


def test_verify_reports_and_refuses(tmp_path: Path, changed: dict[str, Any], capsys, monkeypatch) -> None:
    monkeypatch.setattr(sn.api, "environment", lambda path: changed)
    path = str(tmp_path / "p.pkl")
    assert [str(d) for d in sn.verify(path)] == ["mypkg.core: stored my-pkg==1.2.0, now my-pkg==1.3.0"]
    with pytest.raises(sn.VersionMismatchError):
        sn.verify(path, policy="strict")
    assert sn.verify(path, policy="compatible")[0].what == "version"
    assert api.check_record(path, "compatible")[1] == []
    assert api.check_record(path, lambda s, n: False)[1] == api.check_record(path, "ignore")[0] != []
    assert cli.main(["verify", path]) == 1
    out = capsys.readouterr().out
    assert "1 difference(s), refused by the 'strict' policy" in out
    assert "! mypkg.core: stored my-pkg==1.2.0, now my-pkg==1.3.0" in out
    assert cli.main(["verify", path, "--policy", "compatible", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_code"] == 0 and doc["differences"][0]["refused"] is False
    assert doc["differences"][0]["stored"] == "my-pkg==1.2.0" and doc["differences"][0]["breaking"] is False


def test_verify_unreadable_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["verify", str(tmp_path / "missing.pkl")]) == 2
    assert "missing.pkl" in capsys.readouterr().err


def test_load_runs_the_check_before_rebuilding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = sn.save({"p": Point(1, 2)}, tmp_path / "p.pkl")
    stored = sn.environment(path)
    fake_now = {**stored, "modules": {"tests._objects": {**stored["modules"]["tests._objects"], "version": "9"}}}
    fake_now["modules"]["tests._objects"]["found"] = True
    monkeypatch.setattr(versioning, "current_record", lambda stored, **kw: fake_now)
    rebuilt: list[int] = []
    monkeypatch.setattr(Point, "__setstate__", lambda self, state: rebuilt.append(1), raising=False)
    with pytest.raises(sn.VersionMismatchError, match=re.escape("tests._objects: stored unknown, now tests==9")):
        sn.load(path, version_policy="strict")
    assert rebuilt == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sn.load(path, version_policy="ignore")
    assert rebuilt == [1]


def test_difference_is_plain_data() -> None:
    d = Difference("m", "git dirty", False, True, False)
    assert d.to_dict() == {
        "module": "m",
        "what": "git dirty",
        "stored": False,
        "now": True,
        "breaking": False,
        "message": "m (git dirty): stored clean, now dirty",
    }


def test_versioning_doc_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _, count = run_python_blocks(DOCS / "versioning.md")
    assert count >= 3


@pytest.mark.parametrize(
    "damaged",
    [["a list"], {"modules": ["m"]}, {"modules": {"m": "x"}}, {"modules": {"m": {"git": "abc"}}}],
)
def test_damaged_record_is_a_corrupt_file_error_unless_ignored(damaged: Any) -> None:
    with pytest.raises(sn.CorruptFileError, match="damaged environment record"):
        versioning.check_environment(damaged, "warn", path="f.pkl")
    assert versioning.check_environment(damaged, "ignore", path="f.pkl") == []


def test_verify_says_where_missing_modules_are_looked_up(tmp_path: Path, capsys, monkeypatch) -> None:
    """`storage-nodes verify` (a console script) does not see modules in the current
    directory, so a module beside the user's script read as 'not installed'."""
    path = sn.save(Point(1, 2), tmp_path / "p.pkl")
    record = sn.environment(path)
    record["modules"]["snreview_beside_script"] = {"package": "snreview_beside_script", "version": None}
    monkeypatch.setattr(sn.api, "environment", lambda p: record)
    assert cli.main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "snreview_beside_script: stored present, now not installed" in out
    assert "python -m storage_nodes verify FILE" in out
    assert cli.main(["verify", str(path), "--policy", "warn"]) == 0
    assert "python -m storage_nodes" in capsys.readouterr().out
