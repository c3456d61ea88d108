"""``storage-nodes collection ...``: in-process through cli.main, plus one run as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest

import storage_nodes as sn
from storage_nodes.cli import main
from storage_nodes.collection import Collection
from storage_nodes.collection_cli import run_verify


@pytest.fixture
def files(tmp_path):
    a = sn.save({"energy": -1.0}, tmp_path / "a.json")
    b = sn.save({"energy": -2.0}, tmp_path / "b.pkl")
    return a, b


def test_create_add_inspect_verify_export(tmp_path, files, capsys):
    manifest = tmp_path / "c.json"
    assert main(["collection", "create", str(manifest), "--title", "T", "--creator", "Ann", "--license", "MIT"]) == 0
    assert main(["collection", "add", str(manifest), *map(str, files), "--tag", "Cu", "--metadata", '{"k": 1}']) == 0
    col = Collection.open(manifest)
    assert col.names == ["a", "b"] and col.member("b").tags == ["Cu"] and col.member("a").metadata == {"k": 1}
    assert col.license == "MIT" and col.creator == "Ann"
    capsys.readouterr()
    assert main(["collection", "inspect", str(manifest), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in listing["root"]["children"]] == ["a", "b"]
    assert main(["collection", "verify", str(manifest)]) == 0
    assert "OK" in capsys.readouterr().out
    dest = tmp_path / "out.zip"
    assert main(["collection", "export", str(manifest), str(dest)]) == 0
    assert "ro-crate-metadata.json" in zipfile.ZipFile(dest).namelist()
    assert main(["collection", "export", str(manifest), str(dest), "--no-overwrite"]) == 1
    assert main(["collection", "unpack", str(dest), str(tmp_path / "u")]) == 0
    assert Collection.open(tmp_path / "u" / "collection.json").load("b", key="energy") == -2.0


def test_errors_exit_1_with_message_naming_the_member(tmp_path, files, capsys):
    manifest = tmp_path / "c.json"
    main(["collection", "create", str(manifest)])
    main(["collection", "add", str(manifest), str(files[0]), "--name", "first"])
    capsys.readouterr()
    assert main(["collection", "add", str(manifest), str(files[1]), "--name", "first"]) == 1
    assert "'first'" in capsys.readouterr().err
    assert main(["collection", "add", str(manifest), str(tmp_path / "ghost.json"), "--name", "ghost"]) == 1
    assert "'ghost'" in capsys.readouterr().err
    assert main(["collection", "add", str(manifest), *map(str, files), "--name", "x"]) == 1
    assert main(["collection", "create", str(tmp_path / "d.json"), "--metadata", "[1]"]) == 1
    assert "JSON object" in capsys.readouterr().err


def test_merge_command(tmp_path, files, capsys):
    a, b = tmp_path / "a.json.col", tmp_path / "b.json.col"
    for manifest, file in ((a, files[0]), (b, files[1])):
        main(["collection", "create", str(manifest)])
        main(["collection", "add", str(manifest), str(file), "--name", "same"])
    assert main(["collection", "merge", str(a), str(b)]) == 1
    assert main(["collection", "merge", str(a), str(b), "--rename"]) == 0
    assert "same-2" in capsys.readouterr().out
    assert Collection.open(a).names == ["same", "same-2"]


def test_run_verify_for_routing_storage_nodes_verify(tmp_path, files, capsys):
    manifest = tmp_path / "c.json"
    col = Collection.create(manifest)
    col.add(files[0])
    assert run_verify(str(manifest)) == 0
    files[0].unlink()
    assert run_verify(str(manifest), as_json=True) == 1
    report = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert report["ok"] is False and report["problems"][0]["kind"] == "missing"


def test_verify_in_a_fresh_process_exits_nonzero_on_tampering(tmp_path, files):
    manifest = tmp_path / "c.json"
    col = Collection.create(manifest)
    col.add(files[1], name="b")
    files[1].write_bytes(files[1].read_bytes() + b"tampered")
    out = subprocess.run(
        [sys.executable, "-m", "storage_nodes.cli", "collection", "verify", str(manifest)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1, out.stderr
    assert "b: changed since it was added" in out.stdout and "Traceback" not in out.stderr
    assert out.stderr == ""  # no progress bar when output is not a terminal


def test_top_level_verify_routes_collections_and_bundles(tmp_path, files, capsys):
    manifest = tmp_path / "c.json"
    col = Collection.create(manifest)
    col.add(files[0], name="a")
    bundle = col.export(tmp_path / "c.zip")
    assert main(["verify", str(manifest)]) == 0 and "1 member(s) checked, OK" in capsys.readouterr().out
    assert main(["verify", str(bundle), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert main(["verify", str(files[1])]) == 0  # a single stored file still goes to the versioning check
    assert "member(s) checked" not in capsys.readouterr().out
    files[0].unlink()
    assert main(["verify", str(manifest)]) == 1
    assert "a: no file at" in capsys.readouterr().out


def test_unreadable_collection_exits_2(tmp_path, capsys):
    manifest = tmp_path / "c.json"
    manifest.write_text('{"storage_nodes_collection": {"format": "storage_nodes-collection", "format_version": 7}}')
    assert main(["verify", str(manifest)]) == 2
    assert "format version 7" in capsys.readouterr().err
    assert run_verify(str(tmp_path / "missing.json")) == 2


def test_add_of_several_files_is_all_or_nothing(tmp_path, capsys):
    manifest = tmp_path / "c.json"
    main(["collection", "create", str(manifest)])
    a_h5 = sn.save({"x": 1}, tmp_path / "a.h5")
    a_json = sn.save({"x": 2}, tmp_path / "a.json")
    before = manifest.read_bytes()
    assert main(["collection", "add", str(manifest), str(a_h5), str(a_json)]) == 1
    assert "nothing added" in capsys.readouterr().err
    assert manifest.read_bytes() == before
