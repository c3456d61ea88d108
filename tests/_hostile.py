"""Hostile h5 archives (zlib bombs, datasets declaring far more than they store) and a
child-process probe that times one read of such a file and measures its peak memory.

Used by ``tests/backends/h5/test_h5_bombs.py`` and ``benchmarks/bench_hostile.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import h5py
import numpy as np

import storage_nodes as sn

#: the zlib bomb's decompressed size: 2 GiB of zeros (about 2 MB compressed)
BOMB_BYTES = 2 << 30


def zlib_bomb(nbytes: int = BOMB_BYTES) -> bytes:
    """``nbytes`` zeros, zlib-compressed (streamed: never more than 64 MiB in memory)."""
    z = zlib.compressobj(9)
    chunk = bytes(64 << 20)
    parts = [z.compress(chunk) for _ in range(nbytes // len(chunk))]
    parts.append(z.flush())
    return b"".join(parts)


def _replace(f: h5py.File, name: str, **kwargs) -> None:
    del f[name]
    f.create_dataset(name, **kwargs)


def sample(path: Path) -> Path:
    """An ordinary archive: a big array (its own dataset), small arrays and plain data."""
    sn.save({"big": np.arange(40_000.0), "small": {"x": np.arange(10), "names": ["a", "b"] * 50}}, path)
    return path


def make(kind: str, path: Path, bomb: bytes | None = None) -> Path:
    """Write the hostile archive ``kind`` (see :data:`KINDS`) to ``path``."""
    sample(path)
    with h5py.File(path, "r+") as f:
        if kind == "index_bomb":  # /index replaced: its index_size attribute goes with it
            _replace(f, "index", data=np.frombuffer(bomb or zlib_bomb(), dtype=np.uint8))
        elif kind == "index_bomb_recorded":  # the bomb keeps the original's index_size
            size = f["index"].attrs["index_size"]
            _replace(f, "index", data=np.frombuffer(bomb or zlib_bomb(), dtype=np.uint8))
            f["index"].attrs["index_size"] = size
        elif kind == "index_declares_2g":  # a chunked, gzip /index declaring 2 GiB, nothing stored
            _replace(f, "index", shape=(BOMB_BYTES,), dtype=np.uint8, chunks=(1 << 20,), compression="gzip")
        elif kind == "array_declares_2e28":  # the big array's dataset rewritten to 2^28 float64
            _replace(f, "array_0", shape=(1 << 28,), dtype=np.float64, chunks=(1 << 20,), compression="gzip")
        elif kind == "heap_declares_2g":  # the heap segment rewritten to declare 2 GiB
            _replace(f, "heap_0", shape=(BOMB_BYTES,), dtype=np.uint8, chunks=(1 << 20,), compression="gzip")
        else:
            raise ValueError(kind)
    return path


KINDS = ("index_bomb", "index_bomb_recorded", "index_declares_2g", "array_declares_2e28", "heap_declares_2g")
#: the calls probed on each file
CALLS = ("load", "load_safe", "load_key", "inspect")

_PROBE = """
import json, os, resource, sys, tempfile, time, tracemalloc
import storage_nodes as sn
path, call, key = sys.argv[1], sys.argv[2], sys.argv[3]
with tempfile.TemporaryDirectory() as warm:  # imports and first-use caches, not measured
    good = sn.save({"x": [1, 2]}, os.path.join(warm, "good.h5"))
    sn.load(good), sn.inspect(good)
fn = {
    "load": lambda: sn.load(path),
    "load_safe": lambda: sn.load(path, safe=True),
    "load_key": lambda: sn.load(path, key=key),
    "inspect": lambda: sn.inspect(path),
}[call]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
start = time.perf_counter()
try:
    fn()
    outcome = "loaded"
except Exception as exc:
    outcome = type(exc).__name__ + ": " + str(exc)[:200]
seconds = time.perf_counter() - start
_, peak = tracemalloc.get_traced_memory()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "seconds": seconds, "traced_peak_mb": peak / 2**20,
                  "rss_growth_mb": (after - before) / 1024}))
"""


def probe(path: Path, call: str, key: str = "small/x") -> dict:
    """Run ``call`` on ``path`` in a child process: outcome, seconds, peak memory (MiB);
    ``load_key`` loads ``key`` (``big`` is the big array's dataset, ``small/x`` on the heap)."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_PROBE), str(path), call, key],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        return {"outcome": f"child died ({proc.returncode}): {proc.stderr[-500:]}", "seconds": None}
    return json.loads(proc.stdout.strip().splitlines()[-1])
