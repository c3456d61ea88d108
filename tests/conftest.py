from __future__ import annotations

import numpy as np
import pytest


def nested_data() -> dict:
    """Nested plain data every backend must round-trip."""
    return {
        "energy": -3.25,
        "count": 2**70,
        "flag": True,
        "nothing": None,
        "name": "Cu-3 ✓",
        "raw": b"\x00\x01binary",
        "pair": (1, "two", 3.0),
        "items": [1, [2, [3, {"deep": "yes"}]]],
        "arrays": {
            "f8": np.linspace(0, 1, 7),
            "i4": np.arange(12, dtype=np.int32).reshape(3, 4),
            "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
            "c16": np.array([1 + 2j, np.nan - 1j]),
            "bool": np.array([True, False]),
            "str": np.array(["a", "bcd"]),
            "empty": np.zeros((0, 3)),
        },
        "scalars": [np.float32(1.5), np.int64(-7), np.bool_(True)],
        "specials": [float("nan"), float("inf"), -0.0],
        "with/slash": 1,
        3: "int key",
    }


def assert_same(a, b) -> None:
    """Deep equality that understands numpy arrays, NaN and -0.0."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        assert a.flags.f_contiguous == b.flags.f_contiguous
    elif isinstance(a, dict):
        assert list(a.keys()) == list(b.keys())
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    elif isinstance(a, float):
        assert a == b and np.copysign(1, a) == np.copysign(1, b)
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a == b
    else:
        assert a == b


@pytest.fixture
def data() -> dict:
    return nested_data()


@pytest.fixture(scope="session")
def postgres_server():
    """The base URL of a throw-away PostgreSQL server (or $STORAGE_NODES_TEST_POSTGRES)."""
    import os

    given = os.environ.get("STORAGE_NODES_TEST_POSTGRES")
    if given:
        yield given
        return
    from _postgres import cluster

    with cluster() as url:
        yield url
        # what the tests queued goes into their databases while the server still runs (the
        # at-exit flush would find it stopped and only warn)
        import sys

        queue = sys.modules.get("storage_nodes.catalog.queue")
        if queue is not None:
            queue.flush_at_exit()


@pytest.fixture
def postgres_url(postgres_server, request) -> str:
    """The URL of a fresh, empty PostgreSQL database for one test."""
    import uuid

    from _postgres import create_database

    return create_database(postgres_server, f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium (Debian's, driven by Playwright) for the whole run: the GUI and the
    web-page tests share it (Playwright's sync API allows one instance per thread at a time)."""
    import os
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    chromium = Path(os.environ.get("STORAGE_NODES_CHROMIUM", "/usr/lib/chromium/chromium"))
    if not chromium.exists():
        pytest.fail(f"no Chromium at {chromium}: install it with tools/install-system-packages (apt-get chromium)")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium's sandbox refuses root
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium), headless=True, args=[*args, "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()
