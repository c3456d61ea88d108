"""The catalog as a job table (issue 25): ``table()``, ``find(kind="run")``, ``get``, ids, a run's nodes,
forgiving number queries. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _catalog_nodes import build, relax

import storage_nodes as sn
from storage_nodes.errors import InvalidArgumentError, KeyNotFoundError

pytestmark = pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")


@pytest.fixture
def cat(url):
    with sn.Catalog(url, create=True) as c:
        yield c


@pytest.fixture
def filled(cat, tmp_path):
    """Two runs and a plain save, oldest first: relax_wf (T=300.0, metadata), hot (T=600.0), an array."""
    a = sn.save_workflow(build(T=300.0), tmp_path / "a.h5", catalog=cat, metadata={"sample": "Cu"})
    b = sn.save_workflow(build(T=600.0, label="hot"), tmp_path / "b.h5", catalog=cat)
    x = sn.save(np.arange(3.0), tmp_path / "x.h5", catalog=cat, metadata={"Sample": "Al"})
    return cat, a.resolve(), b.resolve(), x.resolve()


def test_table_of_runs_has_one_row_per_run_and_save_newest_first(filled):
    cat, a, b, x = filled
    t = cat.table()
    assert isinstance(t, pd.DataFrame)
    assert list(t.kind) == ["save", "run", "run"]
    assert [p for p in t.path] == [str(x), str(b), str(a)]
    assert list(t.workflow[1:]) == ["hot", "relax_wf"] and t.workflow[0] is None
    # a run's inputs are its free inputs, as pyiron_workflow names them; ints stay ints
    assert t["in.relax__T"][1] == 600.0 and t["in.relax__T"][2] == 300.0
    assert t["in.make__n"][2] == 4 and type(t["in.make__n"][2]) is int
    assert "in.relax__structure" not in t.columns  # fed by make: not a free input
    assert t.outputs[1] == ["report__report"]
    assert t["meta.sample"][2] == "Cu" and t["meta.sample"][1] is None and t["meta.Sample"][0] == "Al"
    assert str(t.created_at.dt.tz) == "UTC" and t.created_at.is_monotonic_decreasing
    assert list(t.stale) == [False, False, False] and t["size"][0] == x.stat().st_size
    assert list(t.columns[:5]) == ["id", "kind", "workflow", "node", "label"]
    assert t.id[1].startswith("r") and t.id[0].startswith("s")


def test_table_of_nodes_and_saves_and_columns(filled):
    cat, _a, _b, x = filled
    nodes = cat.table(kind="node")
    assert len(nodes) == 6 and set(nodes.kind) == {"node"}
    relaxes = nodes[nodes.node == "_catalog_nodes.relax"]
    assert sorted(relaxes["in.T"]) == [300.0, 600.0]
    assert repr(relaxes["in.structure"].iloc[0]).startswith("<numpy.ndarray float64 shape=(4, 3)")
    saves = cat.table(kind="save")
    assert list(saves.path) == [str(x)] and saves.key[0] == ""
    picked = cat.table(columns=["id", "in.relax__T", "meta.nothing"])
    assert list(picked.columns) == ["id", "in.relax__T", "meta.nothing"]
    with pytest.raises(InvalidArgumentError, match="no column 'colour'"):
        cat.table(columns=["colour"])
    with pytest.raises(InvalidArgumentError, match="kind must be one of"):
        cat.table(kind="workflow")
    assert len(cat.table(limit=1)) == 1 and cat.table(limit=1).kind[0] == "save"


def test_table_takes_finds_filters_and_numbers_compare_by_value(filled):
    cat, a, b, _x = filled
    assert list(cat.table(inputs={"T": 600}).workflow) == ["hot"]  # 600 finds 600.0
    assert list(cat.table(node=relax, inputs={"T": 300}).path) == [str(a)]
    assert list(cat.table(metadata={"sample": "Cu"}).path) == [str(a)]
    assert list(cat.table(workflow="hot").path) == [str(b)]
    assert [h.label for h in cat.find(inputs={"T": 600})] == ["relax"]
    assert [h.label for h in cat.find(inputs={"steps": 3.0}, workflow="hot")] == ["relax"]  # 3.0 finds 3
    assert cat.find(inputs={"steps": True}) == []  # a bool is no number
    assert cat.table(kind="node", inputs={"T": 601}).empty


def test_bool_never_matches_one(cat, tmp_path):
    import pyiron_workflow as pwf
    from _catalog_nodes import make_structure

    wf = pwf.Workflow("flags")
    wf.make = pwf.node(make_structure, n=2)
    wf.relax = pwf.node(relax, structure=wf.make, T=1.0, steps=1)
    wf.run()
    sn.save_workflow(wf, tmp_path / "f.h5", catalog=cat)
    assert [h.label for h in cat.find(inputs={"steps": 1.0})] == ["relax"]
    assert cat.find(inputs={"steps": True}) == [] and cat.find(inputs={"T": True}) == []


def test_find_runs_get_nodes_and_load_workflow(filled):
    cat, a, b, _x = filled
    found = cat.find(kind="run")
    assert [h.kind for h in found] == ["save", "run", "run"]
    run = found[1]
    assert run.path == b and run.workflow == "hot" and run.inputs["relax__T"] == 600.0
    assert run.id.startswith("r") and cat.get(run.id).path == b
    assert sorted(h.label for h in run.nodes) == ["make", "relax", "report"]
    node = next(h for h in run.nodes if h.label == "relax")
    again = cat.get(node.id)
    assert again.kind == "node" and again.node == "_catalog_nodes.relax" and again.inputs["T"] == 600.0
    assert again.load("energy") == node.load("energy")
    stored = run.load_workflow()
    assert stored.label == "hot"
    save = cat.get(found[0].id)
    assert save.kind == "save" and np.array_equal(save.load(), np.arange(3.0)) and save.nodes == []
    with pytest.raises(InvalidArgumentError, match="not a run"):
        save.load_workflow()
    assert [h.id for h in cat.find(kind="run", limit=2)] == [h.id for h in found[:2]]
    assert [h.path for h in cat.find(kind="run", inputs={"T": 300})] == [a]


def test_get_refuses_unknown_and_malformed_ids(filled):
    cat = filled[0]
    with pytest.raises(KeyNotFoundError, match="no entry r999999"):
        cat.get("r999999")
    node_id = cat.find(kind="node")[0].id
    with pytest.raises(KeyNotFoundError):
        cat.get("s" + node_id[1:])  # a node's number is no save
    for bad in ("12", "x1", "r", "r-1", 12):
        with pytest.raises(InvalidArgumentError, match="not a catalog entry id"):
            cat.get(bad)


def test_empty_table_has_the_base_columns(cat):
    t = cat.table()
    assert t.empty and list(t.columns) == ["id", "kind", "workflow", "node", "label", "outputs", "user", "host",
                                           "created_at", "path", "key", "size", "stale"]  # fmt: skip


def test_no_silent_catalogs(tmp_path, postgres_url):
    from storage_nodes.errors import CatalogError, CatalogNotFoundError

    real = tmp_path / "study.sqlite"
    sn.save([1], tmp_path / "x.json", catalog=sn.Catalog(real))  # the first recording creates a catalog
    typo = tmp_path / "study.sqllite"
    for read in (lambda c: c.find(), lambda c: c.table(), lambda c: c.stats(), lambda c: c.get("r1")):
        with pytest.raises(CatalogNotFoundError, match=r"no catalog .*study\.sqllite \(did you mean study\.sqlite\?\)"):
            read(sn.Catalog(typo))
    assert not typo.exists() and issubclass(CatalogNotFoundError, CatalogError)
    with pytest.raises(CatalogNotFoundError, match=r"the directory .* does not exist"):
        sn.Catalog(tmp_path / "nowhere" / "c.sqlite").find()
    assert not (tmp_path / "nowhere").exists()
    assert sn.Catalog(tmp_path / "new.sqlite", create=True).table().empty and (tmp_path / "new.sqlite").exists()
    with pytest.raises(CatalogNotFoundError, match="holds no storage_nodes catalog"):
        sn.Catalog(postgres_url).find()  # a database without the catalog's tables
    sn.Catalog(postgres_url).index(tmp_path)  # indexing records: it creates the tables
    assert len(sn.Catalog(postgres_url).find()) == 1
