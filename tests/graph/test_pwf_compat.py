"""The pyiron_workflow 0.20.x patch in storage_nodes.graph._pwf_compat: active, narrow, and loud when upstream moves.

If a test marked UPSTREAM fails, pyiron_workflow changed: read the message, then delete the
fix concerned from storage_nodes/graph/_pwf_compat.py (or the whole module and its call in nodes.py).
"""

from __future__ import annotations

import inspect
import typing
from typing import Literal

import flowrep
import pyiron_workflow as pwf
import pytest
from _nodes_helpers import make_grid, summarize
from pyiron_workflow import validation
from pyiron_workflow.workflow_node import Workflow

from storage_nodes.graph import _pwf_compat
from storage_nodes.nodes import SaveNode

pytestmark = pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")


def test_patch_is_version_gated_and_active():
    assert pwf.__version__.startswith(_pwf_compat.SUPPORTED), (
        f"pyiron_workflow {pwf.__version__}: re-check storage_nodes/graph/_pwf_compat.py against this version"
    )
    assert _pwf_compat.apply() is True
    assert _pwf_compat.is_applied()
    assert set(_pwf_compat.originals()) == {
        "validate_constant_edge",
        "_constant_hint_is_uncheckable",
        "_realize_pending",
    }


def test_UPSTREAM_private_signatures_are_the_ones_patched():
    originals = _pwf_compat.originals()
    assert list(inspect.signature(originals["validate_constant_edge"]).parameters) == ["edge", "owner"]
    assert list(inspect.signature(originals["_constant_hint_is_uncheckable"]).parameters) == [
        "source_hint",
        "target_hint",
    ]
    assert list(inspect.signature(originals["_realize_pending"]).parameters) == ["self", "node"]
    assert list(inspect.signature(validation._resolve_edge_hints).parameters) == ["edge", "owner"]


def test_UPSTREAM_still_refuses_a_member_string_constant_on_a_literal_port(monkeypatch):
    for name in ("validate_constant_edge", "_constant_hint_is_uncheckable"):
        monkeypatch.setattr(validation, name, _pwf_compat.originals()[name])
    wf = Workflow("unpatched")
    with pytest.raises(TypeError, match="not as-or-more-specific-than"):
        wf.save = pwf.node(SaveNode, obj=[1], path="x.json", backend="json")
    # When this stops raising, pyiron_workflow checks constants by value itself: delete the
    # validate_constant_edge / _constant_hint_is_uncheckable fix.


def test_UPSTREAM_still_keeps_two_sources_on_reassignment(monkeypatch):
    monkeypatch.setattr(Workflow, "_realize_pending", _pwf_compat.originals()["_realize_pending"])
    wf = Workflow("unpatched")
    wf.grid = pwf.node(make_grid, n=2)
    wf.grid.inputs.n = 3
    with pytest.raises(ValueError, match="multiple sources"):
        wf.run()
    # When this stops raising, pyiron_workflow replaces re-assigned sources itself: delete
    # the _realize_pending fix.


def test_reassignment_replaces_constants_and_edges():
    wf = Workflow("patched")
    wf.a = pwf.node(make_grid, n=2)
    wf.b = pwf.node(make_grid, n=3)
    wf.a.inputs.n = 4
    assert [lab for lab in wf.nodes if lab.startswith("a_n_constant")] == ["a_n_constant_0"]
    wf.s = pwf.node(summarize, grid=wf.a)
    wf.c = pwf.node(make_grid, scale=wf.s.outputs.total)
    wf.c.inputs.scale = 2.5  # an edge replaced by a constant
    wf.c.inputs.n = 2
    assert len(wf.run().result.nodes["c"].output_ports["grid"].value) == 2
    sources = [e for e in wf.edges if e.target.node == "c" and e.target.port == "scale"]
    assert len(sources) == 1 and sources[0].source.node.startswith("c_scale_constant")
    wf.undo()  # pyiron_workflow's undo still works across the patched step
    assert "c_n_constant_0" not in wf.nodes


def test_literal_members_forms():
    assert _pwf_compat.literal_members(Literal["a", "b"]) == ("a", "b")
    assert _pwf_compat.literal_members(typing.Annotated[Literal["a"], "meta"]) == ("a",)
    assert _pwf_compat.literal_members(Literal["a"] | Literal[1]) == ("a", 1)
    assert _pwf_compat.literal_members(Literal["a"] | None) is None
    assert _pwf_compat.literal_members(str) is None


def test_member_check_respects_types():
    wf = Workflow("types")
    wf.t = pwf.node(_takes_one)
    with pytest.raises(TypeError, match="True"):
        wf.t.inputs.x = True  # Literal[1] must not take True although True == 1
    wf.t.inputs.x = 1
    assert wf.run().result.nodes["t"].output_ports["y"].value == 1


def test_validate_reports_member_constants_as_valid():
    wf = Workflow("report")
    wf.save = pwf.node(SaveNode, obj=[1], path="x.json", backend="json")
    report = wf.validate(do_ontology=False).types
    assert report.valid and not report.invalid_edges


@flowrep.atomic("y")
def _takes_one(x: typing.Literal[1] = 1) -> int:
    return x


def test_other_pyiron_workflow_versions_are_not_patched(monkeypatch):
    monkeypatch.setattr(pwf, "__version__", "0.21.0")
    with pytest.warns(RuntimeWarning, match=r"0\.21\.0 is not 0\.20\.x"):
        assert _pwf_compat.apply.__wrapped__() is False
