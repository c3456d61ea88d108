"""The README's main job, `storage-nodes demo`, and the demo's workflows in process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import storage_nodes as sn
from storage_nodes import demo

pytestmark = pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")


def test_demo_command_with_no_arguments_in_a_fresh_process(tmp_path):
    script = Path(sys.executable).with_name("storage-nodes")  # the installed console script
    out = subprocess.run([str(script), "demo"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout
    assert "save_results (SaveNode, backend='json') wrote results.json" in lines
    assert "save_trajectory (SaveNode, backend='pickle') wrote trajectory.pkl" in lines
    assert "one port back: energy/outputs/energy" in lines
    assert "loaded results.json/positions through a LoadNode" in lines
    assert "InspectNode listing of results.json" in lines
    assert "positions: ndarray (numpy), shape=(64, 3), dtype=float64" in lines
    assert "identical = True" in lines
    assert "Traceback" not in out.stderr
    assert not any(tmp_path.iterdir())  # no arguments: everything went to a temporary directory


def test_demo_workflows_in_process(tmp_path, capsys):
    assert demo.run_demo(tmp_path) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["relax_workflow.pkl", "results.json", "trajectory.pkl"]
    results = sn.load(tmp_path / "results.json", safe=True)
    assert results["positions"].shape == (64, 3) and results["steps"] == 40
    energies = sn.load(tmp_path / "trajectory.pkl")
    assert energies[0] > energies[-1] and np.isclose(energies[-1], results["energy"])
    stored = sn.load_workflow(tmp_path / "relax_workflow.pkl")
    np.testing.assert_array_equal(stored.nodes["relax"]["outputs"]["positions"], results["positions"])
    assert stored.nodes["save_results"]["inputs"]["backend"] == "json"
    assert "identical = True" in capsys.readouterr().out
