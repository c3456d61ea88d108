"""Real nodes on real threads: an equation of state, cold then warm, 20 times (issue 26).

The workflow (``tests/_eos_nodes.py``): an engine holding a real EMT calculator and a
``results`` dict each calculation writes into, real ``ase.Atoms``, a for-each of 9
fleche-cached ``calculate`` nodes, run with pyiron_workflow's default (threaded) executor.
Each round starts from an empty cache (a new value root and a new call database: SQLite,
and a fresh database on a real PostgreSQL server), runs cold (9 executions, on several
threads), then warm with a new engine and structure of the same content: the warm run
executes nothing and its outputs equal the cold run's. Whatever was stored is never
wrong: each recorded result loads as the cold output it belongs to, and the engine's
archive, if it was stored while other threads wrote into its ``results``, holds only
entries the cold run computed. If storing it failed (the h5 encoder race of issue 26),
fleche saw a ``SaveError`` (logged by our storage) and referenced it by digest.
"""

from __future__ import annotations

import logging
import uuid
import warnings
from pathlib import Path

import pyiron_workflow as pwf
import pytest
from _eos_nodes import STRAINS, equation_of_state, executions, make_engine, make_structure
from fleche.caches import Cache
from fleche.digest import digest

from storage_nodes.caching import UncachedCallWarning

ROUNDS = 20


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(params=["sqlite", "postgresql"])
def call_url(request, tmp_path):
    """A factory of fresh, empty call databases: one per round."""
    if request.param == "sqlite":
        return lambda i: f"sqlite:///{tmp_path / f'calls{i}.db'}"
    from _postgres import create_database

    server = request.getfixturevalue("postgres_server")
    return lambda i: create_database(server, f"t_{uuid.uuid4().hex[:12]}")


def run_eos(cache: Cache, counter: Path, run_dir: Path) -> dict:
    node = pwf.node(equation_of_state)
    config = pwf.RunConfig(fleche_cache=cache, run_dir=run_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncachedCallWarning)  # every input has a digest
        run = node.run(config, engine=make_engine(), structure=make_structure(), strains=STRAINS, counter=str(counter))
    return dict(run.outputs)


def test_warm_runs_execute_nothing_on_threads(tmp_path, call_url):
    storage_log = _Messages()
    logging.getLogger("storage_nodes.caching.storage").addHandler(storage_log)
    threads: set[str] = set()
    engine_key = digest(make_engine())
    fallbacks = 0
    try:
        for i in range(ROUNDS):
            root = tmp_path / f"round{i}"
            cache = Cache.from_config(
                {
                    "values": {"type": "storage_nodes", "root": str(root / "values")},
                    "calls": {"type": "sql", "url": call_url(i)},
                }
            )
            counter = root / "count.txt"
            try:
                cold = run_eos(cache, counter, root / "cold")
                assert executions(counter) == 9, f"round {i}: the cold run executed {executions(counter)} of 9"
                threads |= set(counter.read_text().splitlines())
                warm = run_eos(cache, counter, root / "warm")
                assert executions(counter) == 9, f"round {i}: the warm run executed {executions(counter) - 9} of 9"
                assert warm == cold, f"round {i}"
                by_strain = dict(zip((f"{s:+.4f}" for s in STRAINS), cold["energies"]))
                results = {cache.values.load(cache.calls.load(k).result) for k in cache.calls.list()}
                assert results == set(zip(cold["energies"], cold["volumes"])), f"round {i}"
                if cache.values.contains(engine_key):
                    stored = cache.values.load(engine_key)
                    for strain, entry in stored.results.items():
                        assert entry["energy"] == by_strain[strain], f"round {i}: a wrong value was stored"
                        assert entry["forces"].shape == (4, 3)
                else:  # fleche referenced it by digest: our storage told it with a SaveError
                    fallbacks += 1
                    assert any(engine_key in m for m in storage_log.messages), storage_log.messages
            finally:
                cache.calls.engine.dispose()
    finally:
        logging.getLogger("storage_nodes.caching.storage").removeHandler(storage_log)
    assert len(threads) > 1, "the for-each bodies did not run on several threads"
    # every failure our storage reported was a SaveError fleche handled (the runs above all passed)
    assert all("cannot store the value of key" in m for m in storage_log.messages), storage_log.messages
    print(f"engine archive referenced by digest (a SaveError) in {fallbacks} of {ROUNDS} rounds")


def test_a_value_another_thread_changes_while_it_is_stored_is_a_save_error_or_a_state_it_had(tmp_path):
    # what fleche sees of the h5 encoder's race (issue 26, "a save reads its value once"): the
    # dict below is changed by another thread during each save; fleche must get either a
    # stored value the dict really held or its SaveError (and then falls back), never a mix
    import sys
    import threading

    import numpy as np
    from fleche.digest import Digest
    from fleche.storage.base import SaveError

    from storage_nodes.caching import ValueArchive

    values = ValueArchive(tmp_path)
    inner: dict = {"v": 0}
    results: dict = {}  # like an engine's results: entries come and go while it is stored
    shared = {"inner": inner, "results": results, "label": "engine"}
    stop = threading.Event()

    def mutate() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            inner["v"] = k if k % 2 else np.arange(k % 7 + 1)  # one assignment: always a valid state
            results[f"s{k % 9}"] = {"energy": float(k), "forces": np.full((4, 3), k), "n": k}
            if k % 9 == 0:
                results.clear()

    thread = threading.Thread(target=mutate)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython allows: widen every window
    thread.start()
    stored = errors = 0
    try:
        for i in range(400):
            key = Digest(f"{i:064x}")
            try:
                values.save(shared, key)
            except SaveError as exc:
                errors += 1
                assert exc.__cause__ is not None, "the cause is chained"
                continue
            stored += 1
            back = values.load(key)
            v = back["inner"]["v"]
            assert isinstance(v, int) or np.array_equal(v, np.arange(len(v))), v
            for entry in back["results"].values():  # each entry as it was written, never a mix
                assert entry["energy"] == entry["n"] and (entry["forces"] == entry["n"]).all(), entry
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(switch)
    assert stored + errors == 400 and stored > 0
    print(f"{errors} of 400 saves of a dict changed during the save were SaveErrors")
