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
    assert "save_final (SaveNode, h5) wrote results.h5, key 'final'" in lines
    assert "save_trajectory (SaveNode, h5) wrote results.h5, key 'trajectory'" in lines
    assert "save_summary (SaveNode, json) wrote summary.data" in lines
    assert "one port back: energy/outputs/energy" in lines
    assert "loaded results.h5 key 'final/positions' through a LoadNode" in lines
    assert "InspectNode listing of results.h5" in lines
    assert "positions: ndarray (numpy), shape=(64, 3), dtype=float64" in lines
    assert "trajectory: ndarray (numpy), shape=(41,)" in lines
    assert "identical = True" in lines
    assert "Traceback" not in out.stderr
    assert not any(tmp_path.iterdir())  # no arguments: everything went to a temporary directory


def test_demo_workflows_in_process(tmp_path, capsys):
    assert demo.run_demo(tmp_path) == 0
    files = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))  # lock files are hidden
    assert files == ["relax_workflow.h5", "results.h5", "summary.data"]
    archive = sn.load(tmp_path / "results.h5", safe=True)
    results, energies = archive["final"], archive["trajectory"]
    assert results["positions"].shape == (64, 3) and results["steps"] == 40
    assert energies[0] > energies[-1] and np.isclose(energies[-1], results["energy"])
    assert sn.inspect(tmp_path / "results.h5").metadata["system"] == "harmonic trap"
    summary = sn.load(tmp_path / "summary.data", "json", safe=True)
    np.testing.assert_array_equal(summary["forces"], results["forces"])
    stored = sn.load_workflow(tmp_path / "relax_workflow.h5")
    np.testing.assert_array_equal(stored.nodes["relax"]["outputs"]["positions"], results["positions"])
    assert stored.nodes["save_summary"]["inputs"]["backend"] == "json"
    assert "identical = True" in capsys.readouterr().out
