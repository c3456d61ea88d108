"""Our nodes in the pyironflow GUI, in a real browser: Voila serves a notebook showing
``PyironFlow(library_roots=[storage_nodes.nodes, storage_nodes.demo])`` and Playwright
drives headless Chromium through it, as a user would: nodes come from the node library
tree, values are typed and picked in the node's fields, edges are dragged between
handles, and the toolbar's Run button runs the workflow in the notebook's kernel.

pyironflow 0.1.4 lists the functions *defined* in a library root's files (it parses them
and does not import), so the root is :mod:`storage_nodes.nodes` itself: a module that
only re-exports the nodes would show an empty entry.

One server and one page for the module: the tests build on each other in one workflow
(save, then load what was saved, then inspect it) and run in file order.
"""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

import storage_nodes as sn
from storage_nodes.demo import random_positions

NOTEBOOK = """\
import warnings

warnings.filterwarnings("ignore", message=".*has no (input|output) ports")
import storage_nodes.demo
import storage_nodes.nodes
from pyironflow import PyironFlow

gui = PyironFlow(library_roots=[storage_nodes.nodes, storage_nodes.demo])
gui.gui
"""

FIRST_LOAD_S = 180  # Voila starts a kernel that imports pyiron_workflow; allow for a busy 2-core machine
STEP_MS = 30_000  # one GUI step (a node added, an option sent to Python)
RUN_S = 120  # one workflow run, seen in the output panel


@pytest.fixture(scope="module")
def gui(browser, serve_notebook, tmp_path_factory):
    """The page showing the GUI, and the directory the tests' files go to."""
    here = tmp_path_factory.mktemp("gui")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(NOTEBOOK)]
    nbformat.write(nb, here / "gui.ipynb")
    with serve_notebook(here / "gui.ipynb") as url:
        page = browser.new_page(viewport={"width": 1800, "height": 1400})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            page.goto(url, timeout=FIRST_LOAD_S * 1000)
            page.wait_for_selector("[data-testid=workflow-toolbar]", timeout=FIRST_LOAD_S * 1000)
            page.get_by_text("Node Library", exact=True).click()
            yield page, here
        finally:
            page.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(autouse=True)
def screenshot_on_failure(request, gui, tmp_path_factory):
    """A failed step leaves a screenshot of the page and the server's log, named in the report."""
    yield
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        page, here = gui
        shot = tmp_path_factory.mktemp("gui-failure") / f"{request.node.name}.png"
        page.screenshot(path=str(shot))
        log = (here / "gui.voila.log").read_text(errors="replace")[-2000:]
        report.sections.append(("gui failure", f"screenshot: {shot}\nVoila log (tail):\n{log}"))


def tree_click(page, text: str) -> None:
    """Click the library tree's entry ``text``, then ctrl+click it to deselect it again.

    pyironflow 0.1.4's tree acts on every second "selected" event (``TreeView.handle_click``:
    a click usually sends the old entry's deselection, then the new one's selection). Which
    of the two arrives first is not fixed, so a plain click now and then acts on the *old*
    entry. With nothing selected before a click and the entry deselected after it, every
    action sends exactly one event: the click is acted on, the deselection is not.
    """
    anchor = page.locator(".jstree-anchor", has_text=re.compile(rf"^{re.escape(text)}$"))
    assert page.locator(".jstree-anchor[aria-selected=true]").count() == 0, "a tree entry is still selected"
    anchor.click()
    anchor.click(modifiers=["Control"])
    page.wait_for_function("() => !document.querySelector('.jstree-anchor[aria-selected=true]')", timeout=STEP_MS)


def add_node(page, file: str, name: str, label: str, at: tuple[float, float]) -> None:
    """Add ``name`` from the library tree's entry ``file``; drag it to ``at`` (fractions of the canvas).

    pyironflow places a new node near the view's left edge, so ``at`` keeps to the right,
    out of the way of the next one."""
    library = page.locator(".jstree-anchor", has_text=re.compile(r"^std$"))
    if not library.is_visible():  # a run opens the output panel instead
        page.get_by_text("Node Library", exact=True).click()
        library.wait_for(timeout=STEP_MS)
    anchor = page.locator(".jstree-anchor", has_text=re.compile(rf"^{name}$"))
    if not anchor.count():
        tree_click(page, file)
        anchor.wait_for(timeout=STEP_MS)
    before = page.locator("[data-testid^=rf__node-]").count()
    tree_click(page, name)
    node = page.locator(f"[data-testid=rf__node-{label}]")
    node.wait_for(timeout=STEP_MS)
    assert page.locator("[data-testid^=rf__node-]").count() == before + 1, "the click added more than one node"
    canvas = page.locator("[data-testid=rf__wrapper]").bounding_box()
    assert canvas is not None
    zoom_out(page, to=0.6)
    title = node.locator("[data-testid=node-title]")
    title.drag_to(
        page.locator("[data-testid=rf__wrapper]"),
        target_position={"x": canvas["width"] * at[0], "y": canvas["height"] * at[1]},
    )


def zoom_out(page, to: float) -> None:
    """Zoom the canvas out to at most ``to`` (the first node added zooms it to the maximum)."""
    viewport = page.locator(".react-flow__viewport")
    for _ in range(20):
        scale = float(viewport.evaluate("e => new DOMMatrix(getComputedStyle(e).transform).a"))
        if scale <= to:
            return
        page.locator(".react-flow__controls-zoomout").click()
        page.wait_for_timeout(100)  # the zoom animates
    pytest.fail(f"the canvas stays zoomed in at {scale}")


def connect(page, source: str, output: str, target: str, input_: str) -> None:
    """Drag an edge from ``source``'s output handle to ``target``'s input handle."""
    edges = page.locator("[data-testid^=rf__edge-]").count()
    page.locator(f"[data-testid=rf__node-{source}] [data-testid=handle-out-{output}]").drag_to(
        page.locator(f"[data-testid=rf__node-{target}] [data-testid=handle-in-{input_}]")
    )
    page.wait_for_function(f"document.querySelectorAll('[data-testid^=rf__edge-]').length > {edges}", timeout=STEP_MS)


def entry(page, node: str, port: str):
    return page.locator(f"[data-testid=rf__node-{node}] [data-testid=port-in-{port}] [data-testid=port-entry]")


def type_into(page, node: str, port: str, text: str) -> None:
    field = entry(page, node, port)
    field.fill(text)
    field.press("Enter")  # commits the entry to Python


def run(page, expect: str) -> str:
    """Press Run; return the output panel's text once it shows ``expect``."""
    page.locator("[data-testid=workflow-toolbar] button", has_text=re.compile("^Run$")).click()
    panel = page.locator(".jp-OutputArea", has_text="command: run executed")
    deadline = time.monotonic() + RUN_S
    text = ""
    while time.monotonic() < deadline:
        if panel.count():
            text = panel.first.inner_text()
            if expect in text:
                return text
            if "Error" in text or "Cannot run" in text:
                break
        time.sleep(0.2)
    pytest.fail(f"the run did not show {expect!r} within {RUN_S} s; the output panel says:\n{text}")


def test_the_library_tree_lists_our_nodes(gui):
    page, _ = gui
    tree_click(page, "nodes")
    for name in ("SaveNode", "LoadNode", "InspectNode"):
        page.locator(".jstree-anchor", has_text=re.compile(rf"^{name}$")).wait_for(timeout=STEP_MS)


def test_save_node_backend_dropdown_and_run_writes_each_chosen_backend(gui):
    page, here = gui
    add_node(page, "demo", "random_positions", "random_positions_0", at=(0.45, 0.15))
    add_node(page, "nodes", "SaveNode", "SaveNode_0", at=(0.75, 0.15))

    backend = entry(page, "SaveNode_0", "backend")
    assert backend.evaluate("e => e.tagName") == "SELECT"
    options = backend.locator("option").all_inner_texts()
    assert options == ["Select", "None", *[repr(name) for name in sn.registry.names()]]
    assert {"'h5'", "'json'", "'pickle'", "'cloudpickle'"} <= set(options)

    connect(page, "random_positions_0", "positions", "SaveNode_0", "obj")
    expected = random_positions(64, 0)
    for name in ("h5", "json"):
        target = here / f"positions_{name}.data"  # a suffix that says nothing: the dropdown decides
        type_into(page, "SaveNode_0", "path", str(target))
        backend.select_option(repr(name))
        text = run(page, expect=repr(str(target)))
        assert "SaveNode_0__path:" in text
        assert target.is_file()
        assert sn.registry.detect(target) == name
        assert np.array_equal(sn.load(target), expected)


def test_load_node_feeds_a_downstream_node(gui):
    page, here = gui
    add_node(page, "nodes", "LoadNode", "LoadNode_0", at=(0.45, 0.5))
    add_node(page, "demo", "distance_stats", "distance_stats_0", at=(0.75, 0.5))
    type_into(page, "LoadNode_0", "path", str(here / "positions_h5.data"))
    entry(page, "LoadNode_0", "safe").check()
    connect(page, "LoadNode_0", "obj", "distance_stats_0", "positions")
    text = run(page, expect="distance_stats_0__stats:")
    r = np.linalg.norm(random_positions(64, 0) - 0.5, axis=1)
    assert repr(float(r.mean())) in text and repr(float(r.max())) in text


def test_inspect_node_output_shows_in_the_output_panel(gui):
    page, here = gui
    add_node(page, "nodes", "InspectNode", "InspectNode_0", at=(0.5, 0.8))
    type_into(page, "InspectNode_0", "path", str(here / "positions_h5.data"))
    text = run(page, expect="InspectNode_0__listing:")
    shown = text.split("InspectNode_0__listing:", 1)[1].strip()
    listing = ast.literal_eval(shown[: shown.rindex("}") + 1])  # the dict the node returned, as displayed
    assert listing["backend"] == "h5"
    assert listing["root"]["type"] == "ndarray" and listing["root"]["shape"] == [64, 3]
    assert listing["path"] == str(here / "positions_h5.data")


def test_no_stray_files(gui):
    _, here = gui
    assert sorted(p.name for p in Path(here).iterdir() if not p.name.startswith("gui.")) == [
        "positions_h5.data",
        "positions_json.data",
    ]


def test_why_the_library_root_is_the_defining_module(tmp_path):
    """pyironflow 0.1.4 parses a root's files for decorated *definitions*; re-exports list nothing."""
    from pyironflow.treeview import NodeKind, list_definitions

    import storage_nodes.nodes

    reexport = tmp_path / "my_nodes.py"
    reexport.write_text("from storage_nodes.nodes import InspectNode, LoadNode, SaveNode  # noqa: F401\n")
    assert list_definitions(reexport) == []
    found = {d.name: d.kind for d in list_definitions(Path(storage_nodes.nodes.__file__))}
    assert {name: found.get(name) for name in ("SaveNode", "LoadNode", "InspectNode")} == dict.fromkeys(
        ("SaveNode", "LoadNode", "InspectNode"), NodeKind.ATOMIC
    )
