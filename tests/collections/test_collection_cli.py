"""``storage-nodes collection ...``: in-process through cli.main, plus one run as a user would."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile

import pytest

import storage_nodes as sn
from storage_nodes.cli import main
from storage_nodes.collections.cli import run_verify
from storage_nodes.collections.collection import Collection


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


def _python_words(text: str) -> list[str]:
    return re.findall(r"\w+=(?:True|False)|Collection\.\w+|\w+\(\)|add\(\.\.\.|remove\(", text)


def test_errors_name_the_command_line_options_not_python_arguments(tmp_path, files, capsys):
    manifest, other, zip_ = str(tmp_path / "c.json"), str(tmp_path / "o.json"), str(tmp_path / "c.zip")
    extra = sn.save({"energy": -3.0}, tmp_path / "extra.json")
    main(["collection", "create", manifest])
    main(["collection", "add", manifest, str(files[0]), "--name", "a"])
    main(["collection", "create", other])
    main(["collection", "add", other, str(extra), "--name", "a"])
    main(["collection", "export", manifest, zip_])
    capsys.readouterr()
    cases = [
        (["create", manifest], "`storage-nodes collection add`"),
        (["merge", manifest, other], "--rename"),
        (["merge", manifest, zip_], "`storage-nodes collection unpack ZIP DIRECTORY`"),
        (["add", zip_, str(extra)], "`storage-nodes collection unpack ZIP DIRECTORY`"),
        (["remove", zip_, "a"], "`storage-nodes collection unpack ZIP DIRECTORY`"),
        (["export", manifest, zip_, "--no-overwrite"], "--no-overwrite was given"),
        (["add", manifest, str(tmp_path / "." / "a.json"), "--name", "again"], "collection remove MANIFEST 'a'"),
        (["add", manifest, str(files[1]), "--tag", ""], "--tag must not be empty"),
        (["unpack", manifest, str(tmp_path / "u")], "`storage-nodes collection export`"),
    ]
    for argv, cli_words in cases:
        assert main(["collection", *argv]) == 1, argv
        err = capsys.readouterr().err
        assert cli_words in err and not _python_words(err), (argv, err)
    files[0].write_bytes(files[0].read_bytes().replace(b"-1.0", b"-9.0"))  # changed since it was added
    assert main(["collection", "export", manifest, str(tmp_path / "d.zip")]) == 1
    err = capsys.readouterr().err
    assert "`storage-nodes collection add MANIFEST FILE --replace`" in err and not _python_words(err), err
    assert main(["collection", "add", manifest, str(files[0]), "--name", "a", "--replace"]) == 0
    doc = json.loads((tmp_path / "o.json").read_text())  # a record of the same file with another checksum
    doc["members"].append({**doc["members"][0], "name": "b", "location": "a.json"})
    (tmp_path / "o.json").write_text(json.dumps(doc))
    assert main(["collection", "merge", manifest, other, "--rename"]) == 1
    err = capsys.readouterr().err
    assert "`storage-nodes collection add MANIFEST FILE --replace`" in err and not _python_words(err), err


def test_the_python_api_keeps_its_own_words(tmp_path, files):
    col = Collection.create(tmp_path / "c.json")
    other = Collection.create(tmp_path / "o.json")
    col.add(files[0], name="a")
    other.add(files[1], name="a")
    with pytest.raises(sn.DuplicateMemberError, match=r"pass rename=True$"):
        col.merge(other)
    with pytest.raises(sn.FileExistsStorageError, match="exist_ok=True"):
        Collection.create(tmp_path / "c.json")


def test_remove_command(tmp_path, files, capsys):
    manifest = str(tmp_path / "c.json")
    main(["collection", "create", manifest])
    main(["collection", "add", manifest, *map(str, files)])
    before = (tmp_path / "c.json").read_bytes()
    assert main(["collection", "remove", manifest, "a", "ghost"]) == 1
    assert "nothing removed" in capsys.readouterr().err and (tmp_path / "c.json").read_bytes() == before
    assert main(["collection", "remove", manifest, "a", "b", "a"]) == 0
    assert "removed 'a'" in capsys.readouterr().out
    assert Collection.open(manifest).names == [] and files[0].exists() and files[1].exists()


def test_every_subcommand_help_shows_placeholders_and_examples(capsys):
    from storage_nodes.cli import build_parser

    actions = ["create", "add", "remove", "inspect", "verify", "export", "merge", "unpack"]
    for action in actions:
        with pytest.raises(SystemExit):
            build_parser().parse_args(["collection", action, "--help"])
        out = capsys.readouterr().out
        usage = out.split("\n\n", 1)[0]
        assert usage == usage.replace(" manifest", "").replace(" collection\n", ""), usage  # placeholders upper case
        assert f"storage-nodes collection {action} " in out.split("examples:", 1)[1], action
    with pytest.raises(SystemExit):
        build_parser().parse_args(["collection", "--help"])
    out = capsys.readouterr().out
    assert all(a in out for a in actions)


def test_add_refuses_a_missing_or_foreign_file_before_adding_any(tmp_path, files, capsys):
    manifest = tmp_path / "c.json"
    assert main(["collection", "add", str(manifest), str(files[0])]) == 1
    assert f"`storage-nodes collection create {manifest}`" in capsys.readouterr().err
    main(["collection", "create", str(manifest)])
    foreign = tmp_path / "notes.txt"
    foreign.write_text("hello")
    before = manifest.read_bytes()
    for bad in (tmp_path / "ghost.h5", foreign):
        assert main(["collection", "add", str(manifest), str(files[0]), str(bad), str(files[1])]) == 1
        err = capsys.readouterr().err
        assert f"nothing added to {manifest}: cannot add member '{bad.stem}'" in err and str(bad) in err
        assert manifest.read_bytes() == before


def test_add_refuses_a_file_already_a_member_before_adding_any(tmp_path, files, capsys):
    manifest = tmp_path / "c.json"
    main(["collection", "create", str(manifest)])
    main(["collection", "add", str(manifest), str(files[0]), "--name", "first"])
    new = sn.save({"energy": -3.0}, tmp_path / "new.json")
    (tmp_path / "link.json").symlink_to(new)
    before = manifest.read_bytes()
    for batch in ([new, tmp_path / "." / "a.json"], [new, tmp_path / "link.json"]):
        assert main(["collection", "add", str(manifest), *map(str, batch)]) == 1
        err = capsys.readouterr().err
        assert f"nothing added to {manifest}: a file is a member once" in err and str(batch[1]) in err, err
        assert "'first'" in err or "'new'" in err
        assert manifest.read_bytes() == before
    assert main(["collection", "add", str(manifest), str(new), str(files[1])]) == 0
    assert Collection.open(manifest).names == ["first", "new", "b"]
