"""An argument value many cached calls share is stored once, content-addressed by its digest (issue 26).

fleche stores every argument of a call through the value storage, under the argument's
digest. Our storage writes such a value only when no sound archive holds that digest
yet: the 9 calls of an equation of state that share one structure and one engine write
each of them once (the file's inode and modification time stay those of the first
write), and the listing of the value storage holds each once. A damaged archive is still
written again, and a save under an explicit key still replaces.
"""

from __future__ import annotations

import os

import ase
import fleche
import numpy as np
from fleche.caches import Cache
from fleche.digest import digest
from fleche.storage.memory import CallMemory

import storage_nodes as sn
from storage_nodes.caching import ValueArchive

_runs: list[float] = []


@fleche.fleche
def strained_energy(structure: ase.Atoms, settings: dict, strain: float) -> dict:
    _runs.append(strain)
    scaled = structure.copy()
    scaled.set_cell(structure.cell * (1 + strain), scale_atoms=True)
    return {"volume": float(scaled.get_volume()), "strain": strain}


def _stamp(path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns


def test_a_shared_argument_is_written_once(tmp_path):
    structure = ase.Atoms("Cu4", scaled_positions=np.eye(4, 3) * 0.5, cell=[3.6] * 3, pbc=True)
    settings = {"cutoff": 6.0, "grid": np.linspace(0.0, 1.0, 1000)}
    cache = Cache(ValueArchive(tmp_path), CallMemory({}))
    strains = list(np.linspace(-0.04, 0.04, 9))
    _runs.clear()
    with fleche.cache(cache):
        strained_energy(structure, settings, float(strains[0]))
        shared = {name: cache.values.path(digest(v)) for name, v in (("structure", structure), ("settings", settings))}
        first = {name: _stamp(p) for name, p in shared.items()}
        for s in strains[1:]:
            strained_energy(structure, settings, float(s))
    assert len(_runs) == 9
    assert {name: _stamp(p) for name, p in shared.items()} == first  # never written again
    keys = list(cache.values.list())
    assert len(keys) == len(set(keys))
    kinds = [sn.inspect(cache.values.path(k)).root.type for k in keys]
    assert kinds.count("Atoms") == 1, kinds
    # what the calls reference is the one archive, and it loads back equal
    for call in cache.calls.storage.values():
        assert call.arguments["structure"] == digest(structure)
    back = cache.values.load(digest(structure))
    assert back == structure and digest(back) == digest(structure)
    # and a warm pass is all hits, writing nothing
    with fleche.cache(cache):
        for s in strains:
            strained_energy(structure, settings, float(s))
    assert len(_runs) == 9
    assert {name: _stamp(p) for name, p in shared.items()} == first


def test_a_damaged_archive_is_written_again(tmp_path):
    values = ValueArchive(tmp_path)
    key = values.save({"grid": np.arange(10.0)})
    path = values.path(key)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # cut short: the HDF5 signature is still there
    assert values.holds(key)  # nothing known yet: a stat and the signature look fine
    try:
        values.load(key)
    except KeyError:
        pass
    else:
        raise AssertionError("a cut-short archive loaded")
    assert not values.holds(key)  # the failed load marked it
    values.save({"grid": np.arange(10.0)})
    np.testing.assert_array_equal(values.load(key)["grid"], np.arange(10.0))
    assert values.holds(key)


def test_an_explicit_key_still_replaces(tmp_path):
    values = ValueArchive(tmp_path)
    key = digest("k")
    values.save("first", key=key)
    values.save("second", key=key)
    assert values.load(key) == "second"
