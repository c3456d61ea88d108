"""Removing catalog entries (issue 25): runs with their nodes, saves, shared files kept, all or nothing.
Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import os

import numpy as np
import pytest
import sqlalchemy as sa
from _catalog_nodes import build

import storage_nodes as sn
from storage_nodes.catalog import removal
from storage_nodes.catalog import schema as S
from storage_nodes.errors import CatalogError, KeyNotFoundError

pytestmark = pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")


@pytest.fixture
def cat(url):
    with sn.Catalog(url, create=True) as c:
        yield c


def _rows(cat) -> dict[str, list[tuple]]:
    """Every row of every table (the whole catalog), to compare before and after."""
    with cat._engine.connect() as conn:
        return {t.name: sorted(map(tuple, conn.execute(sa.select(t)).all()), key=repr) for t in S.CHILDREN_FIRST}


@pytest.fixture
def runs(cat, tmp_path):
    a = sn.save_workflow(build(T=300.0), tmp_path / "a.h5", catalog=cat).resolve()
    b = sn.save_workflow(build(T=600.0, label="hot"), tmp_path / "b.h5", catalog=cat).resolve()
    cat.flush()  # the tables complete, for _rows
    return cat, a, b


def test_remove_a_run_drops_its_nodes_and_keeps_its_file_unless_asked(runs):
    cat, a, b = runs
    (run_a,) = cat.find(kind="run", workflow="relax_wf")
    report = cat.remove(run_a.id)
    assert report.ids == [run_a.id] and report.records == 3 and report.deleted == [] and report.kept == []
    assert a.exists() and cat.find(workflow="relax_wf") == [] and len(cat.find(workflow="hot")) == 3
    with pytest.raises(KeyNotFoundError, match=f"no entry {run_a.id}"):
        cat.get(run_a.id)
    (run_b,) = cat.find(kind="run")
    report = cat.remove(run_b, files=True)  # a hit works as well as its id
    assert report.deleted == [str(b)] and not b.exists() and cat.table().empty
    assert _rows(cat)["sn_records"] == [] and _rows(cat)["sn_inputs"] == [] and _rows(cat)["sn_edges"] == []


def test_a_file_another_entry_uses_is_kept(cat, tmp_path):
    p = tmp_path / "shared.h5"
    sn.save(np.arange(3), p, key="a", catalog=cat)
    sn.save(np.arange(4), p, key="b", catalog=cat)
    first, second = sorted(cat.find(kind="save"), key=lambda h: h.key)
    report = cat.remove(first.id, files=True)
    assert report.deleted == []
    assert report.kept == [(str(p.resolve()), "other entries of the catalog still point at it")]
    assert p.exists() and [h.key for h in cat.find(kind="save")] == ["b"]
    report = cat.remove(second.id, files=True)
    assert report.deleted == [str(p.resolve())] and not p.exists()
    assert _rows(cat)["sn_files"] == []  # the file's last record took its row along


def test_removing_a_node_keeps_its_run_and_file(runs):
    cat, a, _b = runs
    (relax_a,) = cat.find(workflow="relax_wf", node="_catalog_nodes.relax")
    report = cat.remove(relax_a.id, files=True)
    assert report.records == 1 and report.deleted == [] and report.kept[0][0] == str(a) and a.exists()
    (run_a,) = cat.find(kind="run", workflow="relax_wf")
    assert sorted(h.label for h in run_a.nodes) == ["make", "report"]
    assert cat.find(workflow="relax_wf", node="_catalog_nodes.report")[0].upstream == []  # its edge went along


def test_an_unknown_id_removes_nothing(runs):
    cat, a, b = runs
    before = _rows(cat)
    ids = [h.id for h in cat.find(kind="run")]
    with pytest.raises(KeyNotFoundError, match="nothing was removed"):
        cat.remove([*ids, "r999999"], files=True)
    assert _rows(cat) == before and a.exists() and b.exists()


def test_a_failure_moving_the_second_file_leaves_rows_and_files_as_they_were(runs, monkeypatch):
    cat, a, b = runs
    before, bytes_a, bytes_b = _rows(cat), a.read_bytes(), b.read_bytes()
    real = os.replace
    calls = []

    def failing(src, dst):
        calls.append(src)
        if len(calls) == 2:
            raise PermissionError(13, "Permission denied")
        return real(src, dst)

    monkeypatch.setattr(removal.os, "replace", failing)
    with pytest.raises(CatalogError, match="Permission denied; nothing was removed"):
        cat.remove([h.id for h in cat.find(kind="run")], files=True)
    monkeypatch.undo()
    assert _rows(cat) == before and a.read_bytes() == bytes_a and b.read_bytes() == bytes_b
    assert sorted(os.listdir(a.parent)) == sorted(n for n in os.listdir(a.parent) if not n.startswith("."))


def test_a_failure_deleting_the_rows_moves_the_files_back(runs, monkeypatch):
    cat, a, b = runs
    before = _rows(cat)

    def boom(conn, location, plan, deleting):
        conn.execute(S.files.delete())  # a first statement ran: the transaction must undo it
        raise CatalogError("injected between the steps")

    monkeypatch.setattr(removal, "_delete", boom)
    with pytest.raises(CatalogError, match="injected"):
        cat.remove([h.id for h in cat.find(kind="run")], files=True)
    assert _rows(cat) == before and a.exists() and b.exists()
    assert not [n for n in os.listdir(a.parent) if "sn-removing" in n]


def test_a_file_recorded_again_after_the_plan_is_not_removed(runs, monkeypatch):
    cat, a, _b = runs
    (run_a,) = cat.find(kind="run", workflow="relax_wf")
    real_plan = removal._plan

    def plan_then_resave(conn, location, targets):
        plan = real_plan(conn, location, targets)
        sn.save_workflow(build(T=300.0), a, catalog=cat)  # another process records the file anew
        cat.flush()
        return plan

    monkeypatch.setattr(removal, "_plan", plan_then_resave)
    with pytest.raises(CatalogError, match="changed while removing"):
        cat.remove(run_a.id, files=True)
    assert a.exists() and len(cat.find(workflow="relax_wf")) == 3


def test_a_file_another_run_read_is_kept(runs, tmp_path, monkeypatch):
    """Lineage across runs (``sn_reads``): a run whose LoadNode read a file still uses that file."""
    import pyiron_workflow as pwf

    from storage_nodes import LoadNode

    cat, a, _b = runs
    monkeypatch.chdir(tmp_path)
    reader = pwf.Workflow("reader")
    reader.load = pwf.node(LoadNode, path=str(a), key="relax/outputs/energy")
    reader.run()
    sn.save_workflow(reader, tmp_path / "reader.h5", catalog=cat)
    (run_a,) = cat.find(kind="run", workflow="relax_wf")
    (run_reader,) = cat.find(kind="run", workflow="reader")
    report = cat.remove(run_a.id, files=True)
    assert report.deleted == [] and report.kept == [(str(a), f"run(s) {run_reader.id} read it")] and a.exists()
    assert cat.find(workflow="relax_wf") == []  # the entry went, the file stayed


def test_a_file_read_by_a_run_recorded_after_the_plan_is_not_deleted(runs, tmp_path, monkeypatch):
    """The check for readers (``sn_reads``) is made again inside the deleting transaction."""
    import pyiron_workflow as pwf

    from storage_nodes import LoadNode

    cat, a, _b = runs
    (run_a,) = cat.find(kind="run", workflow="relax_wf")
    before = a.read_bytes()
    real_plan = removal._plan

    def plan_then_read(conn, location, targets):
        plan = real_plan(conn, location, targets)
        reader = pwf.Workflow("late_reader")  # another process records a run that read a.h5
        reader.load = pwf.node(LoadNode, path=str(a), key="relax/outputs/energy")
        reader.run()
        sn.save_workflow(reader, tmp_path / "late.h5", catalog=cat)
        cat.flush()
        return plan

    monkeypatch.setattr(removal, "_plan", plan_then_read)
    with pytest.raises(CatalogError, match=r"read .*a\.h5 meanwhile"):
        cat.remove(run_a.id, files=True)
    assert a.read_bytes() == before and len(cat.find(workflow="relax_wf")) == 3
    assert not [n for n in os.listdir(a.parent) if "sn-removing" in n]
