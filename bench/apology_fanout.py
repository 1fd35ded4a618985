"""Benchmark: the apology fan-out (ledger, Celery workers, rate pacing, kill switch) against
raw batched HTTP to the same loopback ESP, and how fast a pause takes hold.

    python bench/apology_fanout.py [--recipients 1000000] [--pauses 20] [--concurrency 2]

Creates its own PostgreSQL database (BENCH_DB, default amends_bench_fanout), loads the
recipients of a faulty campaign with generate_series, computes the affected audience with
the product, starts a loopback Postmark that takes up to 1,000 messages a call, and a real
`celery worker` (prefork, --concurrency as in production: one process per core) on Redis.

1. raw: one client process posts the same per-recipient /email/batch JSON (the product's
   rendered body with the name replaced, json.dumps), 1,000 a call, back to back: no
   database, no Celery, no ledger. Measured before and after the product (the machine is
   shared) and averaged.
2. product: apology_send_start (guard, linter, one INSERT … SELECT of the ledger), then the
   workers fan out until the broadcast is completed. Throughput = recipients / (completion
   − start); the ledger's materialisation is timed and printed separately.
3. pause: a second apology to part of the audience, paused at random moments and resumed;
   latency = how long apology_send_pause takes to commit (it waits for batches in flight),
   sends after pause = messages the ESP received after that commit.

Prints, as its last lines:
    apology_fanout ratio=<product/raw> product=<msg/s> raw=<msg/s>
    pause_latency p95=<s> sends_after_pause=<n>
Connection: BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432), BENCH_REDIS_URL
(default redis://127.0.0.1:6379/14).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
DB = os.environ.get("BENCH_DB", "amends_bench_fanout")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
BATCH = 1000
TOKEN = "bench-postmark-token"


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


def load(cursor, n: int) -> None:
    cursor.execute(f"""
        INSERT INTO audiences_subscriber (email, name, locale, status, attributes,
                                          created_at, updated_at)
        SELECT 'user' || i || '@bench.test', 'User' || i || ' Bench',
               CASE WHEN i % 5 = 0 THEN 'nl' ELSE 'en' END,
               CASE WHEN i % 101 = 0 THEN 'unsubscribed' ELSE 'active' END,
               '{{}}'::jsonb, now(), now()
        FROM generate_series(1, {n}) AS i""")
    cursor.execute("INSERT INTO audiences_segment (name, description, created_at) "
                   "VALUES ('Everyone', '', now())")
    cursor.execute("""
        INSERT INTO audiences_segmentmembership (segment_id, subscriber_id, added_at)
        SELECT g.id, s.id, now() FROM audiences_subscriber s CROSS JOIN audiences_segment g""")
    cursor.execute("INSERT INTO messaging_espaccount (provider, label, created_at) "
                   "VALUES ('postmark', 'Bench', now())")
    cursor.execute("""
        INSERT INTO messaging_campaign (esp_account_id, esp_campaign_id, name, subject,
                                        status, started_at, created_at)
        SELECT id, 'bench-1', 'Bench sale', 'Sale', 'sent', now(), now()
        FROM messaging_espaccount""")
    cursor.execute("""
        INSERT INTO messaging_campaignrecipient (campaign_id, subscriber_id, sent_at,
                                                 esp_message_id)
        SELECT c.id, s.id, now() - interval '1 hour', 'msg-' || s.id
        FROM audiences_subscriber s CROSS JOIN messaging_campaign c""")
    cursor.execute("ANALYZE")


# --- The loopback ESP: Postmark's /email/batch, counting per recipient -------------------

def counting_postmark():
    """PostmarkLoopback that keeps counts instead of every delivery and call (a million
    10 kB messages would not fit in memory otherwise); same parsing work per message."""
    from tests.loopback.esps import PostmarkLoopback
    from tests.loopback.server import Reply

    class CountingPostmark(PostmarkLoopback):
        def __init__(self) -> None:
            super().__init__(server_token=TOKEN, max_per_call=BATCH)
            self._calls = deque(maxlen=1)
            self.counts: dict[str, int] = {}
            self.total = 0

        def email_batch(self, call, match):
            if (denied := self._auth(call)) is not None:
                return denied
            messages = call.json
            if not isinstance(messages, list) or len(messages) > self.max_per_call:
                return Reply(422, {"ErrorCode": 300, "Message": "bad batch"})
            now = datetime.now(UTC).isoformat()
            answers = []
            with self.lock:
                for message in messages:
                    to = message.get("To", "")
                    address = to.rsplit("<", 1)[-1].rstrip(">").lower()
                    self.counts[address] = self.counts.get(address, 0) + 1
                    self.total += 1
                    answers.append({"ErrorCode": 0, "Message": "OK",
                                    "MessageID": str(uuid.uuid4()), "SubmittedAt": now,
                                    "To": to})
            return Reply(200, answers)

        def duplicates(self) -> int:
            with self.lock:
                return sum(1 for n in self.counts.values() if n > 1)

    return CountingPostmark()


# --- Raw: one client process, no product code ----------------------------------------------

RAW_CLIENT = r"""
import json, sys, time, requests
url, token, total, batch, html, text = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
    int(sys.argv[4]), open(sys.argv[5]).read(), open(sys.argv[6]).read()
session = requests.Session()
headers = {"X-Postmark-Server-Token": token, "Content-Type": "application/json",
           "Accept": "application/json"}
start = time.perf_counter()
for offset in range(0, total, batch):
    body = []
    for i in range(offset, min(offset + batch, total)):
        name = f"Raw{i}"
        body.append({"From": "Northwind <care@northwind.test>",
                     "To": f"{name} Bench <raw{i}@bench.test>",
                     "Subject": "We made a mistake", "Metadata": {"broadcast_id": "0",
                     "recipient_id": str(i)},
                     "HtmlBody": html.replace("{{ first_name }}", name),
                     "TextBody": text.replace("{{ first_name }}", name)})
    r = session.post(url + "/email/batch", data=json.dumps(body), headers=headers, timeout=60)
    r.raise_for_status()
    r.json()
print(total / (time.perf_counter() - start))
"""


def raw_rate(esp, total: int, html: str, text: str, tmp: Path) -> float:
    (tmp / "raw.html").write_text(html)
    (tmp / "raw.txt").write_text(text)
    out = subprocess.run([sys.executable, "-c", RAW_CLIENT, esp.url, TOKEN, str(total),
                          str(BATCH), str(tmp / "raw.html"), str(tmp / "raw.txt")],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


# --- The worker ------------------------------------------------------------------------------

def account_options(esp) -> dict:
    """The "Bench" ESP account's credentials: the loopback Postmark."""
    return {"server_token": TOKEN, "base_url": esp.url, "max_per_call": BATCH}


def start_worker(esp, queue: str, concurrency: int, log: Path) -> subprocess.Popen:
    from config.celery import app

    node = f"bench-{uuid.uuid4().hex[:8]}@localhost"
    env = {**os.environ, "DATABASE_URL": f"{SERVER}/{DB}", "REDIS_URL": REDIS,
           "CELERY_TASK_DEFAULT_QUEUE": queue, "AMENDS_EMBEDDED": "1",
           # The apology goes through the incident's account ("Bench", Postmark).
           "AMENDS_ESP_ACCOUNTS": json.dumps({"Bench": account_options(esp)})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork",
         f"--concurrency={concurrency}", "-Q", queue, "-n", node, "--loglevel=WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"worker exited with {proc.returncode}; see {log}")
        if app.control.ping(destination=[node], timeout=0.5):
            return proc
    raise SystemExit("worker did not answer within 60 s")


def wait_status(broadcast_id: int, wanted: str, timeout: float) -> float:
    from messaging.models import Broadcast

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = Broadcast.objects.values_list("status", "finished_at").get(pk=broadcast_id)
        if row[0] == wanted:
            return time.perf_counter()
        time.sleep(0.05)
    raise SystemExit(f"broadcast {broadcast_id} not {wanted} within {timeout} s")


def profile(args, incident, user, esp) -> None:
    import cProfile
    import pstats

    from django.conf import settings

    from incidents.apology_send import apology_send_start
    from messaging import broadcasts
    from messaging.esp.postmark import PostmarkAdapter

    settings.AMENDS_ESP_ACCOUNTS = {"BENCH": account_options(esp)}
    broadcast = apology_send_start(incident=incident, actor=user,
                                   batch_size=BATCH, rate_per_second=1_000_000,
                                   parallelism=1)
    from config.celery import app

    app.control.purge()  # nobody else sends: the batches run here
    adapter = PostmarkAdapter(server_token=TOKEN, base_url=esp.url, max_per_call=BATCH,
                              json_batch=True)
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    for _ in range(args.profile):
        broadcasts.broadcast_run_batch(broadcast_id=broadcast.pk, adapter=adapter)
    prof.disable()
    took = time.perf_counter() - t
    print(f"profile: {args.profile} batches of {BATCH} in {took:.2f} s "
          f"({args.profile * BATCH / took:,.0f} msg/s in one process)")
    pstats.Stats(prof).sort_stats("cumulative").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--raw", type=int, default=200_000,
                        help="messages for the raw rate (a rate; fewer is enough)")
    parser.add_argument("--pauses", type=int, default=20)
    parser.add_argument("--pause-audience", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--profile", type=int, default=0,
                        help="run this many batches in this process under cProfile, print "
                             "where the time goes, and stop")
    args = parser.parse_args()
    admin(f'DROP DATABASE IF EXISTS "{DB}"')
    admin(f'CREATE DATABASE "{DB}"')
    try:
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        admin(f'DROP DATABASE IF EXISTS "{DB}"')


def run(args) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = f"{SERVER}/{DB}"
    os.environ["REDIS_URL"] = REDIS
    os.environ.setdefault("AMENDS_EMBEDDED", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    queue = f"bench-fanout-{os.getpid()}"
    os.environ["CELERY_TASK_DEFAULT_QUEUE"] = queue
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.db.models import Count
    from django.utils import timezone

    from accounts.roles import Role
    from accounts.services import user_create_with_role
    from audiences.models import Subscriber
    from incidents.apology_send import apology_send_pause, apology_send_resume, apology_send_start
    from incidents.apology_services import apology_save
    from incidents.audience import affected_audience_compute
    from incidents.services import incident_declare
    from messaging.models import Broadcast, Campaign, CampaignRecipient, Delivery
    from messaging.services import brand_template_ensure_demo

    call_command("migrate", verbosity=0)
    t = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        load(cursor, args.recipients)
    print(f"loaded {args.recipients:,} recipients of the faulty campaign in "
          f"{time.perf_counter() - t:.1f} s")
    user = user_create_with_role(username="bench", password="bench-password-1",
                                 role=Role.MARKETING, first_name="Bench")
    brand = brand_template_ensure_demo()
    campaign = Campaign.objects.get()

    def incident_with_apology(title: str, campaign):
        incident = incident_declare(actor=user, title=title, kind="wrong_segment",
                                    severity=2, detected_at=timezone.now())
        t = time.perf_counter()
        audience = affected_audience_compute(incident=incident, actor=user,
                                             campaigns=[campaign])
        print(f"{title}: affected audience of {audience.affected_count:,} computed in "
              f"{time.perf_counter() - t:.1f} s")
        apology_save(incident=incident, actor=user, expected_version=0,
                     subject="We made a mistake", from_name="Northwind",
                     from_email="care@northwind.test", reply_to="", brand_template=brand,
                     default_locale="en",
                     bodies={"en": "Dear {{ first_name }}, yesterday we sent you a sale "
                                   "that was meant for another country. Sorry for the "
                                   "confusion; nothing changes for you.",
                             "nl": "Beste {{ first_name }}, gisteren stuurden we een actie "
                                   "die voor een ander land bedoeld was. Sorry!"})
        return incident, audience.affected_count

    tmp = ROOT / "var"
    tmp.mkdir(exist_ok=True)
    esp = counting_postmark().start()
    worker = None
    try:
        # 1. raw, with the product's own English body as the payload
        incident, affected = incident_with_apology("Fan-out", campaign)
        from incidents.apology_send import _render_bodies

        body = _render_bodies(incident.apology)["en"]
        print(f"message size: html {len(body['html']):,} B, text {len(body['text']):,} B")
        raw_total = min(args.raw, args.recipients)
        raw_before = raw_rate(esp, raw_total, body["html"], body["text"], tmp)
        print(f"raw (before): {raw_before:,.0f} msg/s over {raw_total:,} messages "
              f"(one client process, {BATCH} a call)")
        esp.counts.clear()
        esp.total = 0

        if args.profile:
            profile(args, incident, user, esp)
            return

        # 2. product
        worker = start_worker(esp, queue, args.concurrency,
                              tmp / "bench-fanout-worker.log")
        t0 = time.perf_counter()
        broadcast = apology_send_start(incident=incident, actor=user,
                                       batch_size=BATCH, rate_per_second=1_000_000,
                                       parallelism=args.concurrency)
        t1 = time.perf_counter()
        print(f"ledger of {broadcast.recipient_count:,} rows materialised (guard, linter, "
              f"INSERT … SELECT) in {t1 - t0:.1f} s")
        done = wait_status(broadcast.pk, "completed", timeout=3600)
        product = broadcast.recipient_count / (done - t1)
        dups = esp.duplicates()
        missing = broadcast.recipient_count - len(esp.counts)
        states = dict(Delivery.objects.filter(broadcast=broadcast).values_list("state")
                      .annotate(n=Count("id")).order_by())
        print(f"product: {product:,.0f} msg/s ({broadcast.recipient_count:,} in "
              f"{done - t1:.1f} s, {args.concurrency} worker processes); duplicates={dups} "
              f"missing={missing} ledger={states}")
        if dups or missing:
            raise SystemExit("exactly-once violated")
        # The machine is shared: raw again after the product, and the mean of the two.
        esp.counts.clear()
        raw_after = raw_rate(esp, raw_total, body["html"], body["text"], tmp)
        raw = (raw_before + raw_after) / 2
        print(f"raw (after): {raw_after:,.0f} msg/s; mean {raw:,.0f} msg/s")

        # 3. pause latency: a second apology to part of the audience
        esp.counts.clear()
        esp.total = 0
        part = Campaign.objects.create(esp_account=campaign.esp_account,
                                       esp_campaign_id="bench-2", name="Bench part",
                                       subject="Sale", status="sent",
                                       started_at=timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {CampaignRecipient._meta.db_table} (campaign_id, subscriber_id, "
                f"sent_at, esp_message_id) SELECT %s, id, now(), 'p-' || id FROM "
                f"{Subscriber._meta.db_table} ORDER BY id LIMIT %s",
                [part.pk, args.pause_audience])
        incident2, _n = incident_with_apology("Pauses", part)
        second = apology_send_start(incident=incident2, actor=user,
                                    batch_size=BATCH, rate_per_second=1_000_000,
                                    parallelism=args.concurrency)
        rng = random.Random(1)
        latencies, after = [], 0
        for _ in range(args.pauses):
            time.sleep(rng.uniform(0.3, 1.0))
            if Broadcast.objects.get(pk=second.pk).status != "sending":
                break
            t = time.perf_counter()
            apology_send_pause(incident=incident2, actor=user)
            latencies.append(time.perf_counter() - t)
            at_pause = esp.total
            time.sleep(1.5)  # anything the workers could still send would arrive by now
            after += esp.total - at_pause
            apology_send_resume(incident=incident2, actor=user)
        wait_status(second.pk, "completed", timeout=3600)
        if esp.duplicates():
            raise SystemExit("duplicates in the pause run")
        print(f"pauses: {len(latencies)}; latencies "
              f"{', '.join(f'{x:.3f}' for x in sorted(latencies))}")
        p95 = statistics.quantiles(latencies, n=20, method="inclusive")[18] \
            if len(latencies) >= 2 else (latencies or [0])[0]
        print(f"apology_fanout ratio={product / raw:.2f} product={product:.0f} raw={raw:.0f}")
        print(f"pause_latency p95={p95:.3f} sends_after_pause={after}")
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        esp.stop()
        from config.celery import app

        app.control.purge()


if __name__ == "__main__":
    main()
