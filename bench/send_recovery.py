"""Fault bench: how long an apology send stands still after its worker is SIGKILLed.

    python bench/send_recovery.py [--recipients 50000] [--kills 3] [--concurrency 2]

Production shape on this machine: its own PostgreSQL database (BENCH_DB, default
amends_bench_recovery), Redis, a loopback Postmark that enforces its search limit, a real
`celery worker` (prefork) and a real `celery beat` (the 2 s watchdog). While the apology
is sending, the whole worker (its process group) is SIGKILLed and restarted at once, as a
supervisor (docker's `restart: unless-stopped`) would. Measured per kill:

- worker back: from the kill until the new worker is ready (the supervisor's part);
- recovery: from the kill until the ESP receives the next new message (what a person
  waiting for the progress bar sees).

At the end: duplicates, missing and rows in doubt (all must be 0: the dead workers'
claims are reconciled through the time-windowed search). Prints as its last lines:
    send_recovery kills=<n> recovery_s=<each> max=<s>
    duplicates=<n> missing=<n> in_doubt=<n>
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.apology_fanout import SERVER, fresh_database, load, wait_status  # noqa: E402

DB = os.environ.get("BENCH_DB", "amends_bench_recovery")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
TOKEN = "bench-recovery-token"


def lean_postmark():
    """The test suite's loopback Postmark (with its documented search and its limit),
    keeping deliveries for the search but not every request body."""
    from tests.loopback.esps import PostmarkLoopback

    class LeanPostmark(PostmarkLoopback):
        def __init__(self) -> None:
            super().__init__(server_token=TOKEN, max_per_call=500)
            self._calls = deque(maxlen=1)

    return LeanPostmark()


def celery(kind: str, env: dict, log: Path) -> subprocess.Popen:
    args = ["worker", "--pool=prefork", f"--concurrency={env['BENCH_CONCURRENCY']}",
            "-Q", env["CELERY_TASK_DEFAULT_QUEUE"], "-n", f"rec-{uuid.uuid4().hex[:6]}@localhost",
            "--without-gossip", "--without-mingle", "--without-heartbeat"] \
        if kind == "worker" else ["beat", f"--schedule={ROOT / 'var' / 'bench-recovery-beat'}"]
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", *args,
                             "--loglevel=INFO"], cwd=ROOT, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"worker exited with {proc.returncode}; see {log}")
        if " ready." in log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise SystemExit(f"worker not ready within 60 s; see {log}")


def stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=50_000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rate", type=int, default=5_000, help="messages per second")
    args = parser.parse_args()
    with fresh_database(DB):
        run(args)


def run(args) -> None:
    queue = f"bench-recovery-{os.getpid()}"
    os.environ.update({"DATABASE_URL": f"{SERVER}/{DB}", "REDIS_URL": REDIS,
                       "CELERY_TASK_DEFAULT_QUEUE": queue})
    os.environ.setdefault("AMENDS_EMBEDDED", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.roles import Role
    from accounts.services import user_create_with_role
    from config.celery import app
    from incidents.apology.send import apology_send_start
    from incidents.apology.services import apology_save
    from incidents.assessment.services import affected_audience_compute
    from incidents.services import incident_declare
    from messaging.models import Campaign, Delivery, DeliveryState, EspAccount
    from messaging.services import brand_template_ensure_demo

    call_command("migrate", verbosity=0)
    with transaction.atomic(), connection.cursor() as cursor:
        load(cursor, args.recipients)
    EspAccount.objects.update(provider="postmark")  # the loaded account ("Bench")
    user = user_create_with_role(username="bench", password="bench-password-1",
                                 role=Role.MARKETING, first_name="Bench")
    incident = incident_declare(actor=user, title="Recovery", kind="wrong_segment",
                                severity=2, detected_at=timezone.now())
    affected_audience_compute(incident=incident, actor=user, campaigns=[Campaign.objects.get()])
    apology_save(incident=incident, actor=user, expected_version=0,
                 subject="We made a mistake", from_name="Northwind",
                 from_email="care@northwind.test", reply_to="",
                 brand_template=brand_template_ensure_demo(), default_locale="en",
                 bodies={"en": "Dear {{ first_name }}, we sent you the wrong sale. Sorry."})

    log_dir = ROOT / "var"
    log_dir.mkdir(exist_ok=True)
    esp = lean_postmark().start()
    env = {**os.environ, "BENCH_CONCURRENCY": str(args.concurrency),
           "AMENDS_ESP_ACCOUNTS": json.dumps({"Bench": {
               "server_token": TOKEN, "base_url": esp.url, "max_per_call": 500}}),
           "AMENDS_SEND_SETTLE": "2"}
    worker_log = log_dir / "bench-recovery-worker.log"
    beat_log = log_dir / "bench-recovery-beat.log"
    worker = celery("worker", env, worker_log)
    beat = celery("beat", env, beat_log)
    try:
        wait_ready(worker, worker_log)
        broadcast = apology_send_start(incident=incident, actor=user, batch_size=500,
                                       rate_per_second=args.rate,
                                       parallelism=args.concurrency)
        total = broadcast.recipient_count
        recoveries, restarts = [], []
        for k in range(args.kills):
            target = total * (k + 1) // (args.kills + 2)
            while len(esp.deliveries) < target:
                time.sleep(0.02)
            stop(worker, signal.SIGKILL)
            killed = time.monotonic()
            at_kill = len(esp.deliveries)
            worker = celery("worker", env, worker_log)
            wait_ready(worker, worker_log)
            restarts.append(time.monotonic() - killed)
            # A batch of the dead worker may still land just after the kill: wait for
            # messages beyond the next whole batch.
            while len(esp.deliveries) <= at_kill + 500:
                if time.monotonic() - killed > 120:
                    raise SystemExit("no recovery within 120 s")
                time.sleep(0.02)
            recoveries.append(time.monotonic() - killed)
            print(f"kill {k + 1}: worker back after {restarts[-1]:.1f} s, messages reach "
                  f"the ESP again {recoveries[-1]:.1f} s after the kill", flush=True)
        wait_status(broadcast.pk, "completed", timeout=600)
        deadline = time.monotonic() + 120
        in_doubt = Delivery.objects.filter(broadcast=broadcast, state=DeliveryState.IN_DOUBT)
        while in_doubt.exists() and time.monotonic() < deadline:
            time.sleep(0.5)  # the watchdog asks the ESP again
        counts = esp.recipient_counts()
        dups = sum(1 for n in counts.values() if n > 1)
        missing = total - len(counts)
        print(f"send_recovery kills={len(recoveries)} recovery_s="
              f"{','.join(f'{r:.1f}' for r in recoveries)} max={max(recoveries):.1f}")
        print(f"duplicates={dups} missing={missing} in_doubt={in_doubt.count()}")
    finally:
        stop(worker)
        stop(beat)
        esp.stop()
        app.control.purge()


if __name__ == "__main__":
    main()
