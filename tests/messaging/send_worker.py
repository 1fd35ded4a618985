"""A Celery worker that can be SIGKILLed and restarted, sending through a loopback ESP."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT, _database_url, process_stop


class KillableWorker:
    """A `celery worker --pool=solo` on the test queue, sending through `esp` (a loopback).

    `start()` waits until it answers a ping; `kill()` is SIGKILL (no cleanup, no ack);
    `stop()` is a polite TERM. The ESP account's credentials reach the worker through its
    environment, as in production: AMENDS_ESP_ACCOUNTS (see LOOPBACK_ACCOUNT).
    """

    def __init__(self, *, db_url: str, queue: str, env: dict[str, str]) -> None:
        self.db_url = db_url
        self.queue = queue
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.node = ""
        self.starts = 0

    def start(self) -> None:
        """Start and wait for the worker's "ready" line. (A control ping is not enough: a
        solo worker busy with a batch answers it only between tasks.)"""
        self.starts += 1
        self.node = f"send-{uuid.uuid4().hex[:8]}@localhost"
        log_dir = ROOT / "var" if (ROOT / "var").is_dir() else Path(tempfile.gettempdir())
        self.log = log_dir / f"worker-{self.node.split('@')[0]}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
             "-Q", self.queue, "-n", self.node, "--loglevel=INFO", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env={**os.environ, "DATABASE_URL": self.db_url,
                           "CELERY_TASK_DEFAULT_QUEUE": self.queue, "PYTHONUNBUFFERED": "1",
                           **self.env},
            stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited with {self.proc.returncode}; "
                                   f"see {self.log}")
            if " ready." in self.log.read_text(errors="replace"):
                return
            time.sleep(0.05)
        raise RuntimeError(f"celery worker not ready within 60 s; see {self.log}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            process_stop(self.proc)


LOOPBACK_ACCOUNT = "Postmark loopback"  # the EspAccount label sendable_incident(provider=…) uses


def loopback_account_options(esp, max_per_call: int = 500) -> dict:
    return {"server_token": esp.server_token, "base_url": esp.url,
            "max_per_call": max_per_call}


@pytest.fixture(scope="module")
def send_esp():
    """One Postmark loopback for a module's worker (its URL goes into the worker's env)."""
    from tests.loopback.esps import PostmarkLoopback

    with PostmarkLoopback() as server:
        yield server


@pytest.fixture
def send_worker(send_esp, django_db_setup, django_db_blocker, settings):
    """A killable worker sending through `send_esp` (the account LOOPBACK_ACCOUNT); the ESP
    is reset for every test. This process gets the same account and timings, for what the
    page does (reconcile)."""
    from config.celery import app
    from messaging.esp.accounts import account_key

    with django_db_blocker.unblock():
        db_url = _database_url()
    send_esp.deliveries.clear()
    send_esp.reset_calls()
    send_esp.set_faults(0.0)
    with send_esp.lock:
        send_esp._delays.clear()
        send_esp._scripted.clear()
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    # The session's shared worker (tests/conftest.py) reads the same queue with other ESP
    # settings: it steps aside while this one runs, so every task here is this worker's.
    others = [node for reply in app.control.ping(timeout=0.5) for node in reply]
    if others:
        app.control.cancel_consumer(queue, destination=others, reply=True)
    app.control.purge()
    options = loopback_account_options(send_esp)
    settings.AMENDS_ESP_ACCOUNTS = {**settings.AMENDS_ESP_ACCOUNTS,
                                    account_key(LOOPBACK_ACCOUNT): options}
    settings.AMENDS_SEND = {**settings.AMENDS_SEND, "CLAIM_GRACE": 1.0, "SETTLE": 0.5}
    worker = KillableWorker(db_url=db_url, queue=queue, env={
        "AMENDS_ESP_ACCOUNTS": json.dumps({LOOPBACK_ACCOUNT: options}),
        "AMENDS_SEND_CLAIM_GRACE": "1", "AMENDS_SEND_SETTLE": "0.5",
        "AMENDS_ESP_BACKOFF_BASE": "0.02", "AMENDS_ESP_BACKOFF_MAX": "0.2",
        "AMENDS_ESP_MAX_ATTEMPTS": "6",
        "AMENDS_SANDBOX_REDIS_PREFIX": settings.AMENDS_ESP["SANDBOX_REDIS_PREFIX"],
        "CACHE_KEY_PREFIX": settings.CACHES["default"].get("KEY_PREFIX", ""),
    })
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        app.control.purge()
        if others:
            app.control.add_consumer(queue, destination=others, reply=True)
