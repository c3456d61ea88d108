"""fleche's float digest bug, pinned; our opt-in exact float digests, checked in fresh processes.

The opt-in changes fleche's process-wide digest hooks (and fleche cannot remove a hook), so
everything that turns it on runs in a subprocess; this process keeps upstream's behaviour.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import fleche
import numpy as np
from fleche.caches import Cache
from fleche.digest import digest
from fleche.storage import CallMemory

from storage_nodes.caching import ValueArchive, exact_float_digest, exact_float_digests_enabled

UPSTREAM_FIXED = (
    "fleche no longer digests floats through hash(): -1.0 and -2.0 get different keys now. "
    "Update docs/caching.md ('Floats and keys'), say from which fleche version users are safe "
    "without storage_nodes.caching.enable_exact_float_digests, and turn this test around."
)


@fleche.fleche
def negate(x):
    return -x


def test_upstream_float_digest_collides(tmp_path):
    """fleche 0.22: hash(-1.0) == hash(-2.0), so f(-2.0) returns f(-1.0)'s cached result."""
    assert not exact_float_digests_enabled()
    assert digest(-1.0) == digest(-2.0), UPSTREAM_FIXED
    assert digest(0.0) == digest(-0.0) and digest(1.0) == digest(1)  # hash() equates these too
    cache = Cache(ValueArchive(tmp_path / "values"), CallMemory({}))
    with fleche.cache(cache):
        assert negate(-1.0) == 1.0
        assert negate(-2.0) == 1.0, UPSTREAM_FIXED  # the wrong, cached answer (right: 2.0)


def test_exact_float_digest_function():
    assert exact_float_digest(-1.0) != exact_float_digest(-2.0)
    assert exact_float_digest(0.0) != exact_float_digest(-0.0)
    assert exact_float_digest(1.5) == exact_float_digest(np.float64(1.5))
    assert exact_float_digest(np.float32(1.5)) != exact_float_digest(1.5)
    assert exact_float_digest(1 + 2j) != exact_float_digest(1 - 2j)
    assert exact_float_digest(float("nan")) == exact_float_digest(float("nan"))
    be = np.array(2.5, dtype=">f8")[()]
    assert exact_float_digest(be) == exact_float_digest(2.5)  # byte order does not matter
    assert len(exact_float_digest(2.5)) == 64


def run_python(code: str, cwd: Path, **env: str) -> dict:
    environment = {**os.environ, **env}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


CHECK = """
    import json, sys
    import numpy as np
    {enable}
    import fleche
    from fleche.caches import Cache
    from fleche.digest import digest
    from fleche.storage import CallMemory
    from storage_nodes.caching import ValueArchive, exact_float_digests_enabled

    runs = []

    @fleche.fleche
    def negate(x):
        runs.append(x)
        return -x

    with fleche.cache(Cache(ValueArchive("values"), CallMemory({{}}))):
        results = [negate(-1.0), negate(-2.0), negate(-2.0), negate(np.float32(-2.0))]
    print(json.dumps({{
        "enabled": exact_float_digests_enabled(),
        "results": [float(r) for r in results],
        "runs": len(runs),
        "collide": [digest(-1.0) == digest(-2.0), digest(0.0) == digest(-0.0), digest(1.0) == digest(1)],
        "nested": digest([1, -1.0, {{"a": 2.0}}]) == digest([1, -2.0, {{"a": 2.0}}]),
        "int": digest(12345), "str": digest("x"), "array": digest(np.arange(3.0)),
    }}))
"""


def test_exact_float_digests_opt_in(tmp_path):
    enable = "from storage_nodes.caching import enable_exact_float_digests; enable_exact_float_digests()"
    out = run_python(CHECK.format(enable=enable), tmp_path)
    assert out["enabled"] is True
    assert out["results"] == [1.0, 2.0, 2.0, 2.0]
    assert out["runs"] == 3  # -1.0, -2.0, float32(-2.0); the second -2.0 is a hit
    assert out["collide"] == [False, False, False]
    assert out["nested"] is False
    # ints, strings and arrays keep fleche's keys
    assert out["int"] == digest(12345) and out["str"] == digest("x") and out["array"] == digest(np.arange(3.0))


def test_environment_variable_enables_it_and_default_is_upstream(tmp_path):
    on = run_python(CHECK.format(enable="import storage_nodes"), tmp_path, STORAGE_NODES_EXACT_FLOAT_DIGESTS="1")
    assert on["enabled"] is True and on["results"] == [1.0, 2.0, 2.0, 2.0]
    (tmp_path / "off").mkdir()
    plain = CHECK.format(enable="import storage_nodes")
    off = run_python(plain, tmp_path / "off", STORAGE_NODES_EXACT_FLOAT_DIGESTS="")
    assert off["enabled"] is False
    assert off["results"] == [1.0, 1.0, 1.0, 1.0], UPSTREAM_FIXED
    assert off["collide"] == [True, True, True]
