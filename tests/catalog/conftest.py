"""Fixtures of the catalog tests: every test taking ``url`` runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    """A new catalog's location: an SQLite file, or a fresh PostgreSQL database (tests/_postgres.py)."""
    if request.param == "sqlite":
        return str(tmp_path / "catalog.sqlite")
    return request.getfixturevalue("postgres_url")
