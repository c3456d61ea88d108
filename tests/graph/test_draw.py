"""``StoredWorkflow.draw()`` and ``storage-nodes inspect --draw``: the stored recipe as a
graph with the small stored values, rendered by Graphviz's ``dot`` to real SVG files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pyiron_workflow as pwf
import pytest

import storage_nodes as sn
from storage_nodes.cli import main
from storage_nodes.demo import harmonic_energy, random_positions
from storage_nodes.graph.draw import draw_file, small_value, write_drawing

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def stored_path(tmp_path_factory):
    d = tmp_path_factory.mktemp("draw")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*has no (input|output) ports")
        wf = pwf.Workflow("trap")
        wf.start = pwf.node(random_positions, n=5, seed=3)
        wf.energy = pwf.node(harmonic_energy, positions=wf.start, k=2.5)
        wf.run()
    return sn.save_workflow(wf, d / "trap.h5")


def _svg_texts(svg: bytes | str) -> list[str]:
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    assert root.tag == SVG + "svg"
    return [t.text or "" for t in root.iter(SVG + "text")]


def _edges(svg: bytes | str) -> set[str]:
    """Edge titles, e.g. ``start:e->energy:w`` (dot keeps node names and sides, not ports)."""
    root = ET.fromstring(svg)
    return {
        (g.find(SVG + "title").text or "").replace("&#45;", "-")
        for g in root.iter(SVG + "g")
        if g.get("class") == "edge"
    }


def test_draw_shows_nodes_edges_and_small_stored_values(stored_path, tmp_path):
    stored = sn.load_workflow(stored_path, safe=True)
    svg = write_drawing(stored.draw(), tmp_path / "graph.svg").read_bytes()
    texts = _svg_texts(svg)
    assert "trap" in texts and "start" in texts and "energy" in texts  # the workflow and its nodes
    energy = stored.nodes["energy"]["outputs"]["energy"]
    assert f"= {energy!r}" in texts or f"= {energy:.6g}" in texts  # a stored output value
    assert "= 2.5" in texts and "= 5" in texts and "= 3" in texts  # stored inputs
    assert "= ndarray (5, 3) float64" in texts  # too big to show: summarised
    assert "start:e->energy:w" in _edges(svg)
    assert "start:o_positions:e -> energy:i_positions:w" in stored.draw().source  # port to port


def test_draw_file_reads_only_the_listing_and_small_entries(stored_path, tmp_path):
    svg = write_drawing(draw_file(stored_path), tmp_path / "graph.svg").read_bytes()
    from_memory = write_drawing(sn.load_workflow(stored_path).draw(), tmp_path / "memory.svg").read_bytes()
    assert _svg_texts(svg) == _svg_texts(from_memory)
    assert _edges(svg) == _edges(from_memory)


def test_drawing_imports_no_node_code_and_runs_nothing(stored_path):
    code = (
        "import sys, storage_nodes as sn\n"
        "from storage_nodes.graph.draw import draw_file\n"
        f"g = sn.load_workflow({str(stored_path)!r}, safe=True).draw(); h = draw_file({str(stored_path)!r})\n"
        "print('storage_nodes.demo' in sys.modules, 'pyiron_workflow' in sys.modules, len(g.source) > 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "True"]


def test_cli_inspect_draw_writes_svg_and_prints_dot(stored_path, tmp_path, capsys):
    out = tmp_path / "graph.svg"
    assert main(["inspect", "--draw", str(stored_path), "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert "energy" in _svg_texts(out.read_bytes())
    assert main(["inspect", "--draw", str(stored_path)]) == 0
    source = capsys.readouterr().out
    assert source.startswith("digraph {") and "start:o_positions:e -> energy:i_positions:w" in source


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-o", "x.svg"], "add --draw"),
        (["--draw", "--json"], "leave out --key, --json and --all"),
        (["--draw", "--all"], "leave out --key, --json and --all"),
        (["--draw", "-o", "x.txt"], "give a file ending in .svg"),
    ],
)
def test_cli_draw_refuses_bad_arguments(stored_path, tmp_path, capsys, argv, message):
    argv = [a if a not in ("x.svg", "x.txt") else str(tmp_path / a) for a in argv]
    assert main(["inspect", str(stored_path), *argv]) == 1
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_file_that_is_not_a_stored_workflow_is_refused_by_name(tmp_path, capsys):
    plain = sn.save({"a": 1}, tmp_path / "plain.h5")
    with pytest.raises(sn.CorruptFileError, match="does not hold a stored workflow"):
        draw_file(plain)
    assert main(["inspect", "--draw", str(plain), "-o", str(tmp_path / "g.svg")]) == 1
    assert "does not hold a stored workflow" in capsys.readouterr().err
    assert not (tmp_path / "g.svg").exists()


def test_hostile_stored_values_are_escaped_in_the_svg(tmp_path):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*has no (input|output) ports")
        wf = pwf.Workflow("evil")
        wf.save = pwf.node(sn.SaveNode, obj=[1], path=str(tmp_path / "o.json"), metadata={"n": "<b>&x</b>"})
        wf.run()
    stored = sn.load_workflow(sn.save_workflow(wf, tmp_path / "evil.json", backend="json"))
    texts = _svg_texts(write_drawing(stored.draw(), tmp_path / "evil.svg").read_bytes())
    assert "= {'n': '<b>&x</b>'}" in texts  # the value as text, parsed back from well-formed SVG


def test_small_value_shows_small_values_and_summarises_the_rest():
    assert small_value(2.5) == "2.5" and small_value("h5") == "'h5'" and small_value(None) == "None"
    assert small_value(np.arange(3)) == "[0, 1, 2]"
    assert small_value(np.zeros((64, 3))) == "ndarray (64, 3) float64"
    assert small_value(list(range(100))) == "list len=100"
    assert small_value({"a": np.zeros(3)}) == "dict len=1"
    assert small_value(10**60).endswith("…") and len(small_value(10**60)) == 32
    assert re.fullmatch(r"str len=100: 'x+…", small_value("x" * 100))
    assert json.dumps(small_value(object())) == '"object"'


def test_a_stored_single_node_draws_as_one_box_with_its_values(tmp_path):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*has no (input|output) ports")
        node = pwf.node(random_positions, "start")
        node.run()
    path = sn.save_workflow(node, tmp_path / "node.h5")
    stored = sn.load_workflow(path, safe=True)
    texts = _svg_texts(write_drawing(stored.draw(), tmp_path / "node.svg").read_bytes())
    assert "start" in texts
    assert f"= {stored.inputs['n']}" in texts and "= ndarray (64, 3) float64" in texts
    assert _svg_texts(write_drawing(draw_file(path), tmp_path / "file.svg").read_bytes()) == texts
