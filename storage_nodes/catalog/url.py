"""Where a catalog lives: a database URL or a path, the default location, and a printable form.

:func:`redact` is used for every repr, error and log line that names a catalog, so a
password in a URL never appears in output.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import sqlalchemy as sa

__all__ = ["ENV_VAR", "default_location", "redact", "scrub", "to_url"]

ENV_VAR = "STORAGE_NODES_CATALOG"


def default_location() -> str:
    """``$STORAGE_NODES_CATALOG`` if set, else ``catalog.sqlite`` in the user's data directory.

    The data directory is ``$XDG_DATA_HOME/storage_nodes`` (default ``~/.local/share/storage_nodes``)
    on Linux, ``~/Library/Application Support/storage_nodes`` on macOS and
    ``%LOCALAPPDATA%\\storage_nodes`` on Windows.
    """
    given = os.environ.get(ENV_VAR)
    if given:
        return given
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return str(base / "storage_nodes" / "catalog.sqlite")


def to_url(url_or_path: str | os.PathLike[str] | sa.URL) -> sa.URL:
    """A SQLAlchemy URL: URLs (``dialect[+driver]://...``) as given, anything else a SQLite file path.

    ``postgresql://`` without a driver means psycopg 3 (``postgresql+psycopg://``).

    >>> to_url("/tmp/x.sqlite").render_as_string()
    'sqlite:////tmp/x.sqlite'
    """
    if isinstance(url_or_path, sa.URL):
        url = url_or_path
    else:
        text = os.fspath(url_or_path)
        if "://" not in text:
            path = Path(text).expanduser().resolve()
            return sa.URL.create("sqlite", database=str(path))
        url = sa.make_url(text)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def redact(url: sa.URL | str) -> str:
    """The URL as text with its password replaced by ``***``.

    >>> redact("postgresql://alice:secret@db.example/pyiron")
    'postgresql://alice:***@db.example/pyiron'
    """
    if isinstance(url, str):
        if "://" not in url:
            return url
        try:
            url = sa.make_url(url)
        except Exception:
            return "<catalog URL that cannot be parsed>"
    return url.render_as_string(hide_password=True)


def scrub(text: str, url: sa.URL) -> str:
    """``text`` with the password of ``url`` (raw and URL-quoted) replaced by ``***``."""
    password = url.password
    if password:
        from urllib.parse import quote, quote_plus

        for form in {str(password), quote(str(password), safe=""), quote_plus(str(password))}:
            if form:
                text = text.replace(form, "***")
    return text
