"""Printed listings summarise long runs of same-shaped entries (issue #15); the data stays complete.

Every file here is written for real; the API, the command line and ``InspectNode`` are
checked on the same files, and ``--json`` / ``to_dict()`` / ``keys()`` must still hold
every entry.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pyiron_workflow as pwf
import pytest

import storage_nodes as sn
from storage_nodes import InspectNode
from storage_nodes.backends.h5 import tree
from storage_nodes.listing import RUN_THRESHOLD, SUMMARY_LIMIT, Entry, Listing, signature, summarise

RECORD_LINE = "└── 0..4999: dict(id, name, e, tags) x 5000"


def _records(n: int = 5000) -> list[dict]:
    # names of different lengths (r0, r10, r100...): still the same shape
    return [{"id": i, "name": f"r{i}", "e": -1.5 * i, "tags": ["a", "b"]} for i in range(n)]


def _tree_lines(text: str) -> list[str]:
    """The entry lines of a printed listing (no header, no closing hint)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("/: ") or line.startswith(("runs: ", "a: ")))
    return [line for line in lines[start:] if not line.startswith("(summarised")]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "storage_nodes", "inspect", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def records_h5(tmp_path_factory):
    return sn.save(_records(), tmp_path_factory.mktemp("records") / "records.h5")


# --- the API -----------------------------------------------------------------------------


def test_a_list_of_5000_records_prints_as_one_line(records_h5):
    listing = sn.inspect(records_h5)
    text = str(listing)
    assert _tree_lines(text) == ["/: list, len=5000, 189.0 KB", RECORD_LINE]
    assert text.endswith("(summarised; every entry: inspect(path, full=True) or `storage-nodes inspect --all`)")
    # the listing itself is complete: every entry reachable, walked and counted
    assert len(listing.keys()) == 5000 * 7
    assert listing["4999/name"].type == "str" and listing["4999/tags/1"].length == 1
    assert listing["3/e"].type == "float"


def test_full_prints_every_entry(records_h5):
    full = sn.inspect(records_h5, full=True)
    text = str(full)
    assert "(summarised" not in text and "x 5000" not in text
    assert len(_tree_lines(text)) == 1 + 5000 * 7
    assert "├── 4998: dict, len=4" in text and "    ├── name: str, len=5, 5 B" in text
    assert sn.inspect(records_h5).text(full=True) == text


def test_a_dict_of_10000_entries_prints_as_one_line(tmp_path):
    data = {f"k{i}": {"x": float(i), "y": [i, i + 1]} for i in range(10_000)}
    for suffix in ("h5", "json", "pkl", "cpkl"):
        listing = sn.inspect(sn.save(data, tmp_path / f"d.{suffix}"))
        lines = _tree_lines(str(listing))
        if suffix == "h5":
            assert lines == ["/: dict, len=10000, 261.8 KB", "└── k0..k9999: dict(x, y) x 10000"]
        elif suffix == "json":  # json and pickle list up to 200 children per level
            assert lines == ["/: dict, len=10000", "├── k0..k199: dict(x, y) x 200", "└── ... 9800 more"]
        else:  # the pickle and cloudpickle headers describe one level below the root
            assert lines == ["/: dict, len=10000", "├── k0..k199: dict, len=2 x 200", "└── ... 9800 more"]


def test_mixed_runs_are_not_merged(tmp_path):
    data = {
        "alternating": [1, "a"] * 10,  # no two neighbours alike: every entry shown
        "two_runs": [1] * 10 + ["s"] * 10,
        # a run of 7: below the threshold (distinct dicts: a repeated one is stored as shared references)
        "short": [{"a": i} for i in range(3)] + [{"a": float(i)} for i in range(RUN_THRESHOLD - 1)],
        "keys_differ": [{"a": i} for i in range(8)] + [{"b": i} for i in range(8)],
        "shapes_differ": [np.zeros(3) + i for i in range(8)] + [np.zeros(4) + i for i in range(8)],
        "lengths_differ": [[i, i] for i in range(8)] + [[i, i, i] for i in range(8)],
    }
    text = str(sn.inspect(sn.save(data, tmp_path / "mixed.h5")))
    lines = _tree_lines(text)
    block = lines[lines.index("├── alternating: list, len=20, 33 B") + 1 :][:20]
    assert [line.split(":")[0].strip("│├└─ ") for line in block] == [str(i) for i in range(20)]
    assert "│   ├── 0..9: int x 10, 280 B in all" in lines and "│   └── 10..19: str x 10, 10 B in all" in lines
    start = next(i for i, line in enumerate(lines) if line.startswith("├── short: list, len=10"))
    short = lines[start + 1 :][:20]
    shown = [line for line in short if line.startswith(("│   ├── ", "│   └── "))]
    assert [line.split(":")[0][8:] for line in shown] == [str(i) for i in range(10)]  # each shown
    assert shown[0] == "│   ├── 0: dict, len=1" and shown[-1] == "│   └── 9: dict, len=1"
    assert "│   ├── 0..7: dict(a) x 8" in lines and "│   └── 8..15: dict(b) x 8" in lines
    assert "│   ├── 0..7: ndarray (numpy), shape=(3,), dtype=float64 x 8, 192 B in all" in lines
    assert "│   └── 8..15: ndarray (numpy), shape=(4,), dtype=float64 x 8, 256 B in all" in lines
    assert "    ├── 0..7: list, len=2 x 8" in lines and "    └── 8..15: list, len=3 x 8" in lines


def test_nested_runs_are_summarised_at_each_level(tmp_path):
    data = {
        "groups": [
            {"name": "soft", "items": [{"v": float(i)} for i in range(100)]},
            {"label": 3, "items": list(range(50)), "forces": np.zeros((64, 3))},
        ],
        "grid": [[{"x": j} for j in range(20)] for _ in range(3)] + [["odd"]],
    }
    lines = _tree_lines(str(sn.inspect(sn.save(data, tmp_path / "nested.h5"))))
    assert lines == [
        "/: dict, len=2",
        "├── groups: list, len=2",
        "│   ├── 0: dict, len=2, 1.2 KB",
        "│   │   ├── name: str, len=4, 4 B",
        "│   │   └── items: list, len=100",
        "│   │       └── 0..99: dict(v) x 100",
        "│   └── 1: dict, len=3",
        "│       ├── label: int, 28 B",
        "│       ├── items: list, len=50, 53 B",
        "│       │   └── 0..49: int x 50, 1.4 KB in all",
        "│       └── forces: ndarray (numpy), shape=(64, 3), dtype=float64, 1.5 KB",
        "└── grid: list, len=4, 255 B",
        "    ├── 0: list, len=20",
        "    │   └── 0..19: dict(x) x 20",
        "    ├── 1: list, len=20",
        "    │   └── 0..19: dict(x) x 20",
        "    ├── 2: list, len=20",
        "    │   └── 0..19: dict(x) x 20",
        "    └── 3: list, len=1",
        "        └── 0: str, len=3, 3 B",
    ]


def test_a_long_level_of_different_entries_is_cut_at_the_limit(tmp_path):
    data = {f"k{i}": [0] * (i + 1) for i in range(SUMMARY_LIMIT + 30)}  # every list a different length
    listing = sn.inspect(sn.save(data, tmp_path / "wide.h5"))
    lines = _tree_lines(str(listing))
    top = [line for line in lines if line.startswith(("├── ", "└── "))]
    assert len(top) == SUMMARY_LIMIT + 1 and top[-1] == "└── ... 30 more"
    assert top[-2].startswith(f"├── k{SUMMARY_LIMIT - 1}: list, len={SUMMARY_LIMIT}")
    assert len(listing.root.children) == SUMMARY_LIMIT + 30  # the listing is not cut


# --- the command line ----------------------------------------------------------------------


def test_cli_prints_the_summary_all_prints_everything_json_is_complete(records_h5):
    out = _cli(str(records_h5))
    assert out.returncode == 0, out.stderr
    assert RECORD_LINE in out.stdout and len(out.stdout.splitlines()) < 10
    out = _cli(str(records_h5), "--all")
    assert out.returncode == 0 and "x 5000" not in out.stdout
    assert len(_tree_lines(out.stdout)) == 1 + 5000 * 7
    out = _cli(str(records_h5), "--json")
    root = json.loads(out.stdout)["root"]
    assert len(root["children"]) == 5000 and "run" not in json.dumps(root)
    assert [c["name"] for c in root["children"][4321]["children"]] == ["id", "name", "e", "tags"]
    assert root["children"][4321]["children"][3]["children"][1]["path"] == "4321/tags/1"
    out = _cli(str(records_h5), "--key", "7", "--all")
    assert out.returncode == 0 and "└── tags: list, len=2" in out.stdout


def test_cli_all_with_draw_is_refused(records_h5):
    out = _cli("--draw", str(records_h5), "--all")
    assert out.returncode == 1 and "leave out --key, --json and --all" in out.stderr


# --- InspectNode -----------------------------------------------------------------------------


def test_inspect_node_outputs_the_summary_unless_full(records_h5):
    summary = pwf.node(InspectNode, "s").run(path=str(records_h5)).outputs["listing"]
    (run,) = summary["root"]["children"]
    assert run["info"]["run"] == {
        "count": 5000,
        "first": "0",
        "last": "4999",
        "children": ["id", "name", "e", "tags"],
    }
    assert RECORD_LINE in str(Listing.from_dict(summary))  # rebuilt, it prints the same line
    assert len(json.dumps(summary)) < 3000
    full = pwf.node(InspectNode, "f").run(path=str(records_h5), full=True).outputs["listing"]
    assert len(full["root"]["children"]) == 5000 and full == sn.inspect(records_h5).to_dict()


# --- what makes entries "the same shape" ------------------------------------------------------


def _plain(entry: Entry) -> Entry:
    """A copy built eagerly: no lazy children, no shortcut signature."""
    return dataclasses.replace(entry, children=[_plain(c) for c in entry.children])


@pytest.mark.parametrize(
    "value",
    [
        {"id": 1, "name": "r1", "tags": ["a", "b"]},
        [1, 2.5, "x", None, b"y", True, [], {}, (1,), {1, 2}, frozenset({3})],
        {1: "int key", (1, 2): "tuple key", "s": {"deep": [[[[1]]]]}},
        [np.zeros(3), np.float32(1.5), np.array(["a", "bc"])],
        list(range(tree.MAX_LISTED_CHILDREN + 5)),
    ],
)
@pytest.mark.parametrize("depth", [0, 1, 2, 64])
def test_the_shortcut_signature_of_plain_values_is_the_entry_signature(value, depth):
    def fresh() -> Entry:  # children not built yet: signature and to_dict() come from the value
        return tree.describe_value(value, "", "", depth)

    eager = _plain(fresh())
    assert signature(fresh()) == signature(eager)
    assert json.dumps(fresh().to_dict()) == json.dumps(eager.to_dict())  # same content, same order
    assert fresh() == eager


def test_a_summary_of_a_summary_stays_the_same():
    runs = [Entry(path=f"r{i}/0", name="0", type="list", info={"run": {"count": 9}}) for i in range(10)]
    outer = [Entry(path=f"r{i}", name=f"r{i}", type="list", children=[r]) for i, r in enumerate(runs)]
    root = Entry(path="", type="list", children=outer)
    once = summarise(root)
    assert summarise(once).to_dict() == once.to_dict()


def test_html_listings_use_the_same_runs(records_h5):
    markup = sn.inspect(records_h5)._repr_html_()
    assert "… 4,996 more like 0 (3 … 4998)" in markup  # names of different lengths: one run


@pytest.mark.parametrize(
    "value",
    [
        _records(300),
        {f"k{i}": [i, i * 0.5, f"s{i}", [i, "x"]][i % 4] for i in range(400)},
        [1] * 10 + ["s" * i for i in range(12)] + [np.zeros(2)] * 9 + [{"a": i} for i in range(9)] + [[1]] * 3,
        {"deep": [{"x": [{"y": i} for i in range(10)]} for _ in range(9)], "z": list(range(100))},
    ],
)
def test_a_summary_from_values_is_the_summary_of_the_built_entries(value):
    fresh = tree.describe_value(value, "", "", 64)  # children not built: the summary peeks at the values
    assert summarise(fresh).to_dict() == summarise(_plain(tree.describe_value(value, "", "", 64))).to_dict()
    assert summarise(fresh, limit=5).to_dict() == summarise(_plain(fresh), limit=5).to_dict()


def test_a_damaged_index_met_when_a_level_is_built_is_a_corrupt_file_error(tmp_path):
    import h5py
    from _h5_objects import Atom

    from storage_nodes.backends.h5 import datasets, reader

    path = sn.save({"outer": {"atom": Atom("Cu", np.zeros(3)), "big": np.zeros(100_000)}}, tmp_path / "bad.h5")
    with h5py.File(path, "r+") as f:
        index = reader.read_index(f.id, path)
        outer = dict((item[0], item[1]) for item in index["root"]["items"])["outer"]
        dict((item[0], item[1]) for item in outer["items"])["atom"]["c"] = 999  # no such class
        datasets.write_index(f, index)
    listing = sn.inspect(path)  # the root level is fine
    assert listing.root.children[0].name == "outer"
    with pytest.raises(sn.CorruptFileError, match=r"bad\.h5 has a damaged index below 'outer'"):
        str(listing)


def test_a_lazily_built_listing_pickles_and_copies_as_plain_entries(records_h5):
    import copy
    import pickle

    listing = sn.inspect(records_h5, key="7")
    again = pickle.loads(pickle.dumps(listing))
    assert again == listing and type(again.root) is Entry and str(again) == str(listing)
    assert copy.deepcopy(listing).to_dict() == listing.to_dict()
