"""The catalog's web page in a real browser: ``storage-nodes catalog serve`` as a process on
SQLite and on PostgreSQL, its catalog filled by running real workflows, driven by headless
Chromium. Filter runs, open one (its drawn workflow), open a value (its plot), download the
file, hostile metadata stays text and runs nothing, traversal and unrecorded files are 404,
the password of the database URL appears nowhere, Ctrl-C stops the server cleanly."""

from __future__ import annotations

import os
import urllib.parse
import warnings
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from _catalog_nodes import build

import storage_nodes as sn

HOSTILE = '<script>alert("meta")</script><img src=x onerror=alert(2)>'
PASSWORD = "sekret-pw-42"


def _as(user: str, work):
    """Run ``work()`` with ``user`` as the login name the catalog records."""
    old = os.environ.get("LOGNAME")
    os.environ["LOGNAME"] = user
    try:
        return work()
    finally:
        if old is None:
            del os.environ["LOGNAME"]
        else:
            os.environ["LOGNAME"] = old


def _reader(source: Path):
    """A run whose LoadNode reads alice's energy: the lineage across runs."""
    import pyiron_workflow as pwf

    wf = pwf.Workflow("reader")
    wf.load = pwf.node(sn.LoadNode, path=str(source), key="relax/outputs/energy")
    wf.run()
    return wf


def _fill(cat: sn.Catalog, runs: Path, outside: Path) -> dict[str, Path]:
    warnings.filterwarnings("ignore", message=".*has no (input|output) ports")
    files = {
        "alice-300": runs / "alice-300.h5",
        "bob-300": runs / "bob-300.h5",
        "bob-400": runs / "bob-400.h5",
        "plain": runs / "plain.h5",
        "outside": outside / "alice-500.h5",
        "swapped": runs / "swapped.h5",
        "carol-reader": runs / "carol-reader.h5",
    }
    _as("alice", lambda: sn.save_workflow(build(T=300.0), files["alice-300"], catalog=cat, metadata={"sample": "A"}))
    _as("bob", lambda: sn.save_workflow(build(T=300.0, n=6), files["bob-300"], catalog=cat, metadata={"note": HOSTILE}))
    _as("bob", lambda: sn.save_workflow(build(T=400.0), files["bob-400"], catalog=cat))
    _as("alice", lambda: sn.save({"x": np.linspace(0.0, 1.0, 7)}, files["plain"], catalog=cat))
    _as("alice", lambda: sn.save_workflow(build(T=500.0), files["outside"], catalog=cat))
    _as("alice", lambda: sn.save_workflow(build(T=600.0), files["swapped"], catalog=cat))
    _as("carol", lambda: sn.save_workflow(_reader(files["alice-300"]), files["carol-reader"], catalog=cat))
    files["swapped"].unlink()  # a recorded file replaced by a symlink out of its place
    files["swapped"].symlink_to("/etc/passwd")
    cat.close()
    return files


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request, tmp_path_factory, catalog_server):
    """A filled catalog and its server (``--root`` the runs directory); yields (server, files, catalog URL)."""
    tmp = tmp_path_factory.mktemp(f"web-{request.param}")
    runs, outside = tmp / "runs", tmp / "outside"
    runs.mkdir()
    outside.mkdir()
    if request.param == "sqlite":
        url = str(tmp / "catalog.sqlite")
    else:
        from _postgres import create_database

        base = request.getfixturevalue("postgres_server")
        plain = create_database(base, f"web_{os.getpid()}")
        url = sa.make_url(plain).set(password=PASSWORD).render_as_string(hide_password=False)  # trust auth: ignored
    files = _fill(sn.Catalog(url), runs, outside)
    with catalog_server(url, tmp, "--root", str(runs)) as server:
        yield server, files, url


@pytest.fixture
def page(browser, site):
    """A fresh page that records every dialog and console error: a script that ran (or one the
    Content-Security-Policy blocked) would leave one; the 400 of a bad filter is expected."""
    p = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    dialogs: list[str] = []
    errors: list[str] = []
    p.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 400" not in m.text else None)
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    yield p
    p.close()
    assert dialogs == [] and errors == []


def _open_run(page, site, name: str) -> None:
    server, files, _ = site
    page.goto(server.url + "?" + urllib.parse.urlencode({"user": name.split("-")[0]}))
    page.locator("#runs tr.run", has_text=str(files[name])).locator("a").first.click()
    page.wait_for_load_state("load")


def test_runs_are_filtered_by_an_input_value_and_a_user_and_the_search_is_a_link(page, site):
    server, files, _ = site
    page.goto(server.url)
    assert page.locator("#runs tr.run").count() == 7
    page.fill("input[name=input]", "T=300.0")
    page.fill("input[name=user]", "bob")
    page.click("#search")
    page.wait_for_load_state("load")
    rows = page.locator("#runs tr.run")
    assert rows.count() == 1 and str(files["bob-300"]) in rows.first.inner_text()
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)
    assert query["input"] == ["T=300.0"] and query["user"] == ["bob"]
    page.click("#runs th a:text('path')")  # sorting keeps the filters
    assert page.locator("#runs tr.run").count() == 1 and "input=T%3D300.0" in page.url
    page.goto(server.url + "?input=T%3D300.0")  # a shared link: both users' runs at T=300
    assert page.locator("#runs tr.run").count() == 2


def test_a_run_shows_its_drawn_workflow_nodes_environment_and_hostile_metadata_as_text(page, site, tmp_path):
    server, files, _ = site
    _open_run(page, site, "bob-300")
    assert page.locator("#facts").inner_text().count(str(files["bob-300"])) == 1
    metadata = page.locator("#metadata")
    assert HOSTILE in metadata.inner_text()  # verbatim, as text
    assert metadata.locator("script, img").count() == 0 and page.locator("body script").count() == 0
    drawing = page.locator("#workflow")
    drawing.scroll_into_view_if_needed()
    page.wait_for_function("document.querySelector('#workflow').complete")
    assert page.evaluate("document.querySelector('#workflow').naturalWidth") > 100
    svg = page.request.get(server.url.rstrip("/") + drawing.get_attribute("src"))
    assert svg.status == 200 and svg.headers["content-type"] == "image/svg+xml" and b"relax" in svg.body()
    nodes = page.locator("#nodes").inner_text()
    assert "_catalog_nodes.relax" in nodes and "T = 300.0" in nodes and "n = 6" in nodes
    assert "git" in page.locator("#environment").inner_text()  # the node module's git commit
    page.screenshot(path=str(tmp_path / "web_run.png"), full_page=True)
    docs = os.environ.get("STORAGE_NODES_SCREENSHOTS")  # set to docs/images to refresh the docs' picture
    if docs and "sqlite" in str(server.out):
        page.screenshot(path=str(Path(docs) / "web_run.png"), full_page=False)
    assert (tmp_path / "web_run.png").stat().st_size > 10_000


def test_a_value_is_listed_plotted_and_its_file_downloads_byte_for_byte(page, site):
    server, files, _ = site
    _open_run(page, site, "alice-300")
    page.click("#nodes a.output:text('forces')")
    page.wait_for_load_state("load")
    assert "relax/outputs/forces" in page.locator("#listing").inner_text()
    assert "-0.9" in page.locator("#numbers").inner_text()  # the 4x3 forces, small enough to show
    page.wait_for_function("document.querySelector('#plot').complete")
    assert page.evaluate("document.querySelector('#plot').naturalWidth") > 100
    assert page.locator("a.upstream").inner_text() == "structure"  # fed by make's output
    with page.expect_download() as info:
        page.click("#download")
    assert Path(info.value.path()).read_bytes() == files["alice-300"].read_bytes()
    page.goto(server.url + "?kind=save")  # a plain save: its whole-file value, plotted from a safe load
    page.locator("#runs tr.run a").first.click()
    page.click("#nodes a")
    page.wait_for_function("document.querySelector('#listing') !== null")
    assert "x" in page.locator("#listing").inner_text() and page.locator("#plot").count() == 0  # a dict: listed


def test_a_run_links_the_run_it_read_and_that_run_links_back(page, site):
    _, files, _ = site
    _open_run(page, site, "carol-reader")
    upstream = page.locator("#upstream a.upstream-run")
    assert upstream.count() == 1 and "relax" in page.locator("#upstream").inner_text()  # the key read
    upstream.click()
    page.wait_for_load_state("load")
    assert str(files["alice-300"]) in page.locator("#facts").inner_text()
    assert files["carol-reader"].name in page.locator("#downstream").inner_text()
    page.locator("#downstream a.downstream-run").click()
    page.wait_for_load_state("load")
    assert str(files["carol-reader"]) in page.locator("#facts").inner_text()


def test_traversal_unrecorded_and_swapped_files_are_refused_with_404(page, site):
    server, files, _ = site
    base = server.url.rstrip("/")
    _open_run(page, site, "alice-300")
    download = page.locator("#download").get_attribute("href")
    for bad in (
        "/download/..%2F..%2Fetc%2Fpasswd",
        "/download/%2e%2e/%2e%2e/etc/passwd",
        "/download/1?at=..%2F..%2Fetc%2Fpasswd",
        download.replace("?at=", "?path=/etc/passwd&at=0"),
        "/value/1?at=20200101T000000.000000&port=structure",
        "/static/../../etc/passwd",
    ):
        got = page.request.get(base + bad)
        assert got.status == 404, bad
        assert b"root:" not in got.body()
    page.goto(server.url + "?user=alice")
    outside = page.locator("#runs tr.run", has_text=str(files["outside"])).locator("a").first.get_attribute("href")
    swapped = page.locator("#runs tr.run", has_text=str(files["swapped"])).locator("a").first.get_attribute("href")
    for run in (outside, swapped):
        assert page.request.get(base + run).status == 200  # the run page is there ...
        got = page.request.get(base + run.replace("/run/", "/download/"))
        assert got.status == 404 and b"root:" not in got.body()  # ... its file is not served
    assert b"outside the directories" in page.request.get(base + outside.replace("/run/", "/download/")).body()
    assert page.request.get(base + download).body() == files["alice-300"].read_bytes()


def test_stats_show_nodes_and_users_with_bar_charts(page, site):
    server, _, _ = site
    page.goto(server.url + "stats")
    assert "_catalog_nodes.relax" in page.locator("#per-node").inner_text()
    users = page.locator("#per-user").inner_text()
    assert "alice" in users and "bob" in users
    page.wait_for_function("document.querySelector('#chart-users').complete")
    assert page.evaluate("document.querySelector('#chart-nodes').naturalWidth") > 100


def test_ctrl_c_stops_the_server_and_no_password_was_shown(page, site):
    server, _, url = site
    assert (PASSWORD in url) == url.startswith("postgresql")  # the server was given the password
    for path in ("", "stats", "?user=%3Cb%3E", "?since=yesterday"):
        page.goto(server.url + path)
        assert PASSWORD not in page.content()
    assert "is not an ISO date" in page.locator("#problem").inner_text()  # a bad filter: said, not a crash
    assert server.interrupt() == 0
    logs = server.logs()
    assert "storage-nodes: stopped" in logs and PASSWORD not in logs
    assert "GET /stats" in logs  # the access log was written (and holds no password)
