"""``Listing._repr_html_``: the collapsible HTML tree Jupyter shows (content and escaping).

The same HTML is opened in a real headless browser in ``tests/gui/test_listing_browser.py``.
"""

from __future__ import annotations

import html.parser
import re

import numpy as np

import storage_nodes as sn
from storage_nodes import _listing_html
from storage_nodes.listing import Entry, Listing


class _Tags(html.parser.HTMLParser):
    """Counts tags and collects text; fails on unbalanced nesting of the tags we write."""

    NESTED = ("details", "summary", "ul", "li", "table", "tr", "td", "th", "div", "span")

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.counts: dict[str, int] = {}
        self.text: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag == "script":
            self.scripts += 1
        if tag in self.NESTED:
            self.stack.append(tag)
        if tag in ("li", "summary", "tr", "div"):
            self.text.append("\n")  # one line per entry / header row

    def handle_endtag(self, tag):
        if tag in self.NESTED:
            assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
            self.stack.pop()

    def handle_data(self, data):
        if self.lasttag != "style":
            self.text.append(data)


def _parse(markup: str) -> _Tags:
    p = _Tags()
    p.feed(markup)
    p.close()
    assert p.stack == [], f"unclosed tags {p.stack}"
    return p


def test_the_html_tree_shows_keys_types_shapes_sizes_metadata_and_environment(tmp_path):
    data = {"forces": np.zeros((4, 3)), "energy": -1.5, "final": {"positions": np.ones((64, 3), dtype=np.float32)}}
    path = sn.save(data, tmp_path / "r.h5", metadata={"sample": "Cu-3", "T": 300})
    markup = sn.inspect(path)._repr_html_()
    tags = _parse(markup)
    text = "".join(tags.text)
    assert tags.scripts == 0  # no JavaScript needed
    assert str(path) in text and "[h5" in text
    assert '{"T": 300, "sample": "Cu-3"}' in text  # metadata in the header
    assert "storage_nodes 0.1.0" in text and "Python 3." in text  # environment in the header
    assert "forces: ndarray (numpy) shape=(4, 3), dtype=float64, 96 B" in text
    assert "positions: ndarray (numpy) shape=(64, 3), dtype=float32, 768 B" in text
    assert "energy: float" in text
    # one <details> per entry with children (root, final), the root open, the others closed
    assert tags.counts["details"] == 2 and markup.count("<details open>") == 1
    assert tags.counts["summary"] == 2


def test_opaque_and_safe_refused_entries_are_marked(tmp_path):
    from tests._h5_objects import Atom  # a custom class, rebuilt by importing its module

    data = {"point": Atom("Cu", np.zeros(3)), "fn": np.linalg.norm, "plain": [1, 2, 3], "blob": (lambda x: x)}
    listing = sn.inspect(sn.save(data, tmp_path / "o.h5"))
    text = "".join(_parse(listing._repr_html_()).text)
    line = {m.group(1): m.group(0) for m in re.finditer(r"^(\w+): .*$", text, re.M)}
    assert "tests._h5_objects (git" in text or "tests._h5_objects" in line.get("modules", text)  # header
    assert "opaque" in line["blob"]
    assert "refused if safe" in line["point"] and "refused if safe" in line["fn"]
    assert "refused if safe" not in line["plain"] and "opaque" not in line["plain"]


def test_pickle_files_say_the_whole_file_is_refused_by_a_safe_load(tmp_path):
    listing = sn.inspect(sn.save({"a": 1}, tmp_path / "p.pkl"))
    assert "refused: this backend unpickles" in listing._repr_html_()


def test_hostile_keys_and_metadata_are_text_not_html(tmp_path):
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    data = {evil: 1, "a&b": {"</details></ul>": 2}}
    path = sn.save(data, tmp_path / "evil.json", metadata={"note": evil})
    markup = sn.inspect(path)._repr_html_()
    tags = _parse(markup)  # balanced: the hostile closing tags did not close ours
    assert tags.scripts == 0 and "img" not in tags.counts
    assert "<script>" not in markup and "onerror=alert(1)>" not in markup
    text = "".join(tags.text)
    assert evil in text  # shown, as text
    assert "a&b" in text and "</details></ul>" in text
    assert "&lt;script&gt;" in markup


def test_long_runs_of_same_shaped_entries_are_summarised(tmp_path):
    runs = [{"i": i, "x": np.ones(3)} for i in range(500)]
    data = {"runs": runs, "other": [np.zeros(2), "s", 1.0]}
    markup = sn.inspect(sn.save(data, tmp_path / "runs.h5"))._repr_html_()
    text = "".join(_parse(markup).text)
    shown = _listing_html.RUN_SHOWN + 1
    assert f"… {500 - shown} more like 0 (3 … 498" in text
    assert text.count(": dict") == 1 + shown  # the root, the first runs and the last (with their children)
    assert "499: dict" in text and "250: dict" not in text
    assert "other: list" in text and "0: ndarray" in text  # a short mixed list is shown whole


def test_a_huge_listing_is_cut_at_the_limit_and_says_so():
    root = Entry(
        path="",
        type="dict",
        length=50,
        children=[Entry(path=f"k{i}", name=f"k{i}", type="int" if i % 2 else "str") for i in range(50)],
    )
    listing = Listing(path="big.h5", backend="h5", format_version=2, root=root)
    markup = _listing_html.listing_html(listing, limit=11)
    text = "".join(_parse(markup).text)
    assert "k9:" in text and "k10:" not in text
    assert "… 40 more entries not shown (limit 11)" in text


def test_collection_listings_show_members_and_missing_files(tmp_path):
    a = sn.save({"energy": 1.0}, tmp_path / "a.h5")
    b = sn.save({"energy": 2.0}, tmp_path / "b.json")
    col = sn.Collection.create(tmp_path / "col.json", title="Cu <relaxations>")
    col.add(a, name="relax-300K")
    col.add(b, name="relax-600K")
    b.unlink()
    markup = col.inspect()._repr_html_()
    text = "".join(_parse(markup).text)
    assert "[collection" in text and "Cu <relaxations>" in text and "Cu &lt;relaxations&gt;" in markup
    assert "relax-300K: dict" in text and "energy: float" in text
    assert "relax-600K: missing" in text and "backend=json" in text


def test_an_entry_renders_its_subtree(tmp_path):
    listing = sn.inspect(sn.save({"final": {"positions": np.ones((2, 3))}}, tmp_path / "e.h5"))
    text = "".join(_parse(listing["final"]._repr_html_()).text)
    assert text.strip().startswith("final: dict") and "positions: ndarray" in text
