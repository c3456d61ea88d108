"""Every node of a run is recorded, at any depth (issue 25): inside macros and the bodies of
for-each (a record per iteration, with its inputs), if, while and try. Each inner call is
found by ``find(node=...)`` and by ``lookup``. On SQLite and PostgreSQL."""

from __future__ import annotations

import _node_kinds as k
import pyiron_workflow as pwf
import pytest

import storage_nodes as sn

pytestmark = pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")


@pytest.fixture
def cat(url):
    with sn.Catalog(url, create=True) as c:
        yield c


def _saved(cat, tmp_path, node, **inputs):
    node.run(**inputs)
    return sn.save_workflow(node, tmp_path / f"{node.label}.h5", catalog=cat).resolve()


def _calls(cat, function) -> list[tuple[str, dict]]:
    return sorted((h.key, h.inputs) for h in cat.find(node=function))


def test_a_macro_records_its_inner_macro_and_its_nodes(cat, tmp_path):
    _saved(cat, tmp_path, pwf.node(k.outer, "outer"), a=1, b=2)
    assert _calls(cat, k.plus) == [("chain_0/nodes/plus_0", {"a": 3, "b": 2}), ("plus_0", {"a": 1, "b": 2})]
    assert _calls(cat, k.scale) == [("chain_0/nodes/scale_0", {"v": 5, "factor": 2.0})]
    assert [h.key for h in cat.find(node=k.chain)] == ["chain_0"]
    assert cat.lookup(k.scale, v=5)["scaled"] == 10.0 and cat.lookup(k.plus, a=3, b=2)["total"] == 5
    (scale,) = cat.find(node=k.scale)
    assert [u.key for u in scale.upstream] == ["chain_0/nodes/plus_0"]  # edges inside the macro


def test_a_for_each_records_one_call_per_iteration_with_its_inputs(cat, tmp_path):
    path = _saved(cat, tmp_path, pwf.node(k.inner(k.shifted, "for_each"), "shift"), values=[1, 2, 3], by=10)
    assert _calls(cat, k.plus) == [(f"body_{i}/nodes/plus_0", {"a": v, "b": 10}) for i, v in enumerate([1, 2, 3])]
    assert all(h.path == path and not h.stale for h in cat.find(node=k.plus))
    assert [cat.lookup(k.plus, a=v, b=10)["total"] for v in (1, 2, 3)] == [11, 12, 13]
    (run,) = cat.find(kind="run")
    assert sorted(h.key for h in run.nodes) == [f"body_{i}/nodes/plus_0" for i in range(3)]


def test_an_if_records_its_condition_and_the_branch_taken(cat, tmp_path):
    _saved(cat, tmp_path, pwf.node(k.inner(k.absolute, "if"), "abs"), v=-4)
    assert _calls(cat, k.above_zero) == [("condition_0", {"v": -4})]
    assert _calls(cat, k.flip) == [("else_body/nodes/flip_0", {"v": -4})]
    assert cat.find(node=k.same) == []  # the branch not taken ran nothing
    assert cat.lookup(k.flip, v=-4)["flipped"] == 4 and cat.lookup(k.above_zero, v=-4)["yes"] is False


def test_a_while_records_every_condition_and_body(cat, tmp_path):
    _saved(cat, tmp_path, pwf.node(k.inner(k.halvings, "while"), "halve"), v=37)
    values = [37, 18, 9, 4, 2, 1]
    assert _calls(cat, k.halve) == [(f"body_{i}/nodes/halve_0", {"v": v}) for i, v in enumerate(values)]
    assert [h.inputs["v"] for h in sorted(cat.find(node=k.above_zero), key=lambda h: h.key)] == [*values, 0]
    assert cat.lookup(k.halve, v=9)["smaller"] == 4


def test_a_try_records_the_failed_try_and_the_handler(cat, tmp_path):
    _saved(cat, tmp_path, pwf.node(k.inner(k.guarded_ratio, "try"), "guard"), a=3.0, b=0.0)
    assert _calls(cat, k.ratio) == [("try_body/nodes/ratio_0", {"a": 3.0, "b": 0.0})]
    assert _calls(cat, k.same) == [("except_body_0/nodes/same_0", {"v": 3.0})]
    assert cat.lookup(k.same, v=3.0)["same"] == 3.0


def test_flow_controls_inside_a_workflow_and_index_agree(cat, tmp_path, url):
    wf = pwf.Workflow("mixed")
    wf.shift = pwf.node(k.inner(k.shifted, "for_each"), "shift", values=[-3, 1], by=1)
    wf.abs = pwf.node(k.absolute, "abs", v=-2)
    wf.guard = pwf.node(k.inner(k.guarded_ratio, "try"), "guard", a=wf.abs, b=0.0)
    wf.run()
    (tmp_path / "runs").mkdir()
    sn.save_workflow(wf, tmp_path / "runs" / "mixed.h5", catalog=cat)
    assert _calls(cat, k.plus) == [("shift/nodes/body_0/nodes/plus_0", {"a": -3, "b": 1}),
                                   ("shift/nodes/body_1/nodes/plus_0", {"a": 1, "b": 1})]  # fmt: skip
    assert [h.key for h in cat.find(node=k.same)] == ["guard/nodes/except_body_0/nodes/same_0"]
    at_save = sorted((h.key, h.node, h.call) for h in cat.find())
    with sn.Catalog(tmp_path / "again.sqlite") as again:  # index finds the same calls in the file
        again.index(tmp_path / "runs")
        assert sorted((h.key, h.node, h.call) for h in again.find()) == at_save
