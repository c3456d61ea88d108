"""Passwords in database URLs are not stored: :func:`strip_passwords` drops them from text.

A ``SaveNode``'s or ``FindNode``'s ``catalog`` port may hold a URL such as
``postgresql://alice:secret@db/pyiron``. A stored workflow keeps every port value and the
recipe's constants, so before they are written the password is removed
(``postgresql://alice@db/pyiron``): the database then takes it from where libpq looks
(``~/.pgpass``, ``PGPASSWORD``), on a rerun as well.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["mask_passwords", "strip_passwords"]

#: the password of any URL (``scheme://user:password@``) in a text
_ANY_URL_PASSWORD = re.compile(r"(://[^:/@\s\"]*:)[^@\s\"]*@")
# scheme[+driver]://user:password@ of the SQL databases SQLAlchemy speaks to
_URL_PASSWORD = re.compile(
    r"(?i)\b((?:postgres(?:ql)?|mysql|mariadb|oracle|mssql|cockroachdb)(?:\+[a-z0-9_]+)?://[^:/@\s\"'?#]*):[^@\s\"'/]*@"
)


def strip_passwords(value: Any) -> Any:
    """``value`` without the passwords of the database URLs in it, if it is a str; any other
    value as it is (port values are not walked: that would cost time on big data and break
    the sharing of objects between ports).

    >>> strip_passwords("postgresql://alice:secret@db.example/pyiron")
    'postgresql://alice@db.example/pyiron'
    """
    if type(value) is str and "://" in value:
        return _URL_PASSWORD.sub(r"\1@", value)
    return value


def mask_passwords(text: str) -> str:
    """``text`` with the password of every URL in it (any scheme) shown as ``***``.

    >>> mask_passwords('{"v": "https://bob:pw@example.org/x"}')
    '{"v": "https://bob:***@example.org/x"}'
    """
    return _ANY_URL_PASSWORD.sub(r"\1***@", text) if "://" in text else text
