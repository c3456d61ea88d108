"""Several SaveNodes writing different keys of one h5 file in one run lose nothing.

pyiron_workflow runs a DAG's siblings on threads; a node can also run in another process
through an executor. Partial writes (``key=``) go through the h5 backend's update, which
holds :func:`storage_nodes.atomic.writer_lock` (a filelock) around its copy-modify-replace.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pyiron_workflow as pwf
import pytest
from _concurrency_workers import many_updates
from _nodes_helpers import make_grid

import storage_nodes as sn
from storage_nodes import LoadNode, SaveNode

pytestmark = pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")

BACKEND = "h5"  # the backend with partial writes


def _fan_out(wf: pwf.Workflow, path, count: int, *, prefix: str, executor=None) -> None:
    for i in range(count):
        grid = pwf.node(make_grid, f"{prefix}grid{i}", n=10 + i, scale=float(i))
        save = pwf.node(SaveNode, f"{prefix}save{i}", obj=grid, path=str(path), backend=BACKEND, key=f"{prefix}/{i}")
        if executor is not None:
            save.executor = executor
        wf.add_node(grid, save)


def _assert_complete(path, prefix: str, count: int) -> None:
    stored = sn.load(path)[prefix]
    assert sorted(stored, key=int) == [str(i) for i in range(count)], f"lost entries: {sorted(stored)}"
    for i in range(count):
        np.testing.assert_array_equal(stored[str(i)], np.linspace(0.0, float(i), 10 + i))


def test_save_nodes_on_threads_write_distinct_keys_into_one_file(tmp_path):
    for attempt in range(3):  # fresh files: the first writers race to create the file, later ones to update it
        path = tmp_path / f"threads{attempt}.h5"
        wf = pwf.Workflow("threads")
        _fan_out(wf, path, 8, prefix="t")
        wf.run()
        _assert_complete(path, "t", 8)
        listing = sn.inspect(path)
        assert all(f"t/{i}" in listing for i in range(8))


def test_load_node_reads_one_key_written_by_a_save_node(tmp_path):
    path = tmp_path / "one.h5"
    wf = pwf.Workflow("chain")
    wf.grid = pwf.node(make_grid, n=4)
    wf.save = pwf.node(SaveNode, obj=wf.grid, path=str(path), key="raw/grid")
    wf.other = pwf.node(SaveNode, obj=[1, 2], path=str(path), key="raw/list")
    wf.load = pwf.node(LoadNode, path=wf.save, key="raw/grid", safe=True)
    run = wf.run()
    np.testing.assert_array_equal(run.result.nodes["load"].output_ports["obj"].value, np.linspace(0, 1, 4))
    assert sn.load(path, key="raw/list") == [1, 2]


def test_save_nodes_in_separate_processes_and_threads_write_one_file(tmp_path):
    path = tmp_path / "processes.h5"
    context = multiprocessing.get_context("spawn")  # pyiron_workflow's default for process pools
    # one worker: every process start imports pyiron_workflow (seconds); the worker's writes
    # race with the writes of this process's threads
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        wf = pwf.Workflow("processes")
        _fan_out(wf, path, 4, prefix="p", executor=pool)  # each SaveNode runs in a pool process
        _fan_out(wf, path, 4, prefix="t")  # and these on threads of this process, in the same run
        wf.run()
    _assert_complete(path, "p", 4)
    _assert_complete(path, "t", 4)


def test_many_processes_updating_one_file_lose_nothing(tmp_path):
    """The same update path SaveNode takes (api.save with key=), hammered from 3 processes."""
    path = tmp_path / "stress.h5"
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=3, mp_context=context) as pool:
        for f in [pool.submit(many_updates, str(path), w, 15, BACKEND) for w in range(3)]:
            f.result()
    stored = sn.load(path)
    for w in range(3):
        assert sorted(stored[f"w{w}"], key=int) == [str(i) for i in range(15)]
        assert all(stored[f"w{w}"][str(i)][0] == w * 1000 + i for i in range(15))
