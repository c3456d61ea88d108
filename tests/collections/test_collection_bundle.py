"""Collection bundles: export, open without unpacking, tampering, zip-slip, RO-Crate, progress."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import storage_nodes as sn
from storage_nodes.collections import _progress
from storage_nodes.collections.collection import Collection, is_collection, verify


@pytest.fixture
def col(tmp_path: Path) -> Collection:
    (tmp_path / "runs").mkdir()
    (tmp_path / "other").mkdir()
    a = sn.save({"energy": -3.25, "forces": np.arange(6.0)}, tmp_path / "runs" / "relax 300K.pkl")
    b = sn.save({"energy": -4.5, "steps": [1, 2, 3]}, tmp_path / "other" / "relax_600K.json")
    c = Collection.create(
        tmp_path / "collection.json",
        title="Cu relaxations",
        creator=["Ann", "https://orcid.org/0000-0002-1825-0097"],
        license="CC-BY-4.0",
    )
    c.add(a, name="relax-300K", tags=["Cu", "300K"])
    c.add(b, name="relax-600K", tags=["Cu"])
    return c


@pytest.fixture
def bundle(col: Collection, tmp_path: Path) -> Path:
    return col.export(tmp_path / "paper.zip")


def _rewrite(src: Path, dest: Path, change) -> None:
    """Copy a zip entry by entry, letting ``change(name, data)`` alter or drop entries."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            result = change(info.filename, zin.read(info))
            if result is not None:
                zout.writestr(result[0], result[1])


def test_bundle_layout_and_checksums(bundle, col):
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        assert set(names) == {
            "collection.json",
            "SHA256SUMS",
            "ro-crate-metadata.json",
            "members/relax-300K/relax_300K.pkl",
            "members/relax-600K/relax_600K.json",
        }
        manifest = json.loads(zf.read("collection.json"))
        assert [m["location"] for m in manifest["members"]] == [
            "members/relax-300K/relax_300K.pkl",
            "members/relax-600K/relax_600K.json",
        ]
        assert "exported" in manifest
        sums = dict(reversed(line.split("  ", 1)) for line in zf.read("SHA256SUMS").decode().splitlines())
        for name in names:
            if name in sums:
                assert sums[name] == hashlib.sha256(zf.read(name)).hexdigest()
        assert set(sums) == set(names) - {"SHA256SUMS", "ro-crate-metadata.json"}
        original = col.path_of("relax-300K").read_bytes()
        assert zf.read("members/relax-300K/relax_300K.pkl") == original


def test_ro_crate_metadata_follows_the_spec(bundle, col):
    with zipfile.ZipFile(bundle) as zf:
        crate = json.loads(zf.read("ro-crate-metadata.json"))
        names = set(zf.namelist())
    assert crate["@context"] == "https://w3id.org/ro/crate/1.2/context"
    graph = {e["@id"]: e for e in crate["@graph"]}
    assert len(graph) == len(crate["@graph"])  # flattened: one entity per @id
    descriptor = graph["ro-crate-metadata.json"]
    assert descriptor["@type"] == "CreativeWork"
    assert descriptor["conformsTo"] == {"@id": "https://w3id.org/ro/crate/1.2"}
    root = graph[descriptor["about"]["@id"]]
    assert root["@id"] == "./" and root["@type"] == "Dataset"
    assert root["name"] == "Cu relaxations" and root["description"]
    assert root["datePublished"][:4].isdigit()
    assert root["license"] == {"@id": "https://spdx.org/licenses/CC-BY-4.0"}
    assert graph["https://spdx.org/licenses/CC-BY-4.0"]["@type"] == "CreativeWork"
    authors = [graph[a["@id"]] for a in root["author"]]
    assert [a["name"] for a in authors] == ["Ann", "https://orcid.org/0000-0002-1825-0097"]
    assert all(a["@type"] == "Person" for a in authors)
    parts = [p["@id"] for p in root["hasPart"]]
    for member in col.members:
        entity = next(graph[p] for p in parts if graph[p].get("name") == member.name)
        assert entity["@type"] == "File" and entity["@id"] in names
        assert entity["contentSize"] == str(member.size) and entity["sha256"] == member.sha256
        assert entity["encodingFormat"] in ("application/json", "application/octet-stream")
    for entity in crate["@graph"]:  # every reference resolves inside the graph
        for value in entity.values():
            for ref in value if isinstance(value, list) else [value]:
                if isinstance(ref, dict) and set(ref) == {"@id"} and ref["@id"].startswith(("#", "members/", "./")):
                    assert ref["@id"] in graph


def test_open_bundle_without_unpacking(bundle):
    assert is_collection(bundle)
    with Collection.open(bundle) as b:
        assert b.is_bundle and b.names == ["relax-300K", "relax-600K"]
        assert b.load("relax-300K", key="energy") == -3.25
        assert b.load("relax-600K/steps") == [1, 2, 3]
        listing = b.inspect()
        assert listing["relax-300K/forces"].shape == (6,)
        assert b.verify().ok
        extracted = b.path_of("relax-600K")
        assert extracted.exists()
    assert not extracted.exists()  # close() removes extracted members


def test_bundle_works_on_another_machine(bundle, col, tmp_path):
    """Only the zip travels: the original member files are gone."""
    moved = tmp_path / "machine2" / "paper.zip"
    moved.parent.mkdir()
    shutil.move(bundle, moved)
    shutil.rmtree(tmp_path / "runs")
    shutil.rmtree(tmp_path / "other")
    assert Collection.open(moved).load("relax-600K") == {"energy": -4.5, "steps": [1, 2, 3]}


def test_bundle_is_read_only(bundle, tmp_path):
    b = Collection.open(bundle)
    with pytest.raises(sn.UnsupportedOperationError, match="unpack"):
        b.add(tmp_path / "collection.json")
    with pytest.raises(sn.UnsupportedOperationError, match="unpack"):
        Collection.create(tmp_path / "x.json").merge(b)


def test_tampered_member_names_it(bundle, tmp_path):
    tampered = tmp_path / "tampered.zip"

    def change(name, data):
        if name.endswith("relax_600K.json"):
            data = data.replace(b"-4.5", b"-9.5")
        return name, data

    _rewrite(bundle, tampered, change)
    b = Collection.open(tampered)
    assert b.load("relax-300K", key="energy") == -3.25  # intact members still load
    with pytest.raises(sn.CorruptFileError, match="relax-600K") as info:
        b.load("relax-600K")
    assert info.value.key == "relax-600K" and "tampered" in str(info.value)
    report = b.verify()
    assert not report.ok and [(p.member, p.kind) for p in report.problems] == [("relax-600K", "checksum")]


def test_truncated_or_extended_member_is_refused(bundle, tmp_path):
    bigger = tmp_path / "bigger.zip"
    _rewrite(bundle, bigger, lambda n, d: (n, d + b" " * 10) if n.endswith(".json") and "members" in n else (n, d))
    with pytest.raises(sn.CorruptFileError, match="relax-600K"):
        Collection.open(bigger).load("relax-600K")


@pytest.mark.parametrize("evil", ["../evil.txt", "/etc/evil.txt", "members/../../evil.txt", "C:/evil.txt"])
def test_zip_slip_entries_are_refused(bundle, tmp_path, evil):
    bad = tmp_path / "bad.zip"
    shutil.copy(bundle, bad)
    with zipfile.ZipFile(bad, "a") as zf:
        zf.writestr(evil, b"x")
    with pytest.raises(sn.CorruptFileError, match="unsafe"):
        Collection.open(bad)
    assert not (tmp_path / "evil.txt").exists()


def test_nul_in_entry_name_is_refused(bundle, tmp_path):
    bad = tmp_path / "nul.zip"
    shutil.copy(bundle, bad)
    with zipfile.ZipFile(bad, "a") as zf:
        zf.writestr("members/aX.txt", b"x")
    bad.write_bytes(bad.read_bytes().replace(b"members/aX.txt", b"members/a\x00.txt"))  # zipfile cannot write NUL
    # zipfile truncates names at NUL when reading; the original name is still checked
    with pytest.raises(sn.CorruptFileError, match="unsafe"):
        Collection.open(bad)


def test_manifest_location_escaping_the_bundle_is_refused(bundle, tmp_path):
    bad = tmp_path / "loc.zip"

    def change(name, data):
        if name == "collection.json":
            doc = json.loads(data)
            doc["members"][0]["location"] = "../../outside.pkl"
            data = json.dumps(doc).encode()
        return name, data

    _rewrite(bundle, bad, change)
    with pytest.raises(sn.CorruptFileError, match="relax-300K"):
        Collection.open(bad)


def test_zip_without_manifest_and_broken_zip(tmp_path):
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("a.txt", "x")
    assert not is_collection(plain)
    with pytest.raises(sn.CorruptFileError):
        Collection.open(plain)


def test_export_refuses_changed_or_missing_member_and_writes_nothing(col, tmp_path):
    dest = tmp_path / "out.zip"
    path = col.path_of("relax-600K")
    sn.save({"changed": True}, path)
    with pytest.raises(sn.CorruptFileError, match="relax-600K"):
        col.export(dest)
    assert not dest.exists() and not list(tmp_path.glob(".sn-tmp-*"))
    path.unlink()
    with pytest.raises(sn.FileNotFoundStorageError, match="relax-600K"):
        col.export(dest)
    assert not dest.exists()


def test_export_overwrite_false(col, bundle):
    before = bundle.read_bytes()
    with pytest.raises(sn.FileExistsStorageError):
        col.export(bundle, overwrite=False)
    assert bundle.read_bytes() == before


def test_unpack_then_merge(bundle, tmp_path):
    unpacked = Collection.open(bundle).unpack(tmp_path / "unpacked")
    assert unpacked.path == tmp_path / "unpacked" / "collection.json" and not unpacked.is_bundle
    assert unpacked.verify().ok and unpacked.load("relax-600K", key="energy") == -4.5
    assert (tmp_path / "unpacked" / "ro-crate-metadata.json").exists()
    with pytest.raises(sn.FileExistsStorageError):
        Collection.open(bundle).unpack(tmp_path / "unpacked")
    target = Collection.create(tmp_path / "target.json")
    assert target.merge(unpacked) == {"relax-300K": "relax-300K", "relax-600K": "relax-600K"}
    assert target.load("relax-300K", key="energy") == -3.25


def test_unpack_of_tampered_bundle_leaves_no_collection(bundle, tmp_path):
    tampered = tmp_path / "t.zip"
    _rewrite(bundle, tampered, lambda n, d: (n, d.replace(b"-4.5", b"-9.5")) if n.startswith("members/") else (n, d))
    with pytest.raises(sn.CorruptFileError, match="relax-600K"):
        Collection.open(tampered).unpack(tmp_path / "u")
    assert not (tmp_path / "u" / "collection.json").exists()
    assert not [p for p in (tmp_path / "u").rglob("*") if p.is_file()]


def test_verify_function_on_bundle_and_reexport(bundle, tmp_path):
    assert verify(bundle).ok
    again = Collection.open(bundle).export(tmp_path / "again.zip")
    assert Collection.open(again).load("relax-300K", key="energy") == -3.25


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal(col, tmp_path, monkeypatch):
    monkeypatch.setattr(_progress, "DELAY", 0)
    quiet = io.StringIO()
    monkeypatch.setattr("sys.stderr", quiet)
    col.export(tmp_path / "q.zip")
    assert quiet.getvalue() == ""
    tty = _Tty()
    monkeypatch.setattr("sys.stderr", tty)
    col.export(tmp_path / "t.zip")
    assert "export t.zip" in tty.getvalue()
    forced = io.StringIO()
    monkeypatch.setattr("sys.stderr", forced)
    col.verify(progress=True)
    assert "sha256" in forced.getvalue()
    silent = _Tty()
    monkeypatch.setattr("sys.stderr", silent)
    col.export(tmp_path / "s.zip", progress=False)
    assert silent.getvalue() == ""


def test_compressible_members_are_deflated_others_stored(tmp_path):
    col = Collection.create(tmp_path / "c.json")
    col.add(sn.save({"text": ["energy"] * 5000}, tmp_path / "t.json"), name="text")
    col.add(sn.save(np.random.default_rng(0).random(50_000), tmp_path / "noise.pkl"), name="noise")
    with zipfile.ZipFile(col.export(tmp_path / "x.zip")) as zf:
        kinds = {i.filename: i.compress_type for i in zf.infolist()}
    assert kinds["members/text/t.json"] == zipfile.ZIP_DEFLATED
    assert kinds["members/noise/noise.pkl"] == zipfile.ZIP_STORED
    assert Collection.open(tmp_path / "x.zip").load("noise").shape == (50_000,)


def test_damaged_zip_data_is_a_clear_error(bundle, tmp_path):
    data = bytearray(bundle.read_bytes())
    with zipfile.ZipFile(bundle) as zf:
        info = zf.getinfo("members/relax-300K/relax_300K.pkl")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 20
    data[start : start + 8] = b"\xff" * 8  # flip bytes inside the member's data, CRC now wrong
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(data))
    b = Collection.open(damaged)
    with pytest.raises(sn.CorruptFileError, match="relax-300K"):
        b.load("relax-300K")
    assert [p.kind for p in b.verify().problems] in (["checksum"], ["unreadable"])


def test_closed_bundle_is_a_storage_error(bundle):
    b = Collection.open(bundle)
    b.close()
    with pytest.raises(sn.StorageError, match="closed"):
        b.load("relax-300K")


def test_member_names_become_safe_unique_paths(tmp_path):
    col = Collection.create(tmp_path / "c.json")
    for i, name in enumerate(("a b", "a_b", "A_B", "Cu ✓", "~tilde")):  # a file is a member once: five copies
        (tmp_path / str(i)).mkdir()
        col.add(sn.save([1], tmp_path / str(i) / "résumé data.json"), name=name)
    with zipfile.ZipFile(col.export(tmp_path / "x.zip")) as zf:
        members = [n for n in zf.namelist() if n.startswith("members/")]
    assert len(set(members)) == 5 and len({m.lower() for m in members}) == 5
    assert all(n.isascii() and " " not in n for n in members)
    b = Collection.open(tmp_path / "x.zip")
    assert [b.load(n) for n in ("a b", "A_B", "Cu ✓", "~tilde")] == [[1]] * 4


def test_ro_crate_license_forms_and_minimal_root():
    from storage_nodes.collections._rocrate import crate

    def root(doc):
        graph = {
            e["@id"]: e for e in crate(doc, [], manifest_name="m", checksums_name="s", date_published="2026")["@graph"]
        }
        return graph["./"], graph

    minimal, _ = root({})
    assert minimal["name"] and minimal["description"] and "license" not in minimal and "author" not in minimal
    url, graph = root({"license": "https://example.org/terms"})
    assert url["license"] == {"@id": "https://example.org/terms"} and "https://example.org/terms" in graph
    text, _ = root({"license": "free for academic use only"})
    assert text["license"] == "free for academic use only"


def test_safe_load_from_a_bundle_refuses_pickles_and_loads_json(bundle):
    with Collection.open(bundle) as b:
        with pytest.raises(sn.UnsafeLoadError):
            b.load("relax-300K", safe=True)
        assert b.load("relax-600K", safe=True)["steps"] == [1, 2, 3]
