"""Shared fixtures: personas, a real Celery worker, a real SMTP server, headless Chromium."""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from playwright.sync_api import expect

from accounts.roles import Role
from accounts.services import user_create_with_role

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-staple"


def pytest_configure(config) -> None:
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise pytest.UsageError("The suite runs on PostgreSQL only; set DATABASE_URL.")


# --- Personas ----------------------------------------------------------------------------

def make_user(username: str, role: Role, first_name: str = ""):
    return user_create_with_role(username=username, password=PASSWORD, role=role,
                                 first_name=first_name or username.title(),
                                 email=f"{username}@example.test")


@pytest.fixture
def marketer(db):
    return make_user("maya", Role.MARKETING, "Maya")


@pytest.fixture
def lawyer(db):
    return make_user("leo", Role.LEGAL, "Leo")


@pytest.fixture
def security_officer(db):
    return make_user("sam", Role.SECURITY, "Sam")


@pytest.fixture
def deliverability_lead(db):
    return make_user("dana", Role.DELIVERABILITY, "Dana")


@pytest.fixture
def manager(db):
    return make_user("max", Role.MANAGER, "Max")


@pytest.fixture
def admin_user(db):
    return make_user("ada", Role.ADMIN, "Ada")


@pytest.fixture
def outsider(db):
    """A marketer who is no stakeholder of anything."""
    return make_user("otto", Role.MARKETING, "Otto")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- A real SMTP server on loopback --------------------------------------------------------

class _Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[str, int, _Inbox]]:
    from aiosmtpd.controller import Controller

    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield "127.0.0.1", port, inbox
    finally:
        controller.stop()


# --- A real Celery worker ------------------------------------------------------------------

def _database_url() -> str:
    s = connection.settings_dict
    user = s.get("USER") or "postgres"
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    auth = f"{user}:{s['PASSWORD']}" if s.get("PASSWORD") else user
    return f"postgres://{auth}@{host}:{port}/{s['NAME']}"


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, smtp_server) -> Iterator[dict]:
    """A real `celery worker` process on Redis, reading the test database.

    Tests that use it need committed data: mark them django_db(transaction=True).
    """
    from django.conf import settings

    from config.celery import app

    host, port, inbox = smtp_server
    with django_db_blocker.unblock():
        db_url = _database_url()
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    node = f"test-{uuid.uuid4().hex[:8]}@localhost"
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CACHE_KEY_PREFIX": settings.CACHES["default"].get("KEY_PREFIX", ""),
        "AMENDS_SANDBOX_REDIS_PREFIX": settings.AMENDS_ESP["SANDBOX_REDIS_PREFIX"],
        "EMAIL_HOST": host,
        "EMAIL_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    app.control.purge()
    log = open(ROOT / "var" / f"worker-{node.split('@')[0]}.log", "w") if (ROOT / "var").is_dir() \
        else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
         "-Q", queue, "-n", node, "--loglevel=INFO", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"celery worker exited with {proc.returncode}")
            if app.control.ping(destination=[node], timeout=0.5):
                break
        else:
            raise RuntimeError("celery worker did not answer within 60 s")
        yield {"node": node, "process": proc, "inbox": inbox, "queue": queue}
    finally:
        process_stop(proc)


def _delete_keys(client, pattern: str) -> int:
    keys = list(client.scan_iter(pattern, count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start:start + 1000])
    return len(keys)


@pytest.fixture(scope="session", autouse=True)
def _side_settle_closed(django_db_setup):
    """Tests that run batches in this process, outside a transaction, settle chunks on the
    ledger's side connection (broadcasts.SideSettle); it is closed before the test database
    is dropped, which refuses while a session is open on it."""
    yield
    from messaging import broadcasts

    broadcasts.side_settle.close()


@pytest.fixture(scope="session", autouse=True)
def _redis_left_clean():
    """This session's keys (cache and the sandbox ESP's store, both prefixed by the
    session's pid) are deleted when it ends; they also expire, should the run be killed."""
    yield
    from django.conf import settings

    if not settings.REDIS_URL:
        return
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        _delete_keys(client, f"{settings.AMENDS_ESP['SANDBOX_REDIS_PREFIX']}:*")
        prefix = settings.CACHES["default"].get("KEY_PREFIX")
        if prefix:
            _delete_keys(client, f"{prefix}:*")
    except redis.RedisError:
        pass  # a Redis gone before the end of the run has nothing left to clean
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _site_language():
    """Each test starts in the site language: a request's Accept-Language or a service
    rendering for a reader must not leave its language active for the next test."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache (flags such as debounce markers must not leak
    from one test into the next). Only this session's keys: the broker shares the Redis."""
    from django.conf import settings
    from django.core.cache import cache

    prefix = settings.CACHES["default"].get("KEY_PREFIX")
    if prefix and hasattr(cache, "_cache"):
        client = cache._cache.get_client(write=True)
        keys = list(client.scan_iter(f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()
    yield


def process_stop(proc: subprocess.Popen, grace: float = 15) -> None:
    """Ask a child process to stop; kill it if it has not within `grace` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1):
    """Poll until predicate() is truthy; returns its value or fails the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")


# --- Headless Chromium (Debian's), driven by Playwright ------------------------------------

# Shared, busy machines: give the page time to answer before an expectation gives up.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic",
                 "--no-first-run"],
    }
