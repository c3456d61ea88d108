"""Every node kind pyiron_workflow 0.20 builds is saved, loaded, rebuilt and rerun.

For each kind (atomic, workflow, macro, nested macro, for-each, if, while, try, and a
workflow holding flow controls) on every backend that stores the values: run it, save it
with ``save_workflow``, load it, compare the stored outputs with the run's, check that it
is rebuilt as the same kind, rerun it and compare again.
"""

from __future__ import annotations

import warnings

import _node_kinds as k
import numpy as np
import pyiron_workflow as pwf
import pytest

import storage_nodes as sn

BACKENDS = ["h5", "json", "pickle"]


def _atomic():
    return pwf.node(k.plus, "plus"), {"a": 2, "b": 5}


def _macro():
    return pwf.node(k.chain, "chain"), {"a": 1.5, "b": 2.0}


def _nested_macro():
    return pwf.node(k.outer, "outer"), {"a": 1, "b": 2}


def _for_each():
    return pwf.node(k.inner(k.shifted, "for_each"), "shift"), {"values": [1, 2, 3], "by": 10}


def _if():
    return pwf.node(k.inner(k.absolute, "if"), "abs"), {"v": -4}


def _while():
    return pwf.node(k.inner(k.halvings, "while"), "halve"), {"v": 37}


def _try():
    return pwf.node(k.inner(k.guarded_ratio, "try"), "guard"), {"a": 3.0, "b": 0.0}


def _workflow():
    wf = pwf.Workflow("mixed")
    wf.shift = pwf.node(k.inner(k.shifted, "for_each"), "shift", values=[-3, 1], by=1)
    wf.first = pwf.node(k.plus, "first", a=wf.shift.outputs.out, b=[0])
    wf.abs = pwf.node(k.absolute, "abs", v=-2)
    wf.scale = pwf.node(k.scale, "scale", v=wf.abs)
    wf.guard = pwf.node(k.inner(k.guarded_ratio, "try"), "guard", a=wf.scale, b=0.0)
    wf.set_outputs_to_unconnected_child_output()
    return wf, {}


KINDS = {
    "atomic": (_atomic, "atomic", "Atomic"),
    "macro": (_macro, "workflow", "Macro"),
    "nested macro": (_nested_macro, "workflow", "Macro"),
    "for-each": (_for_each, "for-each", "ForEach"),
    "if": (_if, "if", "If"),
    "while": (_while, "while", "While"),
    "try": (_try, "try", "Try"),
    "workflow with flow controls": (_workflow, "workflow", "Workflow"),
}


def _equal(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[x], b[x]) for x in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def _all_ports(result) -> dict:
    """``{node/…/port: value}`` of every output of a run's result, children included."""
    out = {f"outputs/{p}": port.value for p, port in result.output_ports.items()}
    for label, child in (getattr(result, "nodes", None) or {}).items():
        if hasattr(child, "output_ports"):
            out.update({f"{label}/{key}": v for key, v in _all_ports(child).items()})
    return out


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # workflows without exposed ports warn
        yield


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(KINDS))
def test_round_trip_and_rerun(name, backend, tmp_path):
    build, kind, node_class = KINDS[name]
    node, inputs = build()
    run = node.run(**inputs)
    path = sn.save_workflow(node, tmp_path / f"stored.{backend}", backend)

    stored = sn.load_workflow(path)
    assert (stored.kind, stored.node_class) == (kind, node_class)
    assert node_class in repr(stored)
    assert stored.outputs.keys() == run.outputs.keys() and stored.outputs
    for port, value in run.outputs.items():
        assert _equal(stored.outputs[port], value), port
        assert _equal(sn.load(path, key=f"outputs/{port}"), value)

    rebuilt = stored.node
    assert type(rebuilt).__name__ == node_class
    assert stored.workflow is rebuilt
    again = stored.rerun()
    before, after = _all_ports(run.result), _all_ports(again.result)
    assert before.keys() == after.keys()
    for key in before:
        assert _equal(after[key], before[key]), key


def test_inputs_given_to_rerun_replace_the_stored_ones(tmp_path):
    node, inputs = _for_each()
    node.run(**inputs)
    stored = sn.load_workflow(sn.save_workflow(node, tmp_path / "fe.h5"))
    assert stored.inputs == {"values": [1, 2, 3], "by": 10}
    assert stored.rerun(by=100).outputs["out"] == [101, 102, 103]


def test_children_of_flow_controls_are_stored_by_key(tmp_path):
    wf, _ = _workflow()
    wf.run()
    path = sn.save_workflow(wf, tmp_path / "wf.h5")
    listing = sn.inspect(path)
    # the for-each's scatter, bodies and gather are children of its entry, each with its ports
    assert {"shift/nodes/body_0/nodes/plus_0/outputs/total", "shift/inputs/values"} <= set(listing.keys())
    assert sn.load(path, key="guard/outputs/r") == 4.0  # 2 * 2.0 / 0.0 failed: the except branch kept a
    assert sn.load(path, key="first/outputs/total") == [-2, 2, 0]


def test_a_safe_load_of_any_kind_imports_nothing(tmp_path):
    node, inputs = _try()
    node.run(**inputs)
    stored = sn.load_workflow(sn.save_workflow(node, tmp_path / "t.json", "json"), safe=True)
    assert stored.kind == "try" and stored.outputs == {"r": 3.0}


def test_a_node_that_never_ran_is_a_storage_error(tmp_path):
    node, _ = _if()
    with pytest.raises(sn.StorageError, match=r"If 'abs' has no finished run"):
        sn.save_workflow(node, tmp_path / "never.h5")
    assert not (tmp_path / "never.h5").exists()


def test_an_unsupported_kind_is_a_storage_error_naming_it(tmp_path):
    constant = pwf.node(5, "five")
    constant.run()
    with pytest.raises(sn.StorageError, match=r"Constant node 'five' of recipe type 'constant'"):
        sn.save_workflow(constant, tmp_path / "c.h5")
    assert not (tmp_path / "c.h5").exists()


def test_a_recipe_pyiron_workflow_cannot_build_is_a_storage_error(tmp_path):
    node, inputs = _atomic()
    node.run(**inputs)
    path = sn.save_workflow(node, tmp_path / "a.json", "json")
    doc = sn.load(path)
    doc["@workflow"]["recipe"] = doc["@workflow"]["recipe"].replace('"qualname":"plus"', '"qualname":"gone"')
    broken = tmp_path / "broken.json"
    sn.save(doc, broken)
    with pytest.raises(sn.StorageError, match="cannot rebuild"):
        _ = sn.load_workflow(broken).node
