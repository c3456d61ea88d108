"""What a newcomer reads first: every command's --help explains itself with examples, and
`storage-nodes demo` says where its files go (in process: argparse and printing only)."""

from __future__ import annotations

import pytest

from storage_nodes import cli

COMMANDS = [
    [],
    ["demo"],
    ["inspect"],
    ["verify"],
    ["backends"],
    ["collection"],
    *(["collection", a] for a in ("create", "add", "inspect", "verify", "export", "merge", "unpack")),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "main")
def test_every_help_has_a_description(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([*command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    usage, _, rest = out.partition("\n\n")
    assert usage.startswith("usage: storage-nodes")
    assert not rest.startswith(("positional arguments", "options")), f"{command}: no description"
    if command != ["backends"]:
        examples = out.split("examples:\n", 1)[1].split("\n\n")[0].splitlines()
        assert examples and all(line.startswith("  storage-nodes ") for line in examples)


def test_demo_into_a_file_is_one_error_line(tmp_path, capsys):
    target = tmp_path / "results.h5"
    target.write_bytes(b"keep me")
    assert cli.main(["demo", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(target) in err and "give a directory" in err
    assert target.read_bytes() == b"keep me"


def test_demo_says_where_the_files_went(tmp_path, capsys, monkeypatch):
    import storage_nodes.demo

    monkeypatch.setattr(storage_nodes.demo, "run_demo", lambda directory: 0)  # the demo itself: test_demo.py
    assert cli.main(["demo", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert f"files go to {(tmp_path / 'out').resolve()}" in out
    assert f"storage-nodes inspect {tmp_path / 'out' / 'results.h5'}" in out
    assert cli.main(["demo"]) == 0
    assert "temporary directory" in capsys.readouterr().out


def test_inspect_routes_collections_like_verify(tmp_path, capsys):
    import storage_nodes as sn

    member = sn.save({"energy": -1.5, "meta": {"T": 300}}, tmp_path / "run.json")
    col = sn.Collection.create(tmp_path / "paper" / "collection.json", title="t")
    col.add(member, name="relax")
    bundle = col.export(tmp_path / "paper.zip")
    for target in (col.path, bundle):
        assert cli.main(["inspect", str(target)]) == 0
        out = capsys.readouterr().out
        assert "/: Collection, len=1" in out and "└── relax: dict, len=2" in out
        assert cli.main(["inspect", str(target), "--key", "relax/meta/T"]) == 0
        assert "relax/meta/T: int" in capsys.readouterr().out
        assert cli.main(["inspect", str(target), "--key", "relax/nope"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "'relax/nope'" in err


def test_backends_lists_capabilities_in_words(capsys):
    assert cli.main(["backends"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[:-1]}
    assert sorted(rows) == ["cloudpickle", "h5", "json", "pickle"]
    assert rows["h5"].endswith("safe load  browse, partial load, update")
    assert "runs code on load" in rows["pickle"] and "supports_" not in "".join(lines)
    assert lines[-1] == "other suffixes save with 'h5'; choose with save(..., backend=NAME)"


def test_a_missing_key_points_at_the_inspect_command_not_the_python_call(tmp_path, capsys):
    import storage_nodes as sn

    for name in ("r.h5", "r.json"):
        path = sn.save({"meta": {"T": 300}, "x": 1.0}, tmp_path / name)
        assert cli.main(["inspect", str(path), "--key", "meta/nope"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"`storage-nodes inspect {path}` to list the keys" in err
        assert "storage_nodes.inspect(" not in err
