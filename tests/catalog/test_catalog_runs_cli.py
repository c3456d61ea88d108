"""``storage-nodes catalog runs/show/rm`` and what came close when nothing matched (issue 25).
Every test runs on SQLite and PostgreSQL, the CLI as a real process."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from _catalog_nodes import build

import storage_nodes as sn
from storage_nodes.errors import InvalidArgumentError

pytestmark = pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")


@pytest.fixture
def filled(url, tmp_path):
    with sn.Catalog(url, create=True) as cat:
        a = sn.save_workflow(build(T=300.0), tmp_path / "a.h5", catalog=cat, metadata={"sample": "Cu"}).resolve()
        b = sn.save_workflow(build(T=600.0, label="hot"), tmp_path / "b.h5", catalog=cat).resolve()
        x = sn.save(np.arange(3.0), tmp_path / "x.h5", catalog=cat).resolve()
        yield cat, url, a, b, x


def _cli(*args: str, stdin: str = "", columns: int = 200) -> tuple[int, str, str]:
    env = {**os.environ, "COLUMNS": str(columns)}
    proc = subprocess.run([sys.executable, "-m", "storage_nodes", "catalog", *args], capture_output=True, text=True,
                          timeout=300, input=stdin, env=env)  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


def test_runs_lists_the_table_fitting_the_terminal_and_as_csv_and_json(filled):
    cat, url, a, b, x = filled
    code, out, err = _cli("runs", "--catalog", url)
    assert code == 0, err
    assert f"catalog: {cat.location}" in err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["id", "created_at", "workflow", "user"] and "in.relax__T" in lines[0]
    assert len(lines) == 4 and "hot" in lines[2] and "600.0" in lines[2] and "relax_wf" in lines[3]
    code, narrow, err = _cli("runs", "--catalog", url, columns=50)
    assert code == 0 and "in.relax__T" not in narrow.splitlines()[0] and "more column(s)" in err
    code, out, _ = _cli("runs", "--catalog", url, "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["path"] for r in rows] == [str(x), str(b), str(a)] and rows[1]["in.relax__T"] == "600.0"
    assert rows[2]["meta.sample"] == "Cu"
    code, out, _ = _cli("runs", "--catalog", url, "--json", "--input", "relax__T=600")
    doc = json.loads(out)
    assert doc["catalog"] == cat.location and [r["workflow"] for r in doc["rows"]] == ["hot"]
    code, out, _ = _cli("runs", "--catalog", url, "--kind", "node", "--columns", "id,node,in.T", "--input", "T=600")
    assert out.splitlines()[0].split() == ["id", "node", "in.T"] and "_catalog_nodes.relax" in out


def test_show_a_run_lists_its_nodes_inputs_outputs_and_environment(filled):
    cat, url, _a, b, _x = filled
    (run,) = cat.find(kind="run", workflow="hot")
    code, out, err = _cli("show", run.id, "--catalog", url)
    assert code == 0, err
    assert str(b) in out and "relax: _catalog_nodes.relax" in out and "T = 600.0" in out and "out energy, forces" in out
    assert "env      python" in out
    code, out, _ = _cli("show", run.id, "--catalog", url, "--json")
    doc = json.loads(out)
    assert doc["id"] == run.id and sorted(n["label"] for n in doc["nodes"]) == ["make", "relax", "report"]
    assert "python" in doc["environment"]
    code, _, err = _cli("show", "r999999", "--catalog", url)
    assert code != 0 and "no entry r999999" in err


def test_rm_asks_unless_yes_and_deletes_files_with_files(filled):
    cat, url, a, b, _x = filled
    (run,) = cat.find(kind="run", workflow="relax_wf")
    code, out, _ = _cli("rm", run.id, "--files", "--catalog", url, stdin="n\n")
    assert code == 1 and "nothing removed" in out and a.exists() and len(cat.find(workflow="relax_wf")) == 3
    code, out, _ = _cli("rm", run.id, "--files", "--catalog", url, stdin="y\n")
    assert code == 0 and f"deleted {a}" in out and not a.exists() and cat.find(workflow="relax_wf") == []
    (hot,) = cat.find(kind="run", workflow="hot")
    code, out, _ = _cli("rm", hot.id, "--yes", "--json", "--catalog", url)
    assert json.loads(out)["removed"] == [hot.id] and b.exists()  # without --files the file stays
    code, _, err = _cli("rm", "r999999", "--yes", "--catalog", url)
    assert code != 0 and "no entry r999999" in err


def test_nothing_found_says_what_came_close(filled, tmp_path):
    cat, url, *_ = filled
    found = cat.find(node="x.relax", inputs={"T": "600"}, metadata={"Sample": "Cu"}, explain=True)
    assert found == [] and len(found.near) == 3
    assert found.near[0] == "no node 'x.relax'; recorded: _catalog_nodes.relax"
    assert (
        found.near[1].startswith("input 'T' never held '600' (str); it held e.g. ") and "600.0 (float)" in found.near[1]
    )
    assert found.near[2] == "no metadata key 'Sample'; recorded keys: sample"
    assert cat.find(workflow="hott", explain=True).near == ["no workflow 'hott'; recorded: hot"]
    assert cat.find(workflow="hot", explain=True).near == []  # something found: nothing to explain
    with pytest.raises(InvalidArgumentError, match=r"did you mean '_catalog_nodes\.relax'"):
        cat.find(node="relax")
    with pytest.raises(InvalidArgumentError, match=r"did you mean '_catalog_nodes\.relax'"):
        cat.table(node="relax")
    code, out, err = _cli("find", "--catalog", url, "--input", "T=700", "--meta", "Sample=Cu")
    assert code == 0 and "no matching entries" in out
    assert "close: input 'T' never held 700 (int)" in out and "recorded keys: sample" in out
    code, _, err = _cli("find", "--catalog", url, "--node", "relax")
    assert code != 0 and "did you mean '_catalog_nodes.relax'" in err
    code, out, _ = _cli("runs", "--catalog", url, "--workflow", "hott")
    assert "close: no workflow 'hott'; recorded: hot" in out
