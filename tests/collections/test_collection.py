"""Collections: manifest, add, inspect, load, verify, merge (bundles: test_collection_bundle.py)."""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import storage_nodes as sn
from storage_nodes.collections.collection import Collection, is_collection, verify


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    """Two stored results in two different directories, of two backends."""
    (tmp_path / "runs").mkdir()
    (tmp_path / "scratch" / "other").mkdir(parents=True)
    a = sn.save({"energy": -3.25, "forces": np.arange(9.0).reshape(3, 3)}, tmp_path / "runs" / "relax_300K.pkl")
    b = sn.save({"energy": -4.5, "steps": [1, 2, 3]}, tmp_path / "scratch" / "other" / "relax_600K.json")
    return {"a": a, "b": b}


@pytest.fixture
def col(tmp_path: Path, runs: dict[str, Path]) -> Collection:
    (tmp_path / "paper").mkdir()
    c = Collection.create(
        tmp_path / "paper" / "collection.json",
        title="Cu relaxations",
        description="two runs",
        creator="A. Researcher",
        license="CC-BY-4.0",
        metadata={"project": "Cu"},
    )
    c.add(runs["a"], name="relax-300K", tags=["Cu", "300K"], metadata={"T": 300})
    c.add(runs["b"], name="relax-600K")
    return c


def _manifest(col: Collection) -> dict:
    return json.loads(col.path.read_text())


def test_manifest_is_readable_json_with_header_and_relative_locations(col, runs):
    doc = _manifest(col)
    assert next(iter(doc)) == "storage_nodes_collection"
    assert doc["storage_nodes_collection"] == {"format": "storage_nodes-collection", "format_version": 1}
    assert doc["title"] == "Cu relaxations" and doc["creator"] == "A. Researcher"
    assert doc["metadata"] == {"project": "Cu"} and doc["created"].endswith("Z")
    a, b = doc["members"]
    assert a["name"] == "relax-300K" and a["location"] == "../runs/relax_300K.pkl"
    assert b["location"] == "../scratch/other/relax_600K.json"
    assert a["backend"] == "pickle" and b["backend"] == "json"
    assert a["size"] == runs["a"].stat().st_size
    import hashlib

    assert a["sha256"] == hashlib.sha256(runs["a"].read_bytes()).hexdigest()
    assert a["tags"] == ["Cu", "300K"] and a["metadata"] == {"T": 300}
    assert a["environment"]["backend"] == "pickle" and "numpy" in a["environment"]["modules"]


def test_json_backend_does_not_claim_the_manifest_and_is_collection_sniffs_it(col, runs):
    assert is_collection(col.path)
    assert not is_collection(runs["b"])  # a json result file
    assert not is_collection(col.path.parent / "missing.json")
    with pytest.raises(sn.BackendNotFoundError):
        sn.registry.detect(col.path)


def test_location_outside_shared_tree_is_absolute(tmp_path, runs):
    col = Collection.create(tmp_path / "c.json")
    col.add(runs["a"], name="a")
    assert _manifest(col)["members"][0]["location"] == "runs/relax_300K.pkl"
    from storage_nodes.collections._manifest import location_for

    assert location_for(Path("/elsewhere/x.pkl"), tmp_path / "c.json") == "/elsewhere/x.pkl"


def test_reopen_and_member_records(col):
    again = Collection.open(col.path)
    assert again.names == ["relax-300K", "relax-600K"] and len(again) == 2 and "relax-600K" in again
    assert again.title == "Cu relaxations" and again.license == "CC-BY-4.0" and again.metadata == {"project": "Cu"}
    assert again.member("relax-300K").tags == ["Cu", "300K"]
    with pytest.raises(sn.KeyNotFoundError, match="relax-999K"):
        again.member("relax-999K")


def test_inspect_gives_one_tree_without_loading(col, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("inspect must not load data")

    monkeypatch.setattr("storage_nodes.api.load", refuse)
    listing = col.inspect()
    assert isinstance(listing, sn.Listing) and listing.backend == "collection"
    assert [c.name for c in listing.root.children] == ["relax-300K", "relax-600K"]
    assert listing["relax-300K/forces"].shape == (3, 3)
    assert listing["relax-600K/steps"].length == 3
    assert listing.root.children[0].info["tags"] == ["Cu", "300K"]
    assert "relax-300K" in str(listing) and "forces" in str(listing)
    assert listing.metadata["title"] == "Cu relaxations"
    json.dumps(listing.to_dict())


def test_inspect_marks_missing_member(col, runs):
    runs["b"].unlink()
    listing = col.inspect()
    assert listing["relax-600K"].type == "missing"
    assert "relax_600K.json" in listing["relax-600K"].info["error"]


def test_load_whole_and_partial(col):
    assert col.load("relax-600K") == {"energy": -4.5, "steps": [1, 2, 3]}
    assert col.load("relax-300K", key="energy") == -3.25
    assert col.load("relax-600K/steps/2") == 3
    assert col.load("relax-600K/steps", key="0") == 1
    with pytest.raises(sn.KeyNotFoundError, match="nope"):
        col.load("nope")
    with pytest.raises(sn.UnsafeLoadError):
        col.load("relax-300K", safe=True)  # keyword arguments go to sn.load


def test_load_enforces_recorded_backend(col, runs):
    sn.save({"energy": 0.0}, runs["a"], backend="json")  # replaced by a file of another format
    with pytest.raises(sn.CorruptFileError, match="pickle"):
        col.load("relax-300K")


def test_add_missing_file_names_member_and_leaves_manifest_identical(col, tmp_path):
    before = col.path.read_bytes()
    with pytest.raises(sn.FileNotFoundStorageError, match="'ghost'") as info:
        col.add(tmp_path / "nope.pkl", name="ghost")
    assert info.value.key == "ghost"
    assert col.path.read_bytes() == before


def test_add_duplicate_name_and_replace(col, runs, tmp_path):
    before = col.path.read_bytes()
    other = sn.save({"energy": -3.5}, tmp_path / "runs" / "relax_300K_v2.json")
    with pytest.raises(sn.DuplicateMemberError, match="relax-300K") as info:
        col.add(other, name="relax-300K")
    assert info.value.key == "relax-300K" and isinstance(info.value, ValueError)
    assert "../runs/relax_300K.pkl" in str(info.value)  # names what holds the name now
    assert col.path.read_bytes() == before
    col.add(other, name="relax-300K", replace=True)
    assert Collection.open(col.path).member("relax-300K").backend == "json"


def test_the_same_file_under_another_spelling_is_one_member(col, runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "sub").mkdir()
    (tmp_path / "runs-link").symlink_to(tmp_path / "runs", target_is_directory=True)
    before = col.path.read_bytes()
    spellings = ["./runs/relax_300K.pkl", "runs/sub/../relax_300K.pkl", str(runs["a"]), "runs-link/relax_300K.pkl"]
    for spelling in spellings:
        with pytest.raises(sn.DuplicateMemberError) as info:
            col.add(spelling, name="again")
        message = str(info.value)
        assert "'relax-300K'" in message and "'../runs/relax_300K.pkl'" in message and "'again'" in message
        assert info.value.key == "again"
    assert col.path.read_bytes() == before
    with pytest.raises(sn.DuplicateMemberError, match="already member 'relax-300K'"):
        col.add("runs/sub/../relax_300K.pkl", name="relax-300K")  # its own name: replace=True re-records it
    col.add("./runs/sub/../relax_300K.pkl", name="relax-300K", replace=True)
    assert col.names == ["relax-300K", "relax-600K"]
    assert col.member("relax-300K").location == "../runs/relax_300K.pkl"
    copy = tmp_path / "runs" / "copy.pkl"
    copy.write_bytes(runs["a"].read_bytes())  # the same content in another file is another member
    assert col.add(copy).location == "../runs/copy.pkl"


def test_locations_are_normalized_and_dot_dot_follows_links_like_the_os(tmp_path, monkeypatch):
    from storage_nodes.collections._manifest import location_for, normalized

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "deep").mkdir(parents=True)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "link").symlink_to(tmp_path / "data" / "deep", target_is_directory=True)
    decoy = sn.save({"x": "decoy"}, tmp_path / "runs" / "a.json")
    real = sn.save({"x": "real"}, tmp_path / "data" / "a.json")
    col = Collection.create(tmp_path / "paper" / "c.json")
    member = col.add("runs/link/../a.json", name="through-link")  # the OS reads data/a.json
    assert member.location == "../data/a.json" and col.load("through-link") == {"x": "real"}
    assert col.verify().ok
    assert col.add("./runs/./a.json").location == "../runs/a.json"
    assert normalized(Path("runs/./x/../a.json")) == decoy
    assert location_for(real, tmp_path / "paper" / "sub" / ".." / "c.json") == "../data/a.json"
    # a manifest directory reached through a link: '..' from it would leave the link, so absolute
    (tmp_path / "pub").symlink_to(tmp_path / "data" / "deep", target_is_directory=True)
    assert location_for(decoy, tmp_path / "pub" / "c.json") == decoy.as_posix()


def test_add_foreign_file_and_bad_arguments(col, tmp_path):
    foreign = tmp_path / "notes.txt"
    foreign.write_text("hello")
    before = col.path.read_bytes()
    with pytest.raises(sn.BackendNotFoundError, match="'notes'"):
        col.add(foreign)
    for bad in ("", "a/b", " x", "..", "a\x00b"):
        with pytest.raises(sn.InvalidArgumentError):
            col.add(col.path, name=bad)
    with pytest.raises(sn.InvalidArgumentError):
        col.add(col.path, name="x", tags="Cu")
    with pytest.raises(sn.MetadataError):
        col.add(col.path, name="x", metadata={"f": object()})
    assert col.path.read_bytes() == before


def test_add_default_name_is_file_stem(tmp_path, runs):
    col = Collection.create(tmp_path / "c.json")
    assert col.add(runs["a"]).name == "relax_300K"


def test_create_refuses_existing_unless_exist_ok(col):
    before = col.path.read_bytes()
    with pytest.raises(sn.FileExistsStorageError):
        Collection.create(col.path)
    assert Collection.create(col.path, exist_ok=True).names == col.names
    assert col.path.read_bytes() == before


def test_open_errors(tmp_path, runs):
    with pytest.raises(sn.FileNotFoundStorageError):
        Collection.open(tmp_path / "none.json")
    with pytest.raises(sn.CorruptFileError, match="not a storage_nodes collection"):
        Collection.open(runs["b"])
    newer = tmp_path / "newer.json"
    newer.write_text(
        json.dumps({"storage_nodes_collection": {"format": "storage_nodes-collection", "format_version": 9}})
    )
    with pytest.raises(sn.CorruptFileError, match="version 9"):
        Collection.open(newer)
    twice = tmp_path / "twice.json"
    member = {"name": "x", "location": "a", "backend": "json", "size": 1, "sha256": "0"}
    twice.write_text(
        json.dumps(
            {
                "storage_nodes_collection": {"format": "storage_nodes-collection", "format_version": 1},
                "members": [member, member],
            }
        )
    )
    with pytest.raises(sn.CorruptFileError, match="'x' twice"):
        Collection.open(twice)


def test_create_makes_parent_directories_and_open_accepts_the_directory(tmp_path):
    col = Collection.create(tmp_path / "new" / "deeper" / "collection.json", title="t")
    assert Collection.open(tmp_path / "new" / "deeper").title == "t" and col.path.exists()
    with pytest.raises(sn.CorruptFileError):
        Collection.open(tmp_path / "new")  # a directory without a manifest


def test_remove(col, runs):
    col.remove("relax-600K")
    assert Collection.open(col.path).names == ["relax-300K"] and runs["b"].exists()
    with pytest.raises(sn.KeyNotFoundError):
        col.remove("relax-600K")


def test_verify_clean_then_missing_and_changed(col, runs):
    report = col.verify()
    assert report.ok and bool(report) and report.checked == 2 and report.problems == []
    assert "OK" in str(report)
    sn.save({"energy": 99.0, "steps": []}, runs["b"])  # changed in place
    runs["a"].unlink()
    report = verify(col.path)
    assert not report.ok
    kinds = {p.member: p.kind for p in report.problems}
    assert kinds == {"relax-300K": "missing", "relax-600K": "checksum"}
    assert "relax-300K" in str(report) and "ERROR" in str(report)
    assert report.to_dict()["ok"] is False


def _fake_old_numpy(col: Collection, version: str) -> None:
    doc = _manifest(col)
    doc["members"][0]["environment"]["modules"]["numpy"]["version"] = version
    col.path.write_text(json.dumps(doc))


def test_verify_environment_differences_follow_policy(col):
    _fake_old_numpy(col, "1.0.0")  # a breaking (major) difference
    col.reload()
    report = col.verify()
    assert not report.ok
    (problem,) = report.problems
    assert problem.kind == "environment" and problem.member == "relax-300K" and "numpy" in problem.message
    assert col.verify(policy="warn").ok and col.verify(policy="warn").problems
    assert col.verify(policy="ignore").problems == []
    assert not col.verify(policy="strict").ok
    with pytest.raises(sn.InvalidArgumentError):
        col.verify(policy="lenient")


def test_verify_minor_difference_is_a_warning_unless_strict(col):
    major = int(np.__version__.split(".")[0])
    _fake_old_numpy(col, f"{major}.0.0" if np.__version__ != f"{major}.0.0" else f"{major}.1.0")
    col.reload()
    assert col.verify().ok and col.verify().problems
    assert not col.verify(policy="strict").ok


def test_merge_rebases_locations_and_skips_identical(col, tmp_path, runs):
    (tmp_path / "elsewhere" / "deep").mkdir(parents=True)
    other = Collection.create(tmp_path / "elsewhere" / "deep" / "c.json", title="other")
    other.add(runs["b"], name="relax-600K")  # the same file and checksum as in col
    c = sn.save({"energy": -5.0}, tmp_path / "runs" / "relax_900K.json")
    other.add(c, name="relax-900K")
    added = col.merge(other.path)
    assert added == {"relax-900K": "relax-900K"}
    merged = Collection.open(col.path)
    assert merged.names == ["relax-300K", "relax-600K", "relax-900K"]
    assert merged.member("relax-900K").location == "../runs/relax_900K.json"
    assert merged.load("relax-900K", key="energy") == -5.0
    assert col.merge(col) == {}  # merging with itself changes nothing


def test_merge_skips_a_file_already_here_under_another_name_and_refuses_a_stale_record(col, tmp_path, runs):
    other = Collection.create(tmp_path / "other" / "c.json")
    other.add(runs["a"], name="same-file")  # relax-300K here
    c = sn.save({"energy": -5.0}, tmp_path / "runs" / "relax_900K.json")
    other.add(c, name="relax-900K")
    assert col.merge(other, rename=True) == {"relax-900K": "relax-900K"}
    assert col.names == ["relax-300K", "relax-600K", "relax-900K"]
    (tmp_path / "runs" / "sub").mkdir()
    doc = json.loads(other.path.read_text())  # the other record of relax-300K's file is outdated
    doc["members"][0]["sha256"] = "0" * 64
    doc["members"][0]["location"] = "./../runs/sub/../relax_300K.pkl"  # and spelled oddly by hand
    other.path.write_text(json.dumps(doc))
    before = col.path.read_bytes()
    with pytest.raises(sn.DuplicateMemberError, match="'same-file' there is 'relax-300K' here") as info:
        col.merge(other.path, rename=True)
    assert info.value.key == "relax-300K" and col.path.read_bytes() == before


def test_merge_clash_is_an_error_unless_rename(col, tmp_path):
    other = Collection.create(tmp_path / "o.json")
    clash = sn.save({"energy": 1.0}, tmp_path / "clash.json")
    other.add(clash, name="relax-300K")
    before = col.path.read_bytes()
    with pytest.raises(sn.DuplicateMemberError, match="relax-300K"):
        col.merge(other)
    assert col.path.read_bytes() == before
    assert col.merge(other, rename=True) == {"relax-300K": "relax-300K-2"}
    assert col.load("relax-300K-2", key="energy") == 1.0
    with pytest.raises(sn.InvalidArgumentError):
        col.merge(42)  # type: ignore[arg-type]


def test_concurrent_adds_from_threads_lose_no_member(tmp_path):
    col = Collection.create(tmp_path / "c.json")
    paths = [sn.save({"i": i}, tmp_path / f"r{i}.json") for i in range(16)]
    errors: list[BaseException] = []

    def worker(chunk: list[Path]) -> None:
        try:
            mine = Collection.open(col.path)
            for p in chunk:
                mine.add(p)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(paths[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(Collection.open(col.path).names) == sorted(f"r{i}" for i in range(16))


def test_h5_member_partial_load_and_inspect(tmp_path):
    big = np.arange(1000.0)
    path = sn.save({"energy": -1.5, "positions": big}, tmp_path / "run.h5")
    col = Collection.create(tmp_path / "c.json")
    col.add(path, name="run")
    assert col.member("run").backend == "h5"
    assert col.inspect()["run/positions"].shape == (1000,)
    assert col.load("run/energy") == -1.5
    bundle = col.export(tmp_path / "x.zip")
    with Collection.open(bundle) as b:
        assert np.array_equal(b.load("run", key="positions"), big)
        assert b.verify().ok


def _add_in_process(manifest: str, paths: list[str]) -> None:
    col = Collection.open(manifest)
    for p in paths:
        col.add(p)


def test_concurrent_adds_from_processes_lose_no_member(tmp_path):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    col = Collection.create(tmp_path / "c.json")
    paths = [str(sn.save({"i": i}, tmp_path / f"p{i}.json")) for i in range(8)]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_add_in_process, [str(col.path)] * 2, [paths[0::2], paths[1::2]]))
    assert sorted(Collection.open(col.path).names) == sorted(f"p{i}" for i in range(8))


def test_member_of_any_backend(tmp_path):
    col = Collection.create(tmp_path / "c.json")
    for backend, suffix in (("pickle", "pkl"), ("cloudpickle", "cpkl"), ("json", "json"), ("h5", "h5")):
        col.add(sn.save([1, 2], tmp_path / f"x.{suffix}"), name=backend)
        assert col.member(backend).backend == backend
        assert col.load(backend) == [1, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert col.verify().ok


def test_wrong_argument_types_are_invalid_argument_errors(col):
    for call in (
        lambda: Collection.create(123),
        lambda: Collection.open(None),
        lambda: col.add(5),
        lambda: col.load(5),
        lambda: col.verify(policy=3),
        lambda: col.export(3),
        lambda: col.unpack(3),
    ):
        with pytest.raises(sn.InvalidArgumentError):
            call()


def test_os_errors_while_writing_are_storage_errors_and_change_nothing(col, runs, tmp_path, monkeypatch):
    import errno
    import os

    new = sn.save({"energy": 0.0}, tmp_path / "runs" / "new.json")
    before = col.path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(sn.StorageError, match="No space left") as info:
        col.add(new, name="again")
    assert not isinstance(info.value, FileNotFoundError)
    with pytest.raises(sn.StorageError, match="No space left"):
        col.export(tmp_path / "x.zip")
    monkeypatch.undo()
    assert col.path.read_bytes() == before and not (tmp_path / "x.zip").exists()
    assert not list(col.path.parent.glob(".sn-tmp-*")) and not list(tmp_path.glob(".sn-tmp-*"))


def test_verify_reports_a_damaged_environment_record_instead_of_crashing(col):
    doc = _manifest(col)
    doc["members"][0]["environment"]["modules"]["numpy"] = ["not", "a", "record"]
    col.path.write_text(json.dumps(doc))
    col.reload()
    report = col.verify()
    assert not report.ok
    assert any(p.kind == "environment" and "unreadable" in p.message for p in report.problems)


def test_member_repr_is_one_line_without_the_environment_record(tmp_path):
    path = sn.save({"a": 1}, tmp_path / "run.h5")
    col = sn.Collection.create(tmp_path / "c" / "collection.json", title="t")
    m = col.add(path, name="run-1", tags=["Cu"])
    assert repr(m) == f"<Member 'run-1': ../run.h5 (h5, {m.size} bytes, sha256 {m.sha256[:12]}..., tags ['Cu'])>"
    assert "python" not in repr(m) and m.environment["python"]
