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


def pages_setup(leads: int = 8) -> list:
    """For timing pages through the test client: its host and mail outbox, static URLs
    without a collectstatic manifest (what tests and the embedded run use), the schema,
    and `leads` marketers to own incidents. Returns the marketers."""
    from django.core.management import call_command
    from django.test.utils import override_settings, setup_test_environment

    from accounts.roles import Role
    from accounts.services import user_create_with_role

    setup_test_environment()
    override_settings(STORAGES={
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }).enable()
    call_command("migrate", verbosity=0)
    return [user_create_with_role(username=f"lead{i}", password="bench-password-1",
                                  role=Role.MARKETING, first_name=f"Lead {i}")
            for i in range(leads)]


def page_timings(client, url: str, requests: int) -> tuple[int, float, float, float, float]:
    """One page through Django's test client (the whole stack, no network): the query count
    of one request, then median, p95, median Python CPU and fastest, in ms."""
    import statistics
    import time

    from django.db import connection

    for _ in range(3):  # warm: templates, the session, the connection
        assert client.get(url).status_code == 200
    # Counted at the driver call (the connection is reopened per request, so the debug
    # query log would not survive it).
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        assert client.get(url).status_code == 200
    times, cpu = [], []
    for _ in range(requests):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert response.status_code == 200
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return len(queries), statistics.median(times), p95, statistics.median(cpu), times[0]
