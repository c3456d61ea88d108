"""Very deep and very wide data either works or fails with a clear StorageError."""

from __future__ import annotations

import pytest

import storage_nodes as sn

BACKENDS = {"pickle": ".pkl", "cloudpickle": ".cpkl", "json": ".json", "h5": ".h5"}


def _deep(levels: int) -> list:
    root: list = []
    node = root
    for _ in range(levels):
        child: list = []
        node.append(child)
        node = child
    return root


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_ten_thousand_levels_fail_cleanly_or_work(tmp_path, backend):
    path = tmp_path / f"deep{BACKENDS[backend]}"
    try:
        sn.save(_deep(10_000), path)
    except sn.StorageError as exc:
        assert "deep" in str(exc) and str(path) in str(exc)
        assert not path.exists()
        return
    back = sn.load(path)
    depth = 0
    while back:
        back = back[0]
        depth += 1
    assert depth == 10_000


def test_deep_json_written_elsewhere_is_a_storage_error(tmp_path):
    path = tmp_path / "deep.json"
    body = "[" * 100_000 + "]" * 100_000
    path.write_text('{"storage_nodes": {"format_version": 1, "backend": "json"}, "data": ' + body + "}")
    for fn in (sn.load, sn.inspect):
        with pytest.raises(sn.StorageError, match="deep"):
            fn(path)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_million_entries(tmp_path, backend):
    wide = {f"k{i}": i for i in range(1_000_000)}
    path = sn.save(wide, tmp_path / f"wide{BACKENDS[backend]}")
    back = sn.load(path, key="k999999")
    assert back == 999_999
    listing = sn.inspect(path)
    assert listing.root.length == 1_000_000
