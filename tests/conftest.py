from __future__ import annotations

import pytest
from _compare import nested_data


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
