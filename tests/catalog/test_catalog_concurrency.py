"""Many writers, nothing lost: 6 processes save workflows into one catalog at once, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import warnings
from concurrent.futures import ProcessPoolExecutor

import pytest
import sqlalchemy as sa
from _catalog_nodes import relax, save_many

import storage_nodes as sn
from storage_nodes.catalog import schema as S

WORKERS = 6
SAVES = 4


@pytest.fixture(scope="module")
def six_writers(tmp_path_factory, postgres_server):
    """One run of 6 spawned processes, each saving SAVES workflows into both catalogs, started together."""
    from _postgres import create_database

    root = tmp_path_factory.mktemp("writers")
    urls = [str(root / "shared.sqlite"), create_database(postgres_server, "t_six_writers")]
    for u in urls:  # an empty catalog each (the first writers would otherwise race to create the tables too)
        sn.Catalog(u, create=True).stats()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Manager().Barrier(WORKERS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with ProcessPoolExecutor(WORKERS, mp_context=ctx) as pool:
            futures = [pool.submit(save_many, urls, str(root), w, SAVES, barrier) for w in range(WORKERS)]
            done = sorted(f.result(timeout=600) for f in futures)  # a "database is locked" would surface here
    assert done == list(range(WORKERS))
    return dict(zip(["sqlite", "postgresql"], urls)), root


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_six_processes_saving_workflows_lose_no_record(six_writers, dialect):
    urls, _root = six_writers
    j = list(urls).index(dialect)
    cat = sn.Catalog(urls[dialect])
    hits = cat.find(node=relax)
    expected = {f"w{w}-{i}-c{j}.h5" for w in range(WORKERS) for i in range(SAVES)}
    assert {h.path.name for h in hits} == expected and len(hits) == len(expected)
    assert not any(h.stale for h in hits)
    with cat._engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(S.files)).scalar_one() == len(expected)
        assert conn.execute(sa.select(sa.func.count()).select_from(S.records)).scalar_one() == 3 * len(expected)
        assert conn.execute(sa.select(sa.func.count()).select_from(S.edges)).scalar_one() == 3 * len(
            expected
        )  # 3 edges a run
    for w in range(WORKERS):  # every worker's own inputs, with lineage intact
        (h, *rest) = cat.find(node=relax, inputs={"T": float(w)})
        assert len(rest) == SAVES - 1 and [u.label for u in h.upstream] == ["make"]
    assert hits[0].load("energy") == sn.load(hits[0].path, key="relax/outputs/energy")


def test_sqlite_retries_a_locked_database_instead_of_failing(tmp_path, monkeypatch):
    """Another writer holds the lock far longer than SQLite's busy timeout: the save waits and succeeds."""
    import sqlite3
    import threading
    import time

    from storage_nodes.catalog import engine as C

    path = tmp_path / "locked.sqlite"
    sn.Catalog(path, create=True).stats()
    monkeypatch.setattr(C, "BUSY_TIMEOUT_MS", 20)  # the retry loop, not SQLite's own wait, must do the work
    cat = sn.Catalog(path)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(1.0, lambda: holder.execute("COMMIT"))
    release.start()
    start = time.monotonic()
    sn.save([1], tmp_path / "x.json", catalog=cat)  # "database is locked" without the retry
    assert time.monotonic() - start >= 0.9
    release.join()
    holder.close()
    assert len(sn.Catalog(path).find()) == 1


def _save_in_child(cat, path: str) -> None:
    sn.save([2], path, catalog=cat)  # the parent's Catalog object, inherited by fork
    cat.close()  # closes the child's connections only: the parent's are detached at the fork


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_forked_child_records_on_its_own_connections(dialect, tmp_path, request):
    """The parent's pooled connection crosses the fork; the child must open its own, and both keep working."""
    url = str(tmp_path / "fork.sqlite") if dialect == "sqlite" else request.getfixturevalue("postgres_url")
    cat = sn.Catalog(url)
    sn.save([1], tmp_path / "parent.json", catalog=cat)  # a connection sits in the pool now
    ctx = multiprocessing.get_context("fork")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "fork() in a multi-threaded process"
        child = ctx.Process(target=_save_in_child, args=(cat, str(tmp_path / "child.json")))
        child.start()
    child.join(120)
    assert child.exitcode == 0
    sn.save([3], tmp_path / "parent2.json", catalog=cat)  # the parent's own connection still works
    names = sorted(h.path.name for h in sn.Catalog(url).find(kind="save"))
    assert names == ["child.json", "parent.json", "parent2.json"]
    cat.close()
