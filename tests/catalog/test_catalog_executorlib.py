"""Catalog writes from pyiron_workflow's executorlib workers, on SQLite and PostgreSQL.

The SaveNodes of a workflow run on executorlib's ``NodeSingleExecutor`` (each node in a
spawned worker process), several at once, each recording into one catalog through its
``catalog`` port; the parent then records the whole run with ``save_workflow``. Every
record must be there afterwards, with its key, metadata, creator and (for the run's
nodes) the right node identity and inputs.
"""

from __future__ import annotations

import getpass
import os
import socket
import warnings
from pathlib import Path

import numpy as np
import pyiron_workflow as pwf
from _catalog_nodes import make_structure, relax
from pyiron_workflow.executorlib import NodeSingleExecutor

import storage_nodes as sn
from storage_nodes import SaveNode
from storage_nodes.catalog import catalog as C

TESTS = Path(__file__).resolve().parents[1]  # tests/, where the helper modules live
SAVES = 4  # SaveNodes that run in workers at the same time


def build(directory: Path, url: str) -> pwf.Workflow:
    on_worker = pwf.ExecutorInstructions(NodeSingleExecutor)
    wf = pwf.Workflow("workers")
    wf.make = pwf.node(make_structure, n=5)
    wf.make.executor = on_worker
    wf.relax = pwf.node(relax, structure=wf.make, T=250.0)
    wf.relax.executor = on_worker
    for i in range(SAVES):  # independent of each other: they may run at once
        node = pwf.node(SaveNode, obj=wf.relax.outputs.forces, path=str(directory / f"forces{i}.h5"),
                        metadata={"i": i}, catalog=url)  # fmt: skip
        node.executor = on_worker
        setattr(wf, f"save{i}", node)
    wf.keyed = pwf.node(SaveNode, obj=wf.relax.outputs.energy, path=str(directory / "energy.h5"), key="relax/energy",
                        catalog=url)  # fmt: skip
    wf.keyed.executor = on_worker
    return wf


def test_save_nodes_on_executorlib_workers_record_every_save(url, tmp_path, monkeypatch):
    # the spawned workers import the node functions by module name
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    out = tmp_path / "out"
    out.mkdir()
    wf = build(out, url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        wf.run(pwf.RunConfig(run_dir=tmp_path / "run"))
    # the SaveNodes ran in the workers: this process never opened the port's catalog
    text = C.to_url(url).render_as_string(hide_password=False)
    assert (os.getpid(), text) not in C._catalogs
    forces = relax(make_structure(5), T=250.0)[1]
    with sn.Catalog(url) as cat:
        saves = {h.path.name: h for h in cat.find(kind="save")}
        assert sorted(saves) == sorted([f"forces{i}.h5" for i in range(SAVES)] + ["energy.h5"])
        for i in range(SAVES):
            h = saves[f"forces{i}.h5"]
            assert h.path == (out / f"forces{i}.h5").resolve() and h.key == "" and h.metadata == {"i": i}
            assert h.created_by == getpass.getuser() and h.host == socket.gethostname() and not h.stale
            np.testing.assert_array_equal(h.load(), forces)
        keyed = saves["energy.h5"]
        assert keyed.key == "relax/energy" and keyed.load() == relax(make_structure(5), T=250.0)[0]
        # the parent records the run itself: its nodes (the SaveNodes among them) next to the workers' saves
        sn.save_workflow(wf, tmp_path / "run.h5", catalog=cat)
        (r,) = cat.find(node=relax, inputs={"T": 250.0})
        assert r.workflow == "workers" and r.inputs["steps"] == 3 and r.outputs == ["energy", "forces"]
        assert [u.label for u in r.upstream] == ["make"] and r.created_by == getpass.getuser()
        np.testing.assert_array_equal(r.load("forces"), forces)
        savers = cat.find(node="storage_nodes.nodes.SaveNode")
        assert sorted(h.label for h in savers) == sorted([f"save{i}" for i in range(SAVES)] + ["keyed"])
        assert all(h.inputs["catalog"] == url and h.path == (tmp_path / "run.h5").resolve() for h in savers)
        assert len(cat.find()) == SAVES + 1 + len(cat.find(workflow="workers"))
