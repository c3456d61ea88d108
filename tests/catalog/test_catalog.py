"""The catalog on real databases: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
import sqlalchemy as sa
from _catalog_nodes import build, make_structure, relax, report

import storage_nodes as sn
from storage_nodes.catalog import schema as S
from storage_nodes.catalog.catalog import file_identity
from storage_nodes.errors import (
    CatalogError,
    CatalogNotFoundError,
    InvalidArgumentError,
    KeyNotFoundError,
    StaleEntryError,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")


@pytest.fixture
def cat(url):
    with sn.Catalog(url, create=True) as c:
        yield c


@pytest.fixture(scope="module")
def wf300():
    return build(T=300.0)


def _count(cat, table) -> int:
    with cat._engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _counts(cat) -> dict[str, int]:
    return {t.name: _count(cat, t) for t in S.CHILDREN_FIRST}


# ---------------------------------------------------------------- recording and finding


def test_save_workflow_records_every_node_with_identity_inputs_and_edges(cat, wf300, tmp_path):
    (tmp_path / "runs").mkdir()
    path = sn.save_workflow(wf300, tmp_path / "runs" / "relax.h5", catalog=cat, metadata={"sample": "Cu-3"})
    hits = cat.find(workflow="relax_wf")
    assert sorted(h.label for h in hits) == ["make", "relax", "report"]
    h = cat.find(node=relax)[0]
    assert h.path == path.resolve() and h.key == "relax" and h.node == "_catalog_nodes.relax"
    assert h.inputs["T"] == 300.0 and h.inputs["steps"] == 3  # the default is recorded like a given value
    assert repr(h.inputs["structure"]).startswith("<numpy.ndarray float64 shape=(4, 3)")
    assert h.outputs == ["energy", "forces"] and h.undigested == [] and not h.stale
    assert h.metadata == {"sample": "Cu-3"} and h.workflow == "relax_wf"
    import getpass
    import socket

    assert h.created_by == getpass.getuser() and h.host == socket.gethostname()
    import datetime

    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    assert abs((now - h.created_at).total_seconds()) < 600  # recorded in UTC
    assert h.call is not None and len(h.call) == 64
    # lineage: report was fed by relax, relax by make
    rep = cat.find(node=report)[0]
    assert [u.label for u in rep.upstream] == ["relax"]
    assert [u.label for u in rep.upstream[0].upstream] == ["make"]
    assert cat.find(node=make_structure)[0].upstream == []
    # loading goes through sn.load
    energy, forces = relax(make_structure(4), T=300.0)
    assert h.load("energy") == energy
    np.testing.assert_array_equal(h.load()["forces"], forces)
    with pytest.raises(KeyNotFoundError, match="has no output 'nope'"):
        h.load("nope")


def test_find_filters_by_value_type_metadata_user_and_dates(cat, tmp_path):
    sn.save_workflow(build(T=300.0), tmp_path / "a.h5", catalog=cat, metadata={"sample": "Cu-3"})
    sn.save_workflow(build(T=-1.0), tmp_path / "b.h5", catalog=cat, metadata={"sample": "Cu-4"})
    assert [h.inputs["T"] for h in cat.find(node=relax, inputs={"T": 300.0})] == [300.0]
    assert [h.inputs["T"] for h in cat.find(node=relax, inputs={"T": 300})] == [300.0]  # numbers by value (issue 25)
    assert cat.find(node=relax, inputs={"T": True}) == []  # a bool is no number
    assert cat.find(node=relax, inputs={"T": -2.0}) == []  # -1.0 and -2.0 differ (hash(-1) == hash(-2))
    assert len(cat.find(node=relax, inputs={"T": -1.0})) == 1
    assert len(cat.find(node="_catalog_nodes.relax")) == 2
    assert [h.path.name for h in cat.find(metadata={"sample": "Cu-4"})] == ["b.h5"] * 3
    import getpass

    assert len(cat.find(node=relax, user=getpass.getuser())) == 2
    assert cat.find(node=relax, user="somebody-else") == []
    assert cat.find(node=relax, since="2999-01-01") == []
    assert len(cat.find(node=relax, since="2000-01-01", until="2999-01-01")) == 2
    newest = cat.find(node=relax)
    assert newest[0].created_at >= newest[1].created_at and newest[0].path.name == "b.h5"
    assert len(cat.find(node=relax, limit=1)) == 1
    with pytest.raises(InvalidArgumentError, match="cannot be digested"):
        cat.find(inputs={"T": lambda: 1})
    with pytest.raises(InvalidArgumentError, match="not an ISO date"):
        cat.find(since="yesterday")


def test_plain_save_is_recorded_and_loads_back(cat, tmp_path):
    p = sn.save({"energy": -3.2, "forces": np.ones(3)}, tmp_path / "x.h5", metadata={"T": 300}, catalog=cat)
    (hit,) = cat.find(kind="save")
    assert hit.node is None and hit.path == p.resolve() and hit.key == "" and hit.metadata == {"T": 300}
    assert hit.load()["energy"] == -3.2
    assert len(cat.find(metadata={"T": 300.0})) == 1  # numbers by value (issue 25)
    assert cat.find(metadata={"T": "300"}) == []  # typed: text is not a number
    assert len(cat.find(metadata={"T": 300})) == 1
    with pytest.raises(InvalidArgumentError, match="plain save"):
        hit.load("energy")


def test_keyed_saves_into_one_file_keep_each_other_fresh(cat, tmp_path):
    p = tmp_path / "r.h5"
    sn.save([1, 2], p, key="first", catalog=cat)
    sn.save(np.arange(3), p, key="second", catalog=cat)
    hits = {h.key: h for h in cat.find(kind="save")}
    assert sorted(hits) == ["first", "second"] and not any(h.stale for h in hits.values())
    assert hits["first"].load() == [1, 2]
    sn.save([3], p, key="first", catalog=cat)  # the same key again replaces its record
    assert sorted(h.key for h in cat.find(kind="save")) == ["first", "second"]
    sn.save({"whole": 1}, p, catalog=cat)  # a whole-file save replaces everything
    assert [h.key for h in cat.find(kind="save")] == [""]


def test_concurrent_keyed_saves_into_one_file_do_not_mark_each_other_stale(cat, tmp_path, monkeypatch):
    """A reads the file's identity, B writes its key and records, then A commits: A's older identity must not win."""
    import threading

    from storage_nodes.catalog import recording as C

    p = tmp_path / "shared.h5"
    sn.save([0], p, key="base", catalog=cat)
    a_looked, b_recorded = threading.Event(), threading.Event()
    real = C.file_identity

    def slow_for_a(path):
        ident = real(path)
        if threading.current_thread().name == "A" and not a_looked.is_set():
            a_looked.set()
            b_recorded.wait(3)  # with the fix A holds the lock here, so B records only after A
        return ident

    monkeypatch.setattr(C, "file_identity", slow_for_a)
    errors: list[BaseException] = []

    def a() -> None:
        try:
            sn.save([1, 2], p, key="a", catalog=cat)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=a, name="A")
    t.start()
    assert a_looked.wait(30)
    done = threading.Thread(target=lambda: (sn.save([3], p, key="b", catalog=cat), b_recorded.set()), name="B")
    done.start()
    t.join(60)
    done.join(60)
    assert not errors and not t.is_alive() and not done.is_alive()
    monkeypatch.undo()
    hits = {h.key: h for h in cat.find(kind="save")}
    assert sorted(hits) == ["a", "b", "base"]
    assert [k for k, h in hits.items() if h.stale] == []
    assert hits["a"].load() == [1, 2] and hits["b"].load() == [3] and hits["base"].load() == [0]


def test_string_catalog_in_save_and_save_workflow(url, tmp_path, wf300):
    sn.save([1], tmp_path / "s.json", catalog=url)
    sn.save_workflow(wf300, tmp_path / "w.h5", catalog=url)
    with sn.Catalog(url) as c:
        assert len(c.find(kind="save")) == 1 and len(c.find(kind="node")) == 3


def test_save_with_a_wrong_catalog_type_is_refused_before_writing(tmp_path):
    with pytest.raises(InvalidArgumentError, match="catalog"):
        sn.save([1], tmp_path / "s.json", catalog=42)
    assert not (tmp_path / "s.json").exists()


# ---------------------------------------------------------------- lookup


def test_lookup_finds_exactly_this_call(cat, wf300, tmp_path):
    sn.save_workflow(wf300, tmp_path / "a.h5", catalog=cat)
    s = make_structure(4)
    out = cat.lookup(relax, structure=s, T=300.0)  # steps from the default, as the run had it
    assert out["energy"] == relax(s, T=300.0)[0]
    assert cat.lookup("_catalog_nodes.relax", structure=s, T=300.0, steps=3)["energy"] == out["energy"]
    for changed in ({"T": 300}, {"T": 299.0}, {"T": 300.0, "steps": 4}):
        with pytest.raises(KeyNotFoundError, match="no recorded call"):
            cat.lookup(relax, structure=s, **changed)
    with pytest.raises(KeyNotFoundError):  # float32 positions are another input
        cat.lookup(relax, structure=s.astype(np.float32), T=300.0)
    with pytest.raises(KeyNotFoundError):  # a string node name needs every input
        cat.lookup("_catalog_nodes.relax", structure=s, T=300.0)
    np.testing.assert_array_equal(cat.lookup(relax, structure=np.asfortranarray(s), T=300.0)["forces"], out["forces"])


def test_lookup_misses_when_the_function_source_changed(cat, wf300, tmp_path, monkeypatch):
    sn.save_workflow(wf300, tmp_path / "a.h5", catalog=cat)
    from storage_nodes.catalog import queries as C

    real = C.live_identity
    monkeypatch.setattr(C, "live_identity", lambda m, q: (real(m, q)[0], "0" * 64))
    with pytest.raises(KeyNotFoundError):
        cat.lookup(relax, structure=make_structure(4), T=300.0)


# ---------------------------------------------------------------- stale entries, prune, index


def test_rewritten_and_deleted_files_are_stale_never_loaded_and_pruned(cat, tmp_path):
    a = sn.save_workflow(build(T=1.0), tmp_path / "a.h5", catalog=cat)
    b = sn.save_workflow(build(T=2.0), tmp_path / "b.h5", catalog=cat)
    sn.save_workflow(build(T=3.0), tmp_path / "c.h5", catalog=cat)
    st = os.stat(a)
    sn.save_workflow(build(T=9.0), a)  # rewritten without the catalog...
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))  # ...even with the old mtime
    b.unlink()
    hits = {h.path.name: h for h in cat.find(node=relax)}
    assert hits["a.h5"].stale and hits["b.h5"].stale and not hits["c.h5"].stale
    with pytest.raises(StaleEntryError, match="stale"):
        hits["a.h5"].load("energy")
    with pytest.raises(KeyNotFoundError, match="1 stale entry"):
        cat.lookup(relax, structure=make_structure(4), T=1.0)
    assert sorted(cat.prune(dry_run=True), key=lambda d: d.path) == sorted(cat.prune(), key=lambda d: d.path)
    assert [h.path.name for h in cat.find(node=relax)] == ["c.h5"]
    assert cat.prune() == []


def test_a_hit_rewritten_after_find_is_refused_at_load(cat, tmp_path):
    p = sn.save([1, 2, 3], tmp_path / "x.json", catalog=cat)
    (hit,) = cat.find()
    p.write_text(p.read_text().replace("1", "7"))
    with pytest.raises(StaleEntryError):
        hit.load()


def test_index_is_idempotent_and_agrees_with_recording_at_save_time(url, tmp_path, wf300):
    runs = tmp_path / "runs"
    (runs / "sub").mkdir(parents=True)
    with sn.Catalog(tmp_path / "at_save.sqlite") as at_save:
        sn.save_workflow(wf300, runs / "w.h5", catalog=at_save, metadata={"sample": "Cu-3"})
        sn.save_workflow(wf300, runs / "w.json", backend="json", catalog=at_save)
        sn.save({"e": 1.5}, runs / "sub" / "plain.h5", metadata={"k": 1}, catalog=at_save)
        expected = sorted((h.path.name, h.key, h.node) for h in at_save.find())
        calls = {(h.path.name, h.key): h.call for h in at_save.find(kind="node")}
    (runs / "notes.txt").write_text("not a stored file")
    with sn.Catalog(url) as cat:
        report1 = cat.index(runs)
        assert sorted(os.path.basename(p) for p in report1.recorded) == ["plain.h5", "w.h5", "w.json"]
        assert report1.skipped == [] and [os.path.basename(p) for p in report1.foreign] == ["notes.txt"]  # not ours
        before = _counts(cat)
        report2 = cat.index(runs)
        assert report2.recorded == [] and len(report2.unchanged) == 3 and _counts(cat) == before
        assert sorted((h.path.name, h.key, h.node) for h in cat.find() if h.path.name != "at_save.sqlite") == expected
        # the same call digests as recorded right after the save: lookup works on indexed files
        assert {(h.path.name, h.key): h.call for h in cat.find(kind="node")} == calls
        assert cat.lookup(relax, structure=make_structure(4), T=300.0)["energy"] > 0
        assert cat.find(metadata={"sample": "Cu-3"})[0].path.name == "w.h5"
        # a rewritten file is recorded again by the next index
        sn.save({"e": 2.5}, runs / "sub" / "plain.h5")
        assert [os.path.basename(p) for p in cat.index(runs).recorded] == ["plain.h5"]
        assert cat.find(kind="save")[0].load() == {"e": 2.5}


def test_index_of_pickled_workflows_is_safe_by_default(cat, tmp_path, wf300):
    sn.save_workflow(wf300, tmp_path / "w.pkl", backend="pickle")
    cat.index(tmp_path)
    assert [h.node for h in cat.find()] == [None]  # from the header only: nothing unpickled
    sn.save([1], tmp_path / "touch.json")
    os.utime(tmp_path / "w.pkl", ns=(1, 1))
    cat.index(tmp_path, safe=False)
    assert sorted(h.label for h in cat.find(kind="node")) == ["make", "relax", "report"]


# ---------------------------------------------------------------- safety


HOSTILE = ["'; DROP TABLE sn_files; --", '" OR 1=1 --', "%", "_", "\\", "\x00", "Cu-3' OR '1'='1", "ü" * 300]


def test_hostile_values_are_just_no_match(cat, tmp_path):
    sn.save([1], tmp_path / "x.json", metadata={"sample": "Cu-3"}, catalog=cat)
    for value in HOSTILE:
        assert cat.find(metadata={"sample": value}) == []
        assert cat.find(inputs={value: value}) == []
        assert cat.find(node=f"m.{value}", user=value, workflow=value) == []
    assert len(cat.find(metadata={"sample": "Cu-3"})) == 1 and _count(cat, S.files) == 1
    p = sn.save([2], tmp_path / "y.json", metadata={"sample": HOSTILE[0], HOSTILE[1]: HOSTILE[3]}, catalog=cat)
    assert [h.path for h in cat.find(metadata={"sample": HOSTILE[0]})] == [p.resolve()]


def test_a_password_never_appears_in_reprs_or_errors(url, tmp_path):
    secret = "s3cr3t-Pa55"
    if url.startswith("postgresql"):
        u = sa.make_url(url).set(password=secret)  # trust authentication ignores it
        bad = u.set(database="no_such_database_here")
    else:
        u = sa.make_url(f"postgresql+psycopg://alice:{secret}@/x?host=/nonexistent-socket-dir")
        bad = u
    cat = sn.Catalog(u, create=True)
    assert secret not in repr(cat) and "***" in repr(cat)
    if url.startswith("postgresql"):
        assert cat.stats()["files"] == 0 and secret not in cat.stats()["catalog"]
    with pytest.raises(CatalogError) as info:
        sn.Catalog(bad).find()
    text = str(info.value) + repr(info.value) + "".join(map(str, info.value.args))
    assert secret not in text and "***" in text
    assert info.value.__cause__ is None and secret not in repr(info.value.__context__)
    s = sn.save([1], tmp_path / "x.json")
    with pytest.raises(CatalogError) as info2:
        sn.save([1], s, catalog=sn.Catalog(bad))
    assert secret not in str(info2.value) and "the file is intact" in str(info2.value)
    assert sn.load(s) == [1]


def test_a_failed_record_leaves_no_partial_rows(cat, tmp_path, wf300, monkeypatch):
    p = sn.save_workflow(wf300, tmp_path / "w.h5", catalog=cat)
    cat.flush()
    before = _counts(cat)
    from storage_nodes.catalog.statements import Statements as _Statements

    real = _Statements.new_record_ids

    def boom(self, cur, n):  # after the old rows were dropped and the new file and metadata rows inserted
        real(self, cur, n)
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(_Statements, "new_record_ids", boom)
    sn.save_workflow(wf300, p, catalog=cat, metadata={"again": True})  # queued: one row
    assert _count(cat, S.queue) == 1
    with pytest.raises(CatalogError, match="disk I/O error"):
        cat.find(node=relax)  # the flush before the query fails half-way
    assert _counts(cat) == before and _count(cat, S.queue) == 1  # no partial rows; the queue as it was
    monkeypatch.undo()
    assert len(cat.find(node=relax)) == 1 and len(cat.find(metadata={"again": True})) == 3
    assert _count(cat, S.queue) == 0


def test_queued_rows_that_cannot_be_applied_are_dropped_and_said_the_rest_recorded(cat, tmp_path, wf300, caplog):
    sn.save_workflow(wf300, tmp_path / "w.h5", catalog=cat)
    good = json.loads(_queue_rows(cat)[0])
    bad_record = json.loads(json.dumps(good))
    bad_record["records"][0][0] = {"a key": "that is a dict"}  # valid shape, refused by the driver
    bad_record["file"]["path"] = str(tmp_path / "other.h5")
    with cat._engine.begin() as conn:
        for text in ("not json", json.dumps({"file": {}}), json.dumps(bad_record)):
            conn.execute(S.queue.insert().values(path="x", payload=text))
    sn.save([1], tmp_path / "after.json", catalog=cat)  # queued behind the damaged ones
    with caplog.at_level("ERROR", logger="storage_nodes.catalog"):
        hits = cat.find()
    assert caplog.text.count("dropped queued recording") == 3 and "refused its rows" in caplog.text
    assert sorted({h.path.name for h in hits}) == ["after.json", "w.h5"] and _count(cat, S.queue) == 0


def test_a_flush_takes_what_was_queued_when_it_began(cat, tmp_path, monkeypatch):
    """Writers that keep queueing while a query flushes cannot keep that query waiting."""
    from storage_nodes.catalog import queue as Q
    from storage_nodes.catalog.engine import Database

    for i in range(3):
        sn.save([i], tmp_path / f"{i}.json", catalog=cat)
    monkeypatch.setattr(Q, "DRAIN_BATCH", 1)
    real = Database.transact
    more = iter(range(100))

    def then_another_save(self, work, **kw):
        result = real(self, work, **kw)
        if kw.get("write"):  # after each flush transaction (a save's own queue row goes by Database.raw_write)
            j = next(more)
            sn.save([j], tmp_path / f"more{j}.json", catalog=cat)
        return result

    monkeypatch.setattr(Database, "transact", then_another_save)
    assert cat.flush() == 3  # the 3 queued when it began (batches of 1), not the ones queued since
    monkeypatch.undo()
    assert _count(cat, S.queue) == 4 and len(cat.find(kind="save")) == 7


def _queue_rows(cat) -> list[str]:
    with cat._engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(S.queue.c.payload).order_by(S.queue.c.id))]


def test_a_failed_enqueue_says_the_file_is_intact(cat, tmp_path, wf300, monkeypatch):
    from storage_nodes.catalog import recording

    def boom(db, p, payload):
        raise CatalogError("cannot record into catalog: disk I/O error")

    monkeypatch.setattr(recording, "enqueue", boom)
    with pytest.raises(CatalogError, match="the file is intact"):
        sn.save_workflow(wf300, tmp_path / "w.h5", catalog=cat)
    monkeypatch.undo()
    assert sn.load_workflow(tmp_path / "w.h5").label == "relax_wf"
    assert cat.find(node=relax) == [] and cat.index(tmp_path).recorded == [str((tmp_path / "w.h5").resolve())]
    assert len(cat.find(node=relax)) == 1


def test_schema_version_is_recorded_newer_refused_older_migrated(url, monkeypatch):
    with sn.Catalog(url, create=True) as cat:
        cat.stats()
        with cat._engine.begin() as conn:
            assert conn.execute(sa.select(S.schema.c.version)).scalar_one() == S.SCHEMA_VERSION
            conn.execute(S.schema.update().values(version=S.SCHEMA_VERSION + 1))
    with pytest.raises(CatalogError, match="newer than this storage_nodes"):
        sn.Catalog(url).stats()
    ran = []
    monkeypatch.setattr(S, "SCHEMA_VERSION", S.SCHEMA_VERSION + 2)
    monkeypatch.setitem(S.MIGRATIONS, S.SCHEMA_VERSION - 1, lambda conn: ran.append(conn))
    with sn.Catalog(url) as cat:
        cat.stats()
        assert len(ran) == 1
        with cat._engine.connect() as conn:
            assert conn.execute(sa.select(S.schema.c.version)).scalar_one() == S.SCHEMA_VERSION


def test_a_version_1_catalog_is_migrated_to_the_queue_and_keeps_its_rows(url, tmp_path, wf300):
    with sn.Catalog(url) as cat:  # make a version-1 catalog: the tables of then, one run recorded
        sn.save_workflow(wf300, tmp_path / "old.h5", catalog=cat)
        cat.flush()
        with cat._engine.begin() as conn:
            S.queue.drop(conn)
            S.reads.drop(conn)
            conn.execute(S.schema.update().values(version=1))
        assert not sa.inspect(cat._engine).has_table("sn_queue")
    with sn.Catalog(url) as cat:
        assert [h.path.name for h in cat.find(node=relax)] == ["old.h5"]
        sn.save_workflow(wf300, tmp_path / "new.h5", catalog=cat)
        assert sorted(h.path.name for h in cat.find(node=relax)) == ["new.h5", "old.h5"]
        with cat._engine.connect() as conn:
            assert conn.execute(sa.select(S.schema.c.version)).scalar_one() == S.SCHEMA_VERSION == 3


def test_stats_per_node_and_per_user(cat, tmp_path):
    sn.save_workflow(build(T=1.0), tmp_path / "a.h5", catalog=cat)
    sn.save_workflow(build(T=1.0), tmp_path / "b.h5", catalog=cat)
    sn.save_workflow(build(T=2.0), tmp_path / "c.h5", catalog=cat)
    stats = cat.stats()
    nodes = {n["node"]: n for n in stats["nodes"]}
    assert nodes["_catalog_nodes.relax"]["records"] == 3 and nodes["_catalog_nodes.relax"]["distinct_inputs"] == 2
    assert nodes["_catalog_nodes.make_structure"]["distinct_inputs"] == 1
    import getpass

    (user,) = stats["users"]
    assert user["user"] == getpass.getuser() and user["files"] == 3 and user["records"] == 9
    assert stats["files"] == 3 and stats["records"] == 9


# ---------------------------------------------------------------- the command line


def _cli(*args: str) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "storage_nodes", "catalog", *args], capture_output=True, text=True, timeout=300
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_cli_index_find_stats_prune(url, tmp_path, wf300):
    runs = tmp_path / "runs"
    runs.mkdir()
    sn.save_workflow(wf300, runs / "w.h5", metadata={"sample": "Cu-3"})
    sn.save([1], runs / "gone.json")
    code, out, err = _cli("index", str(runs), "--catalog", url, "--json")
    assert code == 0, err
    assert len(json.loads(out)["recorded"]) == 2
    code, out, _ = _cli("find", "--catalog", url, "--node", "_catalog_nodes.relax", "--input", "T=300.0", "--json")
    (hit,) = json.loads(out)["hits"]
    assert hit["inputs"]["T"] == 300.0 and hit["key"] == "relax" and hit["stale"] is False
    code, out, _ = _cli("find", "--catalog", url, "--node", "_catalog_nodes.relax", "--input", "T=300", "--json")
    assert len(json.loads(out)["hits"]) == 1  # T=300 finds 300.0: numbers by value (issue 25)
    code, out, _ = _cli("find", "--catalog", url, "--meta", "sample=Cu-3")
    assert code == 0 and "_catalog_nodes.relax" in out and "w.h5 :: relax" in out
    code, out, _ = _cli("stats", "--catalog", url)
    assert code == 0 and "_catalog_nodes.relax" in out and "2 file(s)" in out
    (runs / "gone.json").unlink()
    code, out, _ = _cli("prune", "--catalog", url)
    assert code == 0 and "dropped 1 file(s)" in out and "file is gone" in out
    code, _, err = _cli("find", "--catalog", url, "--input", "novalue")
    assert code == 1 and "expected NAME=VALUE" in err


def test_cli_uses_the_environment_variable_default(tmp_path):
    env = {**os.environ, "STORAGE_NODES_CATALOG": str(tmp_path / "env.sqlite")}
    command = [sys.executable, "-m", "storage_nodes", "catalog", "stats"]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    # a reading command never creates a catalog, and says which one it looked for (issue 25)
    assert proc.returncode == 1 and f"no catalog {tmp_path / 'env.sqlite'}" in proc.stderr
    assert f"catalog: sqlite:///{tmp_path / 'env.sqlite'}" in proc.stderr and not (tmp_path / "env.sqlite").exists()
    sn.save([1], tmp_path / "x.json", catalog=str(tmp_path / "env.sqlite"))  # the first recording creates it
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and str(tmp_path / "env.sqlite") in proc.stdout


# ---------------------------------------------------------------- location and import cost


def test_default_location_is_per_user(monkeypatch, tmp_path):
    from storage_nodes.catalog.url import default_location

    monkeypatch.delenv("STORAGE_NODES_CATALOG", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert default_location() == str(tmp_path / "xdg" / "storage_nodes" / "catalog.sqlite")
    with pytest.raises(CatalogNotFoundError, match="does not exist"):  # no silent catalogs (issue 25)
        sn.Catalog().stats()
    assert not os.path.exists(default_location()) and not os.path.exists(tmp_path / "xdg")
    cat = sn.Catalog(create=True)
    cat.stats()
    assert cat.location.endswith("catalog.sqlite") and os.path.exists(default_location())
    monkeypatch.setenv("STORAGE_NODES_CATALOG", str(tmp_path / "mine.sqlite"))
    assert sn.Catalog().location == f"sqlite:///{tmp_path / 'mine.sqlite'}"


def test_sqlite_catalog_runs_in_wal_mode_and_is_readable_with_sqlite3(tmp_path, wf300):
    path = tmp_path / "c.sqlite"
    cat = sn.Catalog(path)
    sn.save_workflow(wf300, tmp_path / "w.h5", catalog=cat)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # the save queued one row (its payload is JSON text); close() moves it into the tables
    (payload,) = con.execute("SELECT payload FROM sn_queue").fetchone()
    assert json.loads(payload)["file"]["path"] == str((tmp_path / "w.h5").resolve())
    assert con.execute("SELECT count(*) FROM sn_records").fetchone()[0] == 0
    cat.close()
    assert con.execute("SELECT count(*) FROM sn_queue").fetchone()[0] == 0
    rows = con.execute(
        "SELECT r.node, i.port, i.preview FROM sn_records r JOIN sn_inputs i ON i.record_id = r.id "
        "WHERE r.node = '_catalog_nodes.relax' ORDER BY i.port"
    ).fetchall()
    assert [(p, json.loads(v)) for _, p, v in rows if p != "structure"] == [("T", {"v": 300.0}), ("steps", {"v": 3})]
    con.close()


def test_a_process_that_saved_flushes_its_queue_at_exit(tmp_path):
    path, run = tmp_path / "c.sqlite", tmp_path / "x.json"
    code = f"import storage_nodes as sn; sn.save([1, 2], {str(run)!r}, catalog={str(path)!r}, metadata={{'a': 1}})"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=tmp_path)
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*) FROM sn_queue").fetchone()[0] == 0
    assert con.execute(
        "SELECT f.path, r.type, m.value FROM sn_files f JOIN sn_records r ON r.file_id = f.id "
        "JOIN sn_metadata m ON m.file_id = f.id"
    ).fetchall() == [(str(run.resolve()), "list", "1")]
    con.close()


def test_a_reader_without_write_access_queries_the_tables_and_warns(tmp_path, caplog):
    path = tmp_path / "c.sqlite"
    writer = sn.Catalog(path)
    sn.save([1], tmp_path / "a.json", catalog=writer)
    writer.flush()
    sn.save([2], tmp_path / "b.json", catalog=writer)  # queued, not flushed
    reader = sn.Catalog(f"sqlite:///file:{path}?mode=ro&uri=true")
    with caplog.at_level("WARNING", logger="storage_nodes.catalog"):
        hits = reader.find(kind="save")
    assert [h.path.name for h in hits] == ["a.json"]
    assert "queued recordings not visible" in caplog.text
    assert sorted(h.path.name for h in writer.find(kind="save")) == ["a.json", "b.json"]


def _read_only_url(url: str, tmp_path) -> str:
    """A URL for the same catalog that may only read: SQLite ``mode=ro``, or a PostgreSQL role
    granted SELECT alone."""
    if not url.startswith("postgresql"):
        return f"sqlite:///file:{url}?mode=ro&uri=true"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE ROLE sn_reader LOGIN")
        conn.exec_driver_sql("GRANT USAGE ON SCHEMA public TO sn_reader")
        conn.exec_driver_sql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO sn_reader")
    engine.dispose()
    return sa.engine.make_url(url).set(username="sn_reader").render_as_string(hide_password=False)


def test_a_read_only_role_or_file_queries_and_refuses_writes_with_a_typed_error(url, tmp_path, caplog):
    writer = sn.Catalog(url)
    sn.save([1], tmp_path / "a.json", catalog=writer)
    writer.flush()
    sn.save([2], tmp_path / "b.json", catalog=writer)  # queued, not flushed
    try:
        reader = sn.Catalog(_read_only_url(url, tmp_path))
        with caplog.at_level("WARNING", logger="storage_nodes.catalog"):
            assert [h.path.name for h in reader.find(kind="save")] == ["a.json"]
        assert "queued recordings not visible" in caplog.text
        with pytest.raises(sn.CatalogReadOnlyError, match="cannot") as err:
            sn.save([3], tmp_path / "c.json", catalog=reader)
        assert isinstance(err.value, CatalogError)
        assert (tmp_path / "c.json").exists()  # the file is written; only its record is refused
        reader.close()
        assert sorted(h.path.name for h in writer.find(kind="save")) == ["a.json", "b.json"]
    finally:
        writer.close()
        if url.startswith("postgresql"):  # the role is cluster-wide: drop it with what it was given
            engine = sa.create_engine(url)
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP OWNED BY sn_reader")
                conn.exec_driver_sql("DROP ROLE sn_reader")
            engine.dispose()


def test_import_storage_nodes_does_not_import_sqlalchemy():
    code = "import sys, storage_nodes; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == "False"


def test_the_core_and_the_graph_layer_never_import_the_catalog():
    import ast
    from pathlib import Path

    root = Path(sn.__file__).parent
    for file in [root / "api.py", root / "graph" / "workflows.py", *(root / "backends").rglob("*.py")]:
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert "catalog" not in (node.module or ""), f"{file} imports {node.module}"
            elif isinstance(node, ast.Import):
                assert not any("catalog" in a.name for a in node.names), file


def test_file_identity_notices_a_same_size_same_mtime_rewrite(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"a" * 10000)
    before = file_identity(p)
    st = os.stat(p)
    p.write_bytes(b"a" * 9999 + b"b")
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = file_identity(p)
    assert before is not None and after is not None
    assert (before.size, before.mtime_ns) == (after.size, after.mtime_ns) and before != after


def test_a_node_saved_on_its_own_is_recorded_and_looked_up(cat, tmp_path):
    import pyiron_workflow as pwf

    node = pwf.node(relax, "alone")
    node.run(structure=make_structure(3), T=5.0)
    sn.save_workflow(node, tmp_path / "alone.h5", catalog=cat)
    (h,) = cat.find(node=relax)
    assert h.key == "" and h.inputs["T"] == 5.0 and h.outputs == ["energy", "forces"]
    assert h.load("energy") == relax(make_structure(3), T=5.0)[0]
    assert cat.lookup(relax, structure=make_structure(3), T=5.0)["energy"] == h.load("energy")
    with sn.Catalog(tmp_path / "again.sqlite") as again:  # index agrees with the record at save time
        again.index(tmp_path)
        assert [x.call for x in again.find(node=relax)] == [h.call]


def test_saving_the_same_file_again_replaces_its_rows_and_leaves_no_orphans(cat, tmp_path, wf300):
    p = tmp_path / "w.h5"
    sn.save_workflow(wf300, p, catalog=cat, metadata={"a": 1})
    once = _counts(cat)
    sn.save_workflow(wf300, p, catalog=cat, metadata={"a": 1})
    assert _counts(cat) == once  # files, records, inputs, metadata and edges all replaced (cascade)
    p.unlink()
    cat.prune()
    assert set(_counts(cat).values()) == {0}


# ---------------------------------------------------------------- SQLite on network file systems


def _mounts(tmp_path, *lines: str):
    table = tmp_path / "mounts"
    table.write_text("".join(line + "\n" for line in lines))
    return table


def test_network_filesystem_reads_the_longest_mount_point_of_a_mounts_table(tmp_path):
    from storage_nodes.catalog.catalog import filesystem_type, network_filesystem

    table = _mounts(
        tmp_path,
        "/dev/vda / ext4 rw,relatime 0 0",
        "server:/export/home /home nfs4 rw,vers=4.2 0 0",
        "/dev/vdb /home/alice/local xfs rw 0 0",
        "//nas/share /mnt/my\\040share cifs rw 0 0",
        "mds@o2ib:/scratch /scratch lustre rw 0 0",
        "beegfs_nodev /beegfs beegfs rw 0 0",
        "gpfs0 /gpfs gpfs rw 0 0",
        "alice@host: /mnt/sshfs fuse.sshfs rw 0 0",
        "tmpfs /scratch/tmp tmpfs rw 0 0",
    )
    assert filesystem_type("/home/bob/c.sqlite", table) == "nfs4"
    assert network_filesystem("/home/bob/c.sqlite", table) == "nfs4"
    assert network_filesystem("/home/alice/local/c.sqlite", table) is None  # a local disk mounted inside
    assert network_filesystem("/homework/c.sqlite", table) is None  # a prefix of the name is not a mount
    assert network_filesystem("/mnt/my share/c.sqlite", table) == "cifs"  # \040 is a space
    assert network_filesystem("/scratch/run/c.sqlite", table) == "lustre"
    assert network_filesystem("/scratch/tmp/c.sqlite", table) is None
    assert network_filesystem("/beegfs/c.sqlite", table) == "beegfs"
    assert network_filesystem("/gpfs/c.sqlite", table) == "gpfs"
    assert network_filesystem("/mnt/sshfs/c.sqlite", table) == "fuse.sshfs"
    assert network_filesystem("/etc/c.sqlite", table) is None
    assert filesystem_type("/x", tmp_path / "no-such-table") is None  # not Linux: no table, WAL as usual


def test_sqlite_catalog_on_a_network_filesystem_falls_back_from_wal(tmp_path, monkeypatch, caplog):
    from storage_nodes import _mounts as C

    path = tmp_path / "shared" / "c.sqlite"
    monkeypatch.setattr(C, "MOUNTS", str(_mounts(tmp_path, "/dev/vda / ext4 rw 0 0", f"srv:/x {tmp_path} nfs rw 0 0")))
    with caplog.at_level("WARNING", logger="storage_nodes.catalog"):
        cat = sn.Catalog(path)
    assert cat.journal_mode == "delete"
    assert "network file system" in caplog.text and "postgresql://" in caplog.text
    sn.save([1], tmp_path / "x.json", catalog=cat)
    assert len(cat.find(kind="save")) == 1
    with cat._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "delete"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 2  # FULL
    cat.close()
    assert not (path.parent / "c.sqlite-wal").exists()
    monkeypatch.setattr(C, "MOUNTS", str(_mounts(tmp_path, "/dev/vda / ext4 rw 0 0")))
    local = sn.Catalog(tmp_path / "local.sqlite", create=True)
    assert local.journal_mode == "wal" and local.stats()["files"] == 0
    with local._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"


def test_live_identity_follows_an_edit_of_the_module_file(tmp_path, monkeypatch):
    import importlib
    import time

    from storage_nodes.catalog import catalog as C

    mod = tmp_path / "sn_live_mod.py"
    mod.write_text("def f(x):\n    return x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("sn_live_mod")
    try:
        first = C.live_identity("sn_live_mod", "f")
        assert first[1] is not None and C.live_identity("sn_live_mod", "f") == first  # remembered
        time.sleep(0.01)
        mod.write_text("def f(x):\n    return x + 1\n")  # edited on disk: another source digest
        assert C.live_identity("sn_live_mod", "f")[1] not in (None, first[1])
    finally:
        sys.modules.pop("sn_live_mod", None)


def test_a_flush_batch_holds_a_bounded_amount_of_payload(cat, tmp_path, monkeypatch):
    from storage_nodes.catalog import queue as Q

    for i in range(5):
        sn.save([i], tmp_path / f"{i}.json", catalog=cat)
    size = max(len(t) for t in _queue_rows(cat))
    monkeypatch.setattr(Q, "DRAIN_BYTES", 2 * size)  # two payloads a batch
    batches = []
    real = Q.drain
    monkeypatch.setattr(Q, "drain", lambda *a: batches.append(real(*a)) or batches[-1])
    assert cat.flush() == 5 and batches == [2, 2, 1, 0]
    assert sorted(h.path.name for h in cat.find(kind="save")) == [f"{i}.json" for i in range(5)]


def test_index_counts_other_tools_files_in_one_line(url, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    sn.save([1], runs / "ok.json")
    (runs / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (runs / "graph.svg").write_text("<svg/>")
    (runs / "other.svg").write_text("<svg/>")
    (runs / "broken.h5").write_text("not hdf5")  # ours by name: its own line, with why
    report = sn.Catalog(url).index(runs)
    assert report.recorded == [str(runs / "ok.json")]
    assert sorted(report.foreign) == sorted(str(runs / n) for n in ("plot.png", "graph.svg", "other.svg"))
    assert report.foreign_summary() == "3 file(s) no backend claims (.svg 2, .png 1)"
    assert [p for p, _ in report.skipped] == [str(runs / "broken.h5")]
    code, out, _ = _cli("index", str(runs), "--catalog", url)
    assert code == 0 and "ignored 3 file(s) no backend claims (.svg 2, .png 1)" in out
    assert "plot.png" not in out and "broken.h5" in out
