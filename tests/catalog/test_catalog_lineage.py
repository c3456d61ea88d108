"""Lineage across runs: a run's LoadNode and FindNode reads are recorded (``sn_reads``, schema
version 3), and ``Hit.fed_by`` / ``Hit.fed`` follow them both ways, on SQLite and PostgreSQL."""

from __future__ import annotations

import flowrep
import pytest
import sqlalchemy as sa
from _catalog_nodes import build

import storage_nodes as sn
from storage_nodes import FindNode, LoadNode
from storage_nodes.catalog import schema as S

pytestmark = pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")


@flowrep.atomic("twice")
def twice(x: float) -> float:
    return 2 * x


def _reader(label: str, **load):
    import pyiron_workflow as pwf

    wf = pwf.Workflow(label)
    wf.load = pwf.node(LoadNode, **load)
    wf.twice = pwf.node(twice, x=wf.load)
    wf.run()
    return wf


def _by_key(hits):
    return {(h.path.name, h.key) for h in hits}


def test_load_and_find_nodes_link_runs_both_ways(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import pyiron_workflow as pwf

    with sn.Catalog(url) as cat:
        sn.save_workflow(build(T=300.0), tmp_path / "a.h5", catalog=cat)
        # a relative path, as users write it, and a key inside the upstream run
        b = _reader("reader", path="a.h5", key="relax/outputs/energy")
        sn.save_workflow(b, tmp_path / "b.h5", catalog=cat)
        c = pwf.Workflow("finder")
        c.find = pwf.node(FindNode, catalog=url, node="_catalog_nodes.relax", input_values={"T": 300.0}, port="energy")
        c.twice = pwf.node(twice, x=c.find)
        c.run()
        sn.save_workflow(c, tmp_path / "c.h5", catalog=cat)

        (twice_b,) = [h for h in cat.find(node=twice) if h.path.name == "b.h5"]
        assert _by_key(twice_b.fed_by) == {("a.h5", "relax")}  # the record holding the key read
        (relax_a,) = cat.find(node="_catalog_nodes.relax")
        assert _by_key(relax_a.fed) == {("b.h5", "load"), ("c.h5", "find")}
        assert all(h.node in ("storage_nodes.nodes.LoadNode", "storage_nodes.nodes.FindNode") for h in relax_a.fed)
        (make_a,) = cat.find(node="_catalog_nodes.make_structure")
        assert make_a.fed == []  # b read a.h5's relax/outputs/energy: nothing of make
        (twice_c,) = [h for h in cat.find(node=twice) if h.path.name == "c.h5"]
        assert _by_key(twice_c.fed_by) == {("a.h5", "relax")}
        assert relax_a.fed_by == []


def test_a_read_recorded_before_what_it_read_is_linked_when_that_is_recorded(url, tmp_path):
    with sn.Catalog(url) as cat:
        sn.save(1.5, tmp_path / "p.h5")  # not recorded yet
        sn.save_workflow(_reader("early", path=str(tmp_path / "p.h5")), tmp_path / "e.h5", catalog=cat)
        (load_e,) = cat.find(node=LoadNode)
        assert load_e.fed_by == []
        assert cat.index(tmp_path).recorded  # now p.h5 is recorded (a plain save)
        assert _by_key(load_e.fed_by) == {("p.h5", "")}
        (plain,) = cat.find(kind="save")
        assert _by_key(plain.fed) == {("e.h5", "load")}


def test_removing_the_reader_removes_its_reads(url, tmp_path):
    with sn.Catalog(url) as cat:
        sn.save(1.5, tmp_path / "p.h5", catalog=cat)
        sn.save_workflow(_reader("r", path=str(tmp_path / "p.h5")), tmp_path / "e.h5", catalog=cat)
        (plain,) = cat.find(kind="save")
        assert len(plain.fed) == 1
        (tmp_path / "e.h5").unlink()
        cat.prune()
        assert plain.fed == []
        with cat._engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(S.reads)).scalar_one() == 0


def test_a_version_2_catalog_is_migrated_to_the_reads_table(url, tmp_path):
    with sn.Catalog(url) as cat:
        sn.save(1.5, tmp_path / "p.h5", catalog=cat)
        cat.flush()
        with cat._engine.begin() as conn:
            S.reads.drop(conn)
            conn.execute(S.schema.update().values(version=2))
    with sn.Catalog(url) as cat:
        assert [h.path.name for h in cat.find(kind="save")] == ["p.h5"]
        sn.save_workflow(_reader("r", path=str(tmp_path / "p.h5")), tmp_path / "e.h5", catalog=cat)
        (plain,) = cat.find(kind="save")
        assert _by_key(plain.fed) == {("e.h5", "load")}
        with cat._engine.connect() as conn:
            assert conn.execute(sa.select(S.schema.c.version)).scalar_one() == S.SCHEMA_VERSION == 3
