"""The catalog in graphs: SaveNode's catalog port and FindNode, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pyiron_workflow as pwf
import pytest
from _catalog_nodes import build, make_structure, relax, report

import storage_nodes as sn
from storage_nodes import FindNode, SaveNode
from storage_nodes.errors import KeyNotFoundError

pytestmark = pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")


def test_find_node_is_exported_and_has_the_documented_ports():
    assert sn.FindNode is FindNode and "FindNode" in sn.__all__ and "Catalog" in sn.__all__
    node = pwf.node(FindNode, "f")
    assert list(node.inputs) == ["catalog", "node", "input_values", "metadata", "port", "safe"]
    assert list(node.outputs) == ["value"]


def test_save_node_records_into_the_catalog_given_as_a_string(url, tmp_path):
    wf = pwf.Workflow("saver")
    wf.make = pwf.node(make_structure, n=3)
    wf.save = pwf.node(SaveNode, obj=wf.make, path=str(tmp_path / "s.h5"), metadata={"sample": "Cu-3"}, catalog=url)
    wf.keyed = pwf.node(SaveNode, obj=wf.make, path=str(tmp_path / "k.h5"), key="a/b", catalog=url)
    wf.off = pwf.node(SaveNode, obj=wf.make, path=str(tmp_path / "off.h5"))
    wf.run()
    with sn.Catalog(url) as cat:
        hits = {h.path.name: h for h in cat.find(kind="save")}
        assert sorted(hits) == ["k.h5", "s.h5"]  # catalog=None records nothing
        assert hits["s.h5"].metadata == {"sample": "Cu-3"} and hits["k.h5"].key == "a/b"
        assert (hits["s.h5"].load() == make_structure(3)).all()


def test_find_node_brings_an_earlier_result_into_a_workflow(url, tmp_path):
    sn.save_workflow(build(T=300.0), tmp_path / "a.h5", catalog=url, metadata={"sample": "Cu-3"})
    sn.save_workflow(build(T=200.0), tmp_path / "b.h5", catalog=url, metadata={"sample": "Cu-3"})
    wf = pwf.Workflow("reuse")
    wf.prev = pwf.node(FindNode, catalog=url, node="_catalog_nodes.relax", input_values={"T": 300.0}, port="energy")
    wf.all = pwf.node(FindNode, catalog=url, node="_catalog_nodes.relax", metadata={"sample": "Cu-3"})
    run = wf.run()
    energy = run.result.nodes["prev"].output_ports["value"].value
    assert energy == relax(make_structure(4), T=300.0)[0]
    newest = run.result.nodes["all"].output_ports["value"].value  # all outputs of the newest match (T=200)
    assert sorted(newest) == ["energy", "forces"] and newest["energy"] == relax(make_structure(4), T=200.0)[0]
    # the recipe round-trips with the FindNode in it
    rebuilt = pwf.Workflow.from_recipe(wf.recipe, "again")
    assert rebuilt.run().result.nodes["prev"].output_ports["value"].value == energy


def test_find_node_for_plain_saves_and_when_nothing_matches(url, tmp_path):
    sn.save({"x": 1}, tmp_path / "p.json", metadata={"tag": "mine"}, catalog=url)
    assert FindNode(catalog=url, metadata={"tag": "mine"}) == {"x": 1}
    with pytest.raises(KeyNotFoundError, match="no entry"):
        FindNode(catalog=url, node="_catalog_nodes.relax", input_values={"T": -1.0})
    (tmp_path / "p.json").write_text('{"x": 2}')  # rewritten: stale, passed over
    with pytest.raises(KeyNotFoundError, match="1 stale"):
        FindNode(catalog=url, metadata={"tag": "mine"})


def test_save_nodes_in_worker_processes_record_into_one_catalog(url, tmp_path):
    context = multiprocessing.get_context("spawn")  # pyiron_workflow's default for process pools
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        wf = pwf.Workflow("processes")
        for i in range(4):
            grid = pwf.node(make_structure, f"make{i}", n=2 + i)
            save = pwf.node(SaveNode, f"save{i}", obj=grid, path=str(tmp_path / f"p{i}.h5"), catalog=url)
            save.executor = pool
            wf.add_node(grid, save)
        wf.run()
    with sn.Catalog(url) as cat:
        assert sorted(h.path.name for h in cat.find(kind="save")) == [f"p{i}.h5" for i in range(4)]


def test_report_node_upstream_lineage_after_save_workflow(url, tmp_path):
    sn.save_workflow(build(T=1.0), tmp_path / "w.h5", catalog=url)
    with sn.Catalog(url) as cat:
        (h,) = cat.find(node=report)
        (up,) = h.upstream
        assert up.node == "_catalog_nodes.relax" and up.inputs["T"] == 1.0


def test_a_catalog_password_in_a_save_node_port_is_not_kept_in_the_catalog(postgres_url, tmp_path):
    import sqlalchemy as sa

    from storage_nodes.catalog import schema as S

    secret = "s3cr3t-Pa55"
    with_password = sa.make_url(postgres_url).set(password=secret).render_as_string(hide_password=False)
    wf = pwf.Workflow("pw")
    wf.make = pwf.node(make_structure, n=2)
    wf.save = pwf.node(SaveNode, obj=wf.make, path=str(tmp_path / "s.h5"), catalog=with_password)
    wf.run()
    sn.save_workflow(wf, tmp_path / "run.h5", catalog=with_password)  # trust authentication ignores it
    with sn.Catalog(postgres_url) as cat:
        (saver,) = cat.find(node="storage_nodes.nodes.SaveNode")
        # the stored workflow holds the URL without its password (the server's own way to get
        # credentials, ~/.pgpass or PGPASSWORD, applies on a rerun), and so does the catalog
        without = sa.make_url(with_password)._replace(password=None).render_as_string(hide_password=False)
        assert saver.inputs["catalog"] == without
        with cat._engine.connect() as conn:
            previews = conn.execute(sa.select(S.inputs.c.preview)).scalars().all()
        assert previews and not any(secret in p for p in previews)
        (first,) = cat.find(kind="save")
    assert secret.encode() not in (tmp_path / "run.h5").read_bytes()
    assert secret not in str(sn.inspect(tmp_path / "run.h5", full=True))
    stored = sn.load_workflow(tmp_path / "run.h5")
    assert stored["save/inputs/catalog"] == without
    stored.rerun(overwrite=True)  # trust authentication: the URL without a password still connects
    with sn.Catalog(postgres_url) as cat:
        (again,) = cat.find(kind="save")  # the SaveNode of the rerun recorded its file anew
        assert again.created_at > first.created_at
