"""The embedded default (what bin/demo runs and a new user meets first): SQLite, kombu's
filesystem broker and a real `--pool=solo` Celery worker process, end to end.

Everything runs in subprocesses with bin/demo's environment (this test session itself is
configured for PostgreSQL): migrate, a worker, and tests/core/embedded_drive.py, which
declares an incident, computes its audience, pauses the campaign through the war-room view,
sends the apology and posts a tracking webhook."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import process_stop

ROOT = Path(__file__).resolve().parents[2]
# Whatever points the suite at PostgreSQL, Redis, its own queue or prefixes stays out.
NOT_EMBEDDED = ("PYTEST_VERSION", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL",
                "CELERY_TASK_DEFAULT_QUEUE", "CACHE_KEY_PREFIX", "AMENDS_SANDBOX_REDIS_PREFIX",
                "CELERY_TASK_ALWAYS_EAGER", "DJANGO_SECRET_KEY", "DJANGO_SETTINGS_MODULE",
                "EMAIL_HOST")


@pytest.fixture
def embedded_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in NOT_EMBEDDED and not k.startswith(("AMENDS_", "ANYMAIL_"))}
    # bin/demo's own settings, with var/ in a temporary folder.
    return {**env, "AMENDS_EMBEDDED": "1", "DJANGO_DEBUG": "1", "PYTHONUNBUFFERED": "1",
            "AMENDS_VAR_DIR": str(tmp_path / "var")}


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
         "--loglevel=INFO", "-n", "embedded@localhost", "--without-gossip",
         "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def test_the_embedded_stack_runs_an_incident_end_to_end(embedded_env, tmp_path):
    log = tmp_path / "worker.log"
    migrate = subprocess.Popen([sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
                               cwd=ROOT, env=embedded_env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    worker = _worker(embedded_env, log)  # starts while the database is being made
    try:
        out, _ = migrate.communicate(timeout=120)
        assert migrate.returncode == 0, out
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text(errors="replace"):
            assert worker.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "worker not ready: " + log.read_text()
            time.sleep(0.1)
        drive = subprocess.run([sys.executable, "tests/core/embedded_drive.py"], cwd=ROOT,
                               env=embedded_env, capture_output=True, text=True, timeout=180)
        assert drive.returncode == 0, (drive.stdout + drive.stderr)[-4000:] \
            + "\n--- worker ---\n" + log.read_text(errors="replace")[-4000:]
    finally:
        process_stop(worker)
    seen = json.loads(drive.stdout.strip().splitlines()[-1])
    assert seen["database"] == "sqlite3" and seen["broker"] == "filesystem://"
    assert seen["eager"] is False  # a real worker did the work, not eager mode
    assert seen["affected"] == 12
    assert seen["pause_status"] == 302
    assert seen["pause"] == {"outcome": "stopped", "campaign": "paused"}
    assert seen["apology"] == {"recipient_count": 12, "status": "completed"}
    assert seen["webhook_status"] == 200 and seen["webhook_event"] == "bounced_hard"
    assert seen["bounced_subscriber"] is True
    assert (tmp_path / "var" / "amends.sqlite3").is_file()
    assert "embedded@localhost" in log.read_text() and "succeeded" in log.read_text()
