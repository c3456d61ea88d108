"""The throw-away PostgreSQL server the catalog and cache suites run on really answers."""

from __future__ import annotations

import sqlalchemy as sa


def test_fresh_database_is_empty_and_writable(postgres_url):
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("select count(*) from pg_tables where schemaname='public'")).scalar() == 0
            conn.execute(sa.text("create table t (x int)"))
            conn.execute(sa.text("insert into t values (:x)"), {"x": 41})
        with engine.connect() as conn:
            assert conn.execute(sa.text("select x + 1 from t")).scalar() == 42
            assert engine.dialect.name == "postgresql"
    finally:
        engine.dispose()


def test_each_test_gets_its_own_database(postgres_url):
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            # the table the other test made is not here
            assert conn.execute(sa.text("select to_regclass('public.t')")).scalar() is None
    finally:
        engine.dispose()
