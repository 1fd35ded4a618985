"""What the benchmarks share: a PostgreSQL database of their own, created empty and dropped
afterwards, and Django set up on it with the embedded defaults (no Redis, eager tasks)."""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")


def admin(sql: str) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


@contextmanager
def fresh_database(name: str) -> Iterator[None]:
    """A bench's own database, created empty and dropped afterwards."""
    admin(f'DROP DATABASE IF EXISTS "{name}"')
    admin(f'CREATE DATABASE "{name}"')
    try:
        yield
    finally:
        from django.db import connections

        connections.close_all()
        admin(f'DROP DATABASE IF EXISTS "{name}"')


def django_setup(name: str, **env: str) -> None:
    """Point Django at the bench's database (the caller migrates); `env` adds defaults."""
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = f"{SERVER}/{name}"
    for key, value in {"AMENDS_EMBEDDED": "1", "DJANGO_SETTINGS_MODULE": "config.settings",
                       "REDIS_URL": "", "CELERY_TASK_ALWAYS_EAGER": "1", **env}.items():
        os.environ.setdefault(key, value)
    import django

    django.setup()
