#!/usr/bin/env python
"""Benchmark: webhook ingest end to end against PostgreSQL COPY.

Starts the app for real — gunicorn serving config.wsgi and a Celery worker, both on a
database of their own (amends_bench_webhook, created and dropped here) and a Redis queue of
their own — then posts 1,000-event batches in SendGrid's Event Webhook format, with basic
auth, until 200,000 events are stored and normalised into DeliveryEvent rows. In the same
run it COPYs those same 200,000 rows into an identical table (LIKE ... INCLUDING ALL) as
the baseline, and prints:

    webhook_ingest ratio=<product events/s / COPY rows/s> product=<ev/s> copy=<rows/s>
    post_p95_ms=<ms>

Targets: ratio >= 0.25 and POST p95 < 100 ms. Run from the repository root:

    /work/main/.venv/bin/python bench/webhook_ingest.py

Environment: BENCH_PG (server URL, default postgres://postgres@127.0.0.1:5432),
BENCH_REDIS (default redis://127.0.0.1:6379/13), BENCH_EVENTS, BENCH_CLIENTS,
BENCH_WEB_WORKERS.
"""

import base64
import http.client
import io
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/13")
DB = "amends_bench_webhook"
TOTAL = int(os.environ.get("BENCH_EVENTS", "200000"))
BATCH = 1000
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "1"))
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))
DEADLINE_S = 600  # the whole run stops by itself, whatever happens
AUTH = "bench:" + uuid.uuid4().hex
URL_PATH = "/webhooks/sendgrid/tracking/"
KINDS = ["delivered"] * 90 + ["bounce"] * 3 + ["deferred"] * 3 + ["open"] * 2 + \
    ["spamreport", "unsubscribe"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def admin(sql: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def batches() -> list[bytes]:
    rng = random.Random(42)
    start = int(time.time()) - 86400
    bodies = []
    for b in range(TOTAL // BATCH):
        events = []
        for i in range(BATCH):
            n = b * BATCH + i
            kind = rng.choice(KINDS)
            event = {"email": f"user{n}@example.com", "timestamp": start + n % 86400,
                     "smtp-id": f"<{n}.bench@ismtpd-1>", "event": kind,
                     "category": ["bench"], "sg_event_id": f"bench-{n}",
                     "sg_message_id": f"msg-{n}.filter0001", "broadcast_id": str(1 + n % 5),
                     "recipient_id": str(n)}
            if kind == "bounce":
                event.update(reason="550 5.1.1 unknown user", status="5.1.1", type="bounce")
            events.append(event)
        bodies.append(json.dumps(events).encode())
    return bodies


def post_all(port: int, bodies: list[bytes]) -> list[float]:
    headers = {"Content-Type": "application/json",
               "Authorization": "Basic " + base64.b64encode(AUTH.encode()).decode()}

    def post(body: bytes) -> float:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        began = time.perf_counter()
        conn.request("POST", URL_PATH, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        elapsed = time.perf_counter() - began
        conn.close()
        if response.status != 200:
            raise RuntimeError(f"POST answered {response.status}")
        return elapsed

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(post, bodies))


def wait_http(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited during start-up")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("HEAD", URL_PATH)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer")


def wait_worker(app, node: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("celery worker exited during start-up")
        if app.control.ping(destination=[node], timeout=0.5):
            return
    raise RuntimeError("celery worker did not answer")


def counts(conn) -> tuple[int, int]:
    events = conn.execute("SELECT count(*) FROM deliverability_deliveryevent").fetchone()[0]
    pending = conn.execute("SELECT count(*) FROM deliverability_rawdeliverybatch "
                           "WHERE processed_at IS NULL").fetchone()[0]
    return events, pending


def copy_baseline(conn) -> float:
    """COPY the normalised rows into an identical table; returns rows per second."""
    columns = [r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = "
        "'deliverability_deliveryevent' AND column_name <> 'id' ORDER BY ordinal_position")]
    column_list = ", ".join(columns)
    buffer = io.BytesIO()
    with conn.cursor() as cur:
        with cur.copy(f"COPY (SELECT {column_list} FROM deliverability_deliveryevent) "
                      "TO STDOUT") as copy:
            for chunk in copy:
                buffer.write(chunk)
        cur.execute("CREATE TABLE bench_copy (LIKE deliverability_deliveryevent INCLUDING ALL)")
        conn.commit()
        data = buffer.getvalue()
        began = time.perf_counter()
        with cur.copy(f"COPY bench_copy ({column_list}) FROM STDIN") as copy:
            for start in range(0, len(data), 1 << 20):
                copy.write(data[start:start + (1 << 20)])
        conn.commit()
        elapsed = time.perf_counter() - began
        copied = cur.execute("SELECT count(*) FROM bench_copy").fetchone()[0]
    if copied != TOTAL:
        raise RuntimeError(f"COPY stored {copied} rows, expected {TOTAL}")
    return copied / elapsed


def main() -> int:
    started = time.monotonic()
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG}/{DB}", "DATABASE_CONN_MAX_AGE": "60", "REDIS_URL": REDIS,
        "CELERY_TASK_DEFAULT_QUEUE": f"bench-webhook-{os.getpid()}",
        "DJANGO_SECRET_KEY": uuid.uuid4().hex * 2, "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1", "ANYMAIL_WEBHOOK_SECRET": AUTH,
        "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
    }
    env.pop("PYTEST_VERSION", None)
    procs: list[subprocess.Popen] = []
    admin(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    admin(f"CREATE DATABASE {DB}")
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                       cwd=ROOT, env=env, check=True)
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL",
                                                 "CELERY_TASK_DEFAULT_QUEUE",
                                                 "DJANGO_SECRET_KEY")})
        sys.path.insert(0, str(ROOT))
        from config.celery import app

        port = free_port()
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind",
             f"127.0.0.1:{port}", "--workers", str(WEB_WORKERS), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
        procs.append(web)
        node = f"bench-{uuid.uuid4().hex[:6]}@localhost"
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
             "-Q", env["CELERY_TASK_DEFAULT_QUEUE"], "-n", node, "--loglevel=WARNING",
             "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
        procs.append(worker)
        bodies = batches()
        wait_http(port, web)
        wait_worker(app, node, worker)

        began = time.perf_counter()
        latencies = post_all(port, bodies)
        posted = time.perf_counter()
        with psycopg.connect(f"{PG}/{DB}") as conn:
            while True:
                events, pending = counts(conn)
                conn.commit()
                if events >= TOTAL and pending == 0:
                    break
                if time.monotonic() - started > DEADLINE_S:
                    raise RuntimeError(f"not done in {DEADLINE_S} s: {events} events, "
                                       f"{pending} batches pending")
                time.sleep(0.05)
            finished = time.perf_counter()
            raw = conn.execute("SELECT count(*) FROM deliverability_rawdeliveryevent"
                               ).fetchone()[0]
            if (events, raw) != (TOTAL, TOTAL):
                raise RuntimeError(f"stored {raw} raw and {events} normalised events")
            copy_rate = copy_baseline(conn)
        product = TOTAL / (finished - began)
        latencies.sort()
        p95 = latencies[int(len(latencies) * 0.95) - 1] * 1000
        spread = "/".join(f"{latencies[int(len(latencies) * q)] * 1000:.0f}"
                          for q in (0.5, 0.9, 0.99))
        print(f"# {TOTAL} events in {len(bodies)} POSTs by {CLIENTS} clients; posting took "
              f"{posted - began:.1f} s, normalised {finished - posted:.1f} s after the last "
              f"POST; POST ms p50/p90/p99/max {spread}/{latencies[-1] * 1000:.0f}",
              file=sys.stderr)
        print(f"webhook_ingest ratio={product / copy_rate:.3f} product={product:.0f} "
              f"copy={copy_rate:.0f} post_p95_ms={p95:.1f}")
        return 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        admin(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


if __name__ == "__main__":
    sys.exit(main())
