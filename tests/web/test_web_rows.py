"""The web page's rows and file checks without a browser: paging, sorting, filters from a
query, stale runs, and which recorded paths may be read (real files, a real SQLite catalog)."""

from __future__ import annotations

import os

import pytest

import storage_nodes as sn
from storage_nodes.web import files, rows


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """120 plain saves (one file each, 3 of them by bob), the 7th rewritten since it was recorded."""
    d = tmp_path_factory.mktemp("rows")
    cat = sn.Catalog(d / "c.sqlite")
    old = os.environ.get("LOGNAME")
    try:
        for i in range(120):
            os.environ["LOGNAME"] = "bob" if i % 40 == 0 else "alice"
            sn.save({"i": i, "pad": "x" * i}, d / f"f{i:03d}.json", catalog=cat, metadata={"i": i})
    finally:
        if old is None:
            del os.environ["LOGNAME"]
        else:
            os.environ["LOGNAME"] = old
    sn.save({"i": "rewritten"}, d / "f007.json")  # without the catalog: stale
    yield cat, d
    cat.close()


def _names(page: rows.RunsPage) -> list[str]:
    return [r.path.name for r in page.rows]


def test_pages_of_50_newest_first_with_a_next_link(catalog):
    cat, _ = catalog
    first = rows.runs_page(cat, rows.Filters())
    assert len(first.rows) == 50 and first.has_next and first.total == 120
    assert _names(first)[:2] == ["f119.json", "f118.json"]
    last = rows.runs_page(cat, rows.Filters(), page=3)
    assert _names(last)[-1] == "f000.json" and len(last.rows) == 20 and not last.has_next and last.total == 120


def test_sorting_by_a_column_and_the_cap_beyond_which_it_stays_newest_first(catalog, monkeypatch):
    cat, _ = catalog
    by_size = rows.runs_page(cat, rows.Filters(), sort="size", desc=False)
    sizes = [r.size for r in by_size.rows]
    assert sizes == sorted(sizes) and by_size.total == 120 and by_size.note is None
    by_path = rows.runs_page(cat, rows.Filters(), sort="path", desc=True, page=3)
    assert _names(by_path)[-1] == "f000.json"
    monkeypatch.setattr(rows, "SORT_CAP", 10)
    capped = rows.runs_page(cat, rows.Filters(), sort="path", desc=False)
    assert "more than 10 records match" in capped.note and _names(capped)[0] == "f119.json"
    with pytest.raises(sn.InvalidArgumentError, match="sort by one of"):
        rows.runs_page(cat, rows.Filters(), sort="password")


def test_filters_come_from_the_query_and_go_back_into_it(catalog):
    cat, _ = catalog
    f = rows.Filters.from_query({"user": ["bob"], "meta": ["i=40"], "stale": [""], "node": ["  "]})
    assert f.user == "bob" and f.metadata == (("i", "40"),) and f.stale is None and f.node is None
    assert rows.Filters.from_query({k: [v] for k, v in f.query()}) == f
    page = rows.runs_page(cat, f)
    assert _names(page) == ["f040.json"] and page.rows[0].metadata == {"i": 40}
    assert _names(rows.runs_page(cat, rows.Filters(user="bob"))) == ["f080.json", "f040.json", "f000.json"]
    stale = rows.runs_page(cat, rows.Filters(stale="yes"))
    assert _names(stale) == ["f007.json"] and stale.rows[0].stale
    assert rows.runs_page(cat, rows.Filters(stale="no")).rows[0].path.name == "f119.json"
    for bad in ({"stale": ["maybe"]}, {"kind": ["workflow"]}, {"input": ["T"]}):
        with pytest.raises(sn.InvalidArgumentError):
            rows.Filters.from_query(bad)


def test_a_record_is_found_by_id_and_time_only(catalog):
    cat, _ = catalog
    row = rows.runs_page(cat, rows.Filters(user="bob")).rows[0]
    hit = rows.record_hit(cat, row.id, rows.parse_stamp(row.stamp))
    assert hit is not None and hit.path == row.path
    assert rows.record_hit(cat, row.id + 1, row.at) is None  # another file's record, another time
    assert [h.path for h in rows.run_hits(cat, row.id, row.at)] == [row.path]
    with pytest.raises(sn.InvalidArgumentError):
        rows.parse_stamp("../../etc/passwd")


def test_only_plain_absolute_recorded_paths_under_the_roots_are_readable(catalog, tmp_path):
    _, d = catalog
    recorded = d / "f001.json"
    assert files.allowed_path(recorded, []) == recorded
    assert files.allowed_path(recorded, [d]) == recorded
    for path, roots, why in (
        (recorded.relative_to(d), [], "absolute"),
        (d / ".." / d.name / "f001.json", [], "absolute"),
        (recorded, [tmp_path], "outside the directories"),
        (d / "gone.json", [], "gone"),
    ):
        with pytest.raises(files.NotServed, match=why):
            files.allowed_path(path, roots)
    link = tmp_path / "link.json"
    link.symlink_to(recorded)
    with pytest.raises(files.NotServed, match="symlink"):
        files.allowed_path(link, [])
    through = tmp_path / "dir"
    through.symlink_to(d)
    with pytest.raises(files.NotServed, match="symlink"):
        files.allowed_path(through / "f001.json", [])
