"""End to end: pyiron_workflow's own cache hook (RunConfig(fleche_cache=...)) with our value storage.

A workflow of two fleche-cached nodes runs twice on one cache; each node body appends to a
counter file, so "executed once" is counted, not timed. Call records go to SQLite and to a
real throw-away PostgreSQL (``postgres_url``); the executorlib runs put the nodes on
pyiron_workflow's executorlib executor (spawned worker processes that write the cache).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pyiron_workflow as pwf
import pytest
from _fleche_nodes import executions, make_positions, summarize
from fleche.caches import Cache
from pyiron_workflow.executorlib import NodeSingleExecutor

import storage_nodes as sn
from storage_nodes.caching import ValueArchive

TESTS = Path(__file__).resolve().parents[1]  # tests/, where the helper modules live


@pytest.fixture(params=["sqlite", "postgresql"])
def cache(request, tmp_path) -> Cache:
    sqlite = f"sqlite:///{tmp_path / 'calls.db'}"
    url = sqlite if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    values = {"type": "storage_nodes", "root": str(tmp_path / "values")}
    cache = Cache.from_config({"values": values, "calls": {"type": "sql", "url": url}})
    yield cache
    cache.calls.engine.dispose()


def build(counter: Path, *, scale: float = 2.0, executor: type | None = None) -> pwf.Workflow:
    wf = pwf.Workflow("cached")
    wf.pos = pwf.node(make_positions, n=4, counter=str(counter))
    wf.sm = pwf.node(summarize, positions=wf.pos, scale=scale, counter=str(counter))
    if executor is not None:
        wf.pos.executor = pwf.ExecutorInstructions(executor)
        wf.sm.executor = pwf.ExecutorInstructions(executor)
    return wf


def run(wf: pwf.Workflow, cache: Cache, run_dir: Path) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "no output ports": we read the children
        result = wf.run(pwf.RunConfig(fleche_cache=cache, run_dir=run_dir))
    return result.result.nodes["sm"].output_ports["summary"].value


def check_summary(summary: dict) -> None:
    np.testing.assert_array_equal(summary["scaled"], 2.0 * np.arange(12.0).reshape(4, 3))
    assert summary["total"] == 132.0 and summary["label"] == "x2.0"


def test_second_run_executes_nothing(cache, tmp_path):
    counter = tmp_path / "count.txt"
    check_summary(run(build(counter), cache, tmp_path / "run1"))
    assert executions(counter) == 2
    calls = len(list(cache.query()))
    assert calls == 2
    check_summary(run(build(counter), cache, tmp_path / "run2"))  # a fresh workflow, same inputs
    assert executions(counter) == 2, "the warm run executed a cached node body"
    assert len(list(cache.query())) == calls
    # a changed input is a miss for the node it reaches, not for the node upstream of it
    assert run(build(counter, scale=3.0), cache, tmp_path / "run3")["total"] == 198.0
    assert executions(counter) == 3


def test_cached_values_are_browsable_archives(cache, tmp_path):
    run(build(tmp_path / "count.txt"), cache, tmp_path / "run")
    values = cache.values
    assert isinstance(values, ValueArchive)
    summaries = [k for k in values.list() if sn.inspect(values.path(k)).root.type == "dict"]
    assert len(summaries) == 1
    path = values.path(summaries[0])
    text = str(sn.inspect(path))
    assert "scaled" in text and "(4, 3)" in text and "float64" in text
    assert sn.load(path, key="total") == 132.0
    np.testing.assert_array_equal(sn.load(path, key="scaled")[1], [6.0, 8.0, 10.0])


def test_executorlib_workers_write_and_reuse_the_cache(cache, tmp_path, monkeypatch):
    # the spawned workers import the node functions by module name
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    counter = tmp_path / "count.txt"
    # separate run_dirs: executorlib's own file cache lives there and must not be what skips the work
    check_summary(run(build(counter, executor=NodeSingleExecutor), cache, tmp_path / "run1"))
    assert executions(counter) == 2
    assert len(list(cache.query())) == 2
    check_summary(run(build(counter, executor=NodeSingleExecutor), cache, tmp_path / "run2"))
    assert executions(counter) == 2, "the warm run on executorlib workers executed a cached node body"
    check_summary(run(build(counter), cache, tmp_path / "run3"))  # the workers' entries, read locally
    assert executions(counter) == 2
