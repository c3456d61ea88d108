"""Hostile h5 archives cost bounded time and memory (issue 16).

A zlib bomb in place of ``/index`` and datasets rewritten to declare gigabytes they do not
store each give one CorruptFileError, measured in a child process (time and peak memory):
before the fix a 2 MB file cost 17 s and 4 GB. The bounds asserted here are loose (the
machine is shared); docs/reliability.md records measured figures
(``python benchmarks/bench_hostile.py``).
"""

from __future__ import annotations

import json
import zlib

import h5py
import msgpack
import numpy as np
import pytest
from _hostile import CALLS, KINDS, make, probe, sample, zlib_bomb

import storage_nodes as sn
from storage_nodes.backends.h5 import indexcodec

#: MiB a refusal may allocate: what the file declares (a few KiB here), plus slack for the
#: interpreter; the files declare 2 GiB
BOUND_MB = {kind: 48 for kind in KINDS}
#: a replaced /index has no recorded size (like files written before it was recorded): the
#: reader stops at indexcodec.MAX_INDEX_BYTES (128 MiB), keeping at most 32 MiB of it
BOUND_MB["index_bomb"] = 32 + 48


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return zlib_bomb()


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_archive_is_refused_fast_and_small(tmp_path, kind, bomb):
    path = make(kind, tmp_path / f"{kind}.h5", bomb)
    assert path.stat().st_size < 4 << 20  # a few MB on disk that declare gigabytes
    for call in CALLS:
        if kind == "array_declares_2e28" and call == "inspect":
            continue  # inspect lists the index only, it reads no dataset: it succeeds
        got = probe(path, call, "big" if kind == "array_declares_2e28" else "small/x")
        assert got["outcome"].startswith("CorruptFileError"), (call, got)
        assert str(path) in got["outcome"]
        assert got["seconds"] < 5, (call, got)
        assert got["traced_peak_mb"] < BOUND_MB[kind] and got["rss_growth_mb"] < BOUND_MB[kind], (call, got)


def test_inspect_of_the_rewritten_array_still_lists(tmp_path):
    path = make("array_declares_2e28", tmp_path / "a.h5")
    assert sn.inspect(path).root.length == 2
    assert sn.load(path, key="small/x").tolist() == list(range(10))
    assert sn.load(path, key="small/names") == ["a", "b"] * 50


def test_index_size_is_recorded_and_checked(tmp_path):
    path = sample(tmp_path / "s.h5")
    with h5py.File(path, "r") as f:
        size = int(f["index"].attrs["index_size"])
        assert size == len(zlib.decompress(f["index"][()].tobytes()))
    with h5py.File(path, "r+") as f:
        f["index"].attrs["index_size"] = np.uint64(size - 1)
    with pytest.raises(sn.CorruptFileError, match="inflates beyond 4"):
        sn.load(path)


def test_partial_update_records_the_new_index_size(tmp_path):
    path = sample(tmp_path / "s.h5")
    sn.save([*range(1000), "x" * 300], path, key="small/more")
    with h5py.File(path, "r") as f:
        assert int(f["index"].attrs["index_size"]) == len(zlib.decompress(f["index"][()].tobytes()))
    assert sn.load(path, key="small/more")[-1] == "x" * 300
    sn.compact(path)
    assert sn.load(path, key="small/more")[999] == 999


def test_files_without_index_size_still_load(tmp_path):
    """Files written before the size was recorded (format version 1 and 2 alike) are read."""
    path = sample(tmp_path / "old.h5")
    with h5py.File(path, "r+") as f:
        del f["index"].attrs["index_size"]
    assert sn.load(path, key="small/names")[:2] == ["a", "b"]
    # format version 1: a JSON index, no index_size
    v1 = tmp_path / "v1.h5"
    sn.save({"a": [1, 2, 3], "b": "text"}, v1)
    with h5py.File(v1, "r+") as f:
        index = msgpack.unpackb(zlib.decompress(f["index"][()].tobytes()))
        index["format_version"] = 1
        del f["index"]
        f.create_dataset("index", data=np.frombuffer(zlib.compress(json.dumps(index).encode()), dtype=np.uint8))
    assert sn.load(v1) == {"a": [1, 2, 3], "b": "text"}


def test_inflate_limits():
    data = zlib.compress(b"x" * 1000)
    assert indexcodec.inflate(data, 1000) == b"x" * 1000
    assert indexcodec.inflate(data, None) == b"x" * 1000
    for size in (999, -1, indexcodec.MAX_INDEX_BYTES + 1):
        with pytest.raises(ValueError):
            indexcodec.inflate(data, size)
    with pytest.raises(ValueError, match="cut short"):
        indexcodec.inflate(data[:-5], None)


FIFO_PROBE = r"""
import os, sys
import storage_nodes as sn
from storage_nodes.errors import CorruptFileError
path = sys.argv[1]
for call in (lambda: sn.load(path), lambda: sn.load(path, backend="pickle"), lambda: sn.inspect(path),
             lambda: sn.load(path, backend="h5"), lambda: sn.verify(path)):
    try:
        call()
    except CorruptFileError as exc:
        assert "not a regular file" in str(exc) and path in str(exc), exc
    else:
        raise SystemExit("a FIFO was read")
print("refused")
"""


def test_a_fifo_is_refused_instead_of_blocking(tmp_path):
    """Nobody writes to the FIFO: any read from it would block for ever (the subprocess times out)."""
    import os
    import subprocess
    import sys

    fifo = tmp_path / "pipe.h5"
    os.mkfifo(fifo)
    out = subprocess.run([sys.executable, "-c", FIFO_PROBE, str(fifo)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "refused"
