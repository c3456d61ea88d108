"""Crash safety: a save killed with SIGKILL at a random moment never costs the old data.

A child process saves new versions of an object in a loop; the parent kills it after a
random delay. Afterwards the target must load as one complete version (old or new, never
a mix, never an error), and no temporary files may pile up.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import storage_nodes as sn
from storage_nodes.atomic import TEMP_PREFIX

KILLS_PER_BACKEND = 8
CHILD = """
import sys, numpy as np, storage_nodes as sn
path, backend, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
v = 1
while True:
    sn.save({"v": v, "a": np.full(n, v, dtype=np.int64)}, path, backend=backend)
    print("saved", v, flush=True)
    v += 1
"""
SIZES = {"pickle": 1_000_000, "cloudpickle": 1_000_000, "json": 50_000, "h5": 1_000_000}
SUFFIX = {"pickle": ".pkl", "cloudpickle": ".cpkl", "json": ".json", "h5": ".h5"}


def _kill_at_random(child: subprocess.Popen, rng: random.Random, i: int, longest: float) -> None:
    """Kill ``child`` after a random delay; every other time only once it completed a save,
    so that a busy machine cannot make every kill land before the first save finishes."""
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    if i % 2:
        assert child.stdout.readline().startswith("saved")
    time.sleep(rng.uniform(0.0, longest))
    os.kill(child.pid, signal.SIGKILL)
    child.wait()


def _temps(d):
    return [p for p in d.iterdir() if p.name.startswith(TEMP_PREFIX)]


@pytest.mark.parametrize("backend", sorted(SUFFIX))
def test_sigkill_during_save_keeps_a_complete_version(tmp_path, backend):
    rng = random.Random(f"crash-{backend}")
    n = SIZES[backend]
    target = tmp_path / f"target{SUFFIX[backend]}"
    sn.save({"v": 0, "a": np.zeros(n, dtype=np.int64)}, target, backend=backend)
    seen_versions = set()
    for i in range(KILLS_PER_BACKEND):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(target), backend, str(n)], stdout=subprocess.PIPE, text=True
        )
        _kill_at_random(child, rng, i, 0.5)
        back = sn.load(target, version_policy="ignore")
        assert set(back) == {"v", "a"}
        assert back["a"].shape == (n,) and (back["a"] == back["v"]).all(), "a mix of two versions"
        seen_versions.add(back["v"])
        assert len(_temps(tmp_path)) <= 1  # at most the one the killed writer left
    assert len(seen_versions) > 1, "the kills never landed after a completed save: test too weak"
    sn.save({"v": -1, "a": np.zeros(1, dtype=np.int64)}, target, backend=backend)
    assert _temps(tmp_path) == []  # the next save cleans up after killed writers


PARTIAL_CHILD = """
import sys, numpy as np, storage_nodes as sn
path, n = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
v = 1
while True:
    sn.save(np.full(n, v, dtype=np.int64), path, key="a")
    sn.save({"v": v, "tag": "x" * (v % 7)}, path, key="small")
    print("saved", v, flush=True)
    v += 1
"""


def test_sigkill_during_partial_update_of_an_archive(tmp_path):
    rng = random.Random("crash-h5-partial")
    n = 500_000
    target = tmp_path / "archive.h5"
    keep = np.arange(1000.0)
    sn.save({"a": np.zeros(n, dtype=np.int64), "small": {"v": 0, "tag": ""}, "keep": keep}, target)
    seen = set()
    for i in range(KILLS_PER_BACKEND):
        child = subprocess.Popen(
            [sys.executable, "-c", PARTIAL_CHILD, str(target), str(n)], stdout=subprocess.PIPE, text=True
        )
        _kill_at_random(child, rng, i, 0.6)
        back = sn.load(target, version_policy="ignore")
        a, small = back["a"], back["small"]
        assert a.shape == (n,) and (a == a[0]).all(), "entry 'a' is a mix of two versions"
        assert small["tag"] == "x" * (small["v"] % 7)
        np.testing.assert_array_equal(back["keep"], keep)  # untouched entry survives every kill
        seen.add(int(a[0]))
    assert len(seen) > 1, "the kills never landed after a completed update: test too weak"
    sn.save(1, target, key="small/v")
    assert _temps(tmp_path) == []
