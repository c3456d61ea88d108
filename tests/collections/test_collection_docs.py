"""The examples of docs/collections.md run as written, in order, in one directory: the
Python blocks in one namespace, then each line of the command-line block."""

from __future__ import annotations

import re
import shlex

from _docs import DOCS, run_python_blocks

from storage_nodes.cli import main
from storage_nodes.collections.collection import Collection

DOC = DOCS / "collections.md"


def test_collections_guide_examples_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    text = DOC.read_text()
    namespace, count = run_python_blocks(DOC)
    assert count
    col = namespace["col"]
    assert col.names == ["relax-300K", "relax-600K", "forces", "harmonic-run"]
    assert (tmp_path / "paper-2026.zip").exists()
    assert isinstance(col.load("harmonic-run/energy/outputs/energy"), float)
    assert col.member("relax-300K").location == "../runs/relax_300K.h5"

    shell = re.search(r"## Command line\n.*?```\n(.*?)```", text, flags=re.S)
    assert shell is not None
    commands = [shlex.split(line, comments=True) for line in shell.group(1).splitlines() if line.strip()]
    assert len(commands) >= 10
    for argv in commands:
        assert argv[0] == "storage-nodes"
        assert main(argv[1:]) == 0, (argv, capsys.readouterr().err)
    out = capsys.readouterr().out
    assert "removed 'harmonic-run'" in out and "energy: float" in out
    assert Collection.open("paper/collection.json").names == ["relax-300K", "relax-600K", "forces"]
    assert Collection.open("unpacked/collection.json").load("relax-600K", key="energy") == -3.19
