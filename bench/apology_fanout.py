"""Benchmark: the apology fan-out (ledger, Celery workers, rate pacing, kill switch) against
raw batched HTTP to the same loopback ESP, and how fast a pause takes hold.

    python bench/apology_fanout.py [--recipients 1000000] [--pauses 20] [--concurrency 2]

Creates its own PostgreSQL database (BENCH_DB, default amends_bench_fanout), loads the
recipients of a faulty campaign with generate_series, computes the affected audience with
the product, starts a loopback Postmark that takes up to 1,000 messages a call, and a real
`celery worker` (prefork, --concurrency as in production: one process per core) on Redis.

1. raw: as many client processes as the product has worker processes (--concurrency) post
   the same per-recipient /email/batch JSON (the product's rendered body with the name and
   a signed unsubscribe link replaced, the List-Unsubscribe header, json.dumps), 1,000 a
   call, back to back: no database, no Celery, no ledger.
   Rate = messages / (last process's end − first process's start). Measured before and
   after the product (the machine is shared) and averaged.
2. product: timed from the click — the send service call (guard, linter, one INSERT …
   SELECT of the audience snapshot into batch-sized chunks; each person's ledger row is
   written once, when their batch settles) — to the last settled row. The ESP account
   holds the loopback's limits (no rate limit, 1,000 a call) and the send uses them as the
   send form would, with no override. The set-up time is printed separately, and the
   ratio without it too.
4. defaults: one more send, on the sandbox ESP, with the send form's defaults for a
   sandbox account that sets no limits of its own (5,000/s, 1,000 a call): its throughput.
3. pause: a second apology to part of the audience, paused at random moments and resumed;
   latency = how long apology_send_pause takes to commit (it never waits for a batch),
   sends after pause = messages of ESP requests that arrived after that commit. Requests
   already at the ESP when it committed finish and settle; they are counted apart.

While the product sends it also prints the CPU time each message cost the worker
processes, PostgreSQL and this process (the loopback ESP), and how busy the cores were.

Prints, as its last lines:
    apology_fanout ratio=<product/raw, like for like, set-up included> product=<msg/s>
        raw=<msg/s> processes=<n> setup=<s> ratio_without_setup=<x>
    pause_latency p95=<s> sends_after_pause=<n>
    defaults: sandbox <msg/s> at rate=<limit>/s batch=<n> (<n> recipients)
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
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

from benchdb import ROOT, SERVER, fresh_database  # bench/ is sys.path[0] when run

DB = os.environ.get("BENCH_DB", "amends_bench_fanout")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
BATCH = 1000
TOKEN = "bench-postmark-token"




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
            # (when its request line and headers arrived, how many messages): a request
            # that arrived before a pause committed was already at the ESP.
            self.arrivals: list[tuple[float, int]] = []

        def email_batch(self, call, match):
            if (denied := self._auth(call)) is not None:
                return denied
            messages = call.json
            if not isinstance(messages, list) or len(messages) > self.max_per_call:
                return Reply(422, {"ErrorCode": 300, "Message": "bad batch"})
            now = datetime.now(UTC).isoformat()
            answers = []
            with self.lock:
                self.arrivals.append((call.at, len(messages)))
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
import hashlib, hmac, json, sys, time, requests
url, token, first, total, batch, html, text = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
    int(sys.argv[4]), int(sys.argv[5]), open(sys.argv[6]).read(), open(sys.argv[7]).read()
session = requests.Session()
headers = {"X-Postmark-Server-Token": token, "Content-Type": "application/json",
           "Accept": "application/json"}
signer = hmac.new(hashlib.sha256(b"raw unsubscribe key").digest(), digestmod=hashlib.sha256)
start = time.time()
for offset in range(first, first + total, batch):
    body = []
    for i in range(offset, min(offset + batch, first + total)):
        name = f"Raw{i}"
        # Each person's own signed unsubscribe link, in the body and in List-Unsubscribe,
        # as any sender of these emails must.
        mac = signer.copy()
        mac.update(str(i).encode())
        mac = mac.hexdigest()[:24]
        link = f"http://127.0.0.1:8000/unsubscribe/{i}-{mac}/"
        body.append({"From": "Northwind <care@northwind.test>",
                     "To": f"{name} Bench <raw{i}@bench.test>",
                     "Subject": "We made a mistake", "Metadata": {"broadcast_id": "0",
                     "recipient_id": str(i)},
                     "HtmlBody": html.replace("{{ first_name }}", name)
                                     .replace("{{ unsubscribe_url }}", link),
                     "TextBody": text.replace("{{ first_name }}", name)
                                     .replace("{{ unsubscribe_url }}", link),
                     "Headers": [{"Name": "List-Unsubscribe", "Value": f"<{link}>"}]})
    r = session.post(url + "/email/batch", data=json.dumps(body), headers=headers, timeout=60)
    r.raise_for_status()
    r.json()
print(start, time.time())
"""


def raw_rate(esp, total: int, html: str, text: str, tmp: Path, processes: int) -> float:
    """`processes` raw clients at once, each its share; messages / wall-clock span."""
    (tmp / "raw.html").write_text(html)
    (tmp / "raw.txt").write_text(text)
    share = -(-total // processes)
    procs = [subprocess.Popen([sys.executable, "-c", RAW_CLIENT, esp.url, TOKEN,
                               str(n * share), str(min(share, total - n * share)), str(BATCH),
                               str(tmp / "raw.html"), str(tmp / "raw.txt")],
                              stdout=subprocess.PIPE, text=True)
             for n in range(processes)]
    spans = []
    for proc in procs:
        out, _err = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"raw client failed ({proc.returncode})")
        spans.append(tuple(map(float, out.split())))
    return total / (max(end for _s, end in spans) - min(start for start, _e in spans))


# --- The worker ------------------------------------------------------------------------------

def account_options(esp) -> dict:
    """The "Bench" ESP account's credentials: the loopback Postmark."""
    return {"server_token": TOKEN, "base_url": esp.url, "max_per_call": BATCH}


def start_worker(esp, queue: str, concurrency: int, log: Path) -> subprocess.Popen:
    """A worker sending through the loopback Postmark, or (esp=None) the sandbox ESP."""
    from config.celery import app

    node = f"bench-{uuid.uuid4().hex[:8]}@localhost"
    env = {**os.environ, "DATABASE_URL": f"{SERVER}/{DB}", "REDIS_URL": REDIS,
           "CELERY_TASK_DEFAULT_QUEUE": queue, "AMENDS_EMBEDDED": "1",
           # The apology goes through the incident's account ("Bench", Postmark).
           "AMENDS_ESP_ACCOUNTS": json.dumps({"Bench": account_options(esp)} if esp else {})}
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


class CpuMeter:
    """CPU time (user + system, from /proc) of the worker processes, PostgreSQL's processes
    and this process (which serves the loopback ESP) while the product sends, sampled every
    half second so that a backend whose connection closed still counts up to its last
    sample; and how busy the machine's cores were."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, worker_pid: int) -> None:
        self.worker_pid = worker_pid
        self.first: dict[int, float] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self.done = threading.Event()
        self.before = self._machine()
        self._sample(initial=True)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @staticmethod
    def _machine() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    def _group(self, pid: int, name: str, ppid: int) -> str | None:
        if pid == os.getpid():
            return "loopback"
        if pid == self.worker_pid or ppid == self.worker_pid:
            return "workers"
        return "postgres" if name.startswith("postgres") else None

    def _sample(self, initial: bool = False) -> None:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    raw = f.read()
            except OSError:
                continue
            name = raw[raw.index("(") + 1:raw.rindex(")")]
            rest = raw[raw.rindex(")") + 2:].split()
            pid, ppid = int(entry), int(rest[1])
            group = self._group(pid, name, ppid)
            if group is None:
                continue
            used = (int(rest[11]) + int(rest[12])) / self.TICK
            self.first.setdefault(pid, used if initial else 0.0)
            self.last[pid] = (group, used)

    def _run(self) -> None:
        while not self.done.wait(0.5):
            self._sample()

    def stop(self, messages: int) -> str:
        self.done.set()
        self.thread.join()
        self._sample()
        busy, total = (a - b for a, b in zip(self._machine(), self.before, strict=True))
        per: dict[str, float] = {}
        for pid, (group, used) in self.last.items():
            per[group] = per.get(group, 0.0) + used - self.first[pid]
        parts = ", ".join(f"{group} {per.get(group, 0.0) / messages * 1e6:.0f} µs"
                          for group in ("workers", "postgres", "loopback"))
        return (f"cpu per message: {parts}; cores {100 * busy / max(total, 1):.0f} % busy "
                f"(set-up included)")


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

    from incidents.apology.send import apology_send_start
    from messaging import broadcasts
    from messaging.esp.postmark import PostmarkAdapter
    from messaging.models import EspAccount

    settings.AMENDS_ESP_ACCOUNTS = {"BENCH": account_options(esp)}
    EspAccount.objects.filter(label="Bench").update(rate_per_second=1_000_000,
                                                    batch_size=BATCH)
    broadcast = apology_send_start(incident=incident, actor=user,
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
    parser.add_argument("--defaults-audience", type=int, default=100_000,
                        help="recipients of the send with the form's defaults (sandbox)")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--profile", type=int, default=0,
                        help="run this many batches in this process under cProfile, print "
                             "where the time goes, and stop")
    args = parser.parse_args()
    with fresh_database(DB):
        run(args)


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
    from django.core.exceptions import ValidationError
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.db.models import Count, Max
    from django.utils import timezone

    from accounts.roles import Role
    from accounts.services import user_create_with_role
    from audiences.models import Subscriber
    from incidents.apology.send import apology_send_pause, apology_send_resume, apology_send_start
    from incidents.apology.services import apology_save
    from incidents.assessment.services import affected_audience_compute
    from incidents.services import incident_declare
    from messaging.models import Broadcast, Campaign, CampaignRecipient, Delivery, EspAccount
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

    def campaign_of_part(account, ref: str, size: int, order: str):
        """Another faulty campaign on `account`, sent to `size` of the subscribers."""
        part = Campaign.objects.create(esp_account=account, esp_campaign_id=ref,
                                       name=f"Bench {ref}", subject="Sale", status="sent",
                                       started_at=timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {CampaignRecipient._meta.db_table} (campaign_id, subscriber_id, "
                f"sent_at, esp_message_id) SELECT %s, id, now(), %s || id FROM "
                f"{Subscriber._meta.db_table} ORDER BY id{order} LIMIT %s",
                [part.pk, f"{ref}-", size])
        return part

    tmp = ROOT / "var"
    tmp.mkdir(exist_ok=True)
    esp = counting_postmark().start()
    worker = None
    try:
        # 1. raw, with the product's own English body as the payload
        incident, affected = incident_with_apology("Fan-out", campaign)
        from incidents.apology.send import _render_bodies

        body = _render_bodies(incident.apology)["en"]
        print(f"message size: html {len(body['html']):,} B, text {len(body['text']):,} B")
        raw_total = min(args.raw, args.recipients)
        processes = args.concurrency
        raw_before = raw_rate(esp, raw_total, body["html"], body["text"], tmp, processes)
        print(f"raw (before): {raw_before:,.0f} msg/s over {raw_total:,} messages "
              f"({processes} client processes, {BATCH} a call)")
        esp.counts.clear()
        esp.total = 0

        if args.profile:
            profile(args, incident, user, esp)
            return

        # 2. product, from the click to the last settled row. The account holds the
        # loopback's real limits (none to speak of; 1,000 a call): the send takes them as
        # the send form would, without an override.
        EspAccount.objects.filter(label="Bench").update(rate_per_second=1_000_000,
                                                        batch_size=BATCH)
        worker = start_worker(esp, queue, args.concurrency,
                              tmp / "bench-fanout-worker.log")
        click = timezone.now()
        t0 = time.perf_counter()
        meter = CpuMeter(worker.pid)
        broadcast = apology_send_start(incident=incident, actor=user,
                                       parallelism=args.concurrency)
        setup = time.perf_counter() - t0
        print(f"set-up: audience snapshot of {broadcast.recipient_count:,} people (guard, "
              f"linter, INSERT … SELECT into chunks) in {setup:.1f} s; rate "
              f"{broadcast.rate_per_second:,}/s, {broadcast.batch_size} a call (the account's)")
        wait_status(broadcast.pk, "completed", timeout=3600)
        cpu = meter.stop(broadcast.recipient_count)
        last = Delivery.objects.filter(broadcast=broadcast).aggregate(m=Max("settled_at"))["m"]
        span = (last - click).total_seconds()
        product = broadcast.recipient_count / span
        product_sending = broadcast.recipient_count / (span - setup)
        dups = esp.duplicates()
        missing = broadcast.recipient_count - len(esp.counts)
        states = dict(Delivery.objects.filter(broadcast=broadcast).values_list("state")
                      .annotate(n=Count("id")).order_by())
        print(f"product: {product:,.0f} msg/s from the click ({broadcast.recipient_count:,} in "
              f"{span:.1f} s, set-up {setup:.1f} s included; {product_sending:,.0f} msg/s "
              f"after set-up), {args.concurrency} worker processes; duplicates={dups} "
              f"missing={missing} ledger={states}")
        print(cpu)
        if dups or missing:
            raise SystemExit("exactly-once violated")
        # The machine is shared: raw again after the product, and the mean of the two.
        esp.counts.clear()
        raw_after = raw_rate(esp, raw_total, body["html"], body["text"], tmp, processes)
        raw = (raw_before + raw_after) / 2
        print(f"raw (after): {raw_after:,.0f} msg/s; mean {raw:,.0f} msg/s")

        # 3. pause latency: a second apology to part of the audience
        esp.counts.clear()
        esp.total = 0
        part = campaign_of_part(campaign.esp_account, "bench-2", args.pause_audience, "")
        incident2, _n = incident_with_apology("Pauses", part)
        second = apology_send_start(incident=incident2, actor=user,
                                    parallelism=args.concurrency)
        rng = random.Random(1)
        latencies, after, in_flight = [], 0, 0
        for _ in range(args.pauses):
            time.sleep(rng.uniform(0.3, 1.0))
            if Broadcast.objects.get(pk=second.pk).status != "sending":
                break
            t = time.perf_counter()
            try:
                apology_send_pause(incident=incident2, actor=user)
            except ValidationError:  # it completed between the check and the click
                break
            latencies.append(time.perf_counter() - t)
            paused_at, at_pause = time.time(), esp.total
            time.sleep(1.5)  # anything the workers could still send would arrive by now
            with esp.lock:
                # A request that arrived after the pause committed: the kill switch
                # failed. One that arrived before and finished after was at the ESP.
                late = sum(n for at, n in esp.arrivals if at > paused_at)
                after += late
                in_flight += esp.total - at_pause - late
            apology_send_resume(incident=incident2, actor=user)
        wait_status(second.pk, "completed", timeout=3600)
        if esp.duplicates():
            raise SystemExit("duplicates in the pause run")
        print(f"pauses: {len(latencies)}; latencies "
              f"{', '.join(f'{x:.3f}' for x in sorted(latencies))}; messages of requests "
              f"already at the ESP when a pause committed, answered after it: {in_flight}")
        p95 = statistics.quantiles(latencies, n=20, method="inclusive")[18] \
            if len(latencies) >= 2 else (latencies or [0])[0]
        # 4. the send form's defaults on the sandbox ESP: an account with no limits of its
        # own, a worker sending through the sandbox adapter.
        worker.terminate()
        worker.wait(timeout=30)
        worker = None
        sandbox_account = EspAccount.objects.create(label="Sandbox defaults",
                                                    provider="sandbox")
        third = campaign_of_part(sandbox_account, "bench-3", args.defaults_audience, " DESC")
        incident3, _n = incident_with_apology("Defaults", third)
        worker = start_worker(None, queue, args.concurrency, tmp / "bench-fanout-worker.log")
        click = timezone.now()
        defaults = apology_send_start(incident=incident3, actor=user,
                                      parallelism=args.concurrency)
        wait_status(defaults.pk, "completed", timeout=3600)
        last = Delivery.objects.filter(broadcast=defaults).aggregate(m=Max("settled_at"))["m"]
        default_rate = defaults.recipient_count / (last - click).total_seconds()

        print(f"apology_fanout ratio={product / raw:.2f} product={product:.0f} raw={raw:.0f} "
              f"processes={processes} setup={setup:.1f} "
              f"ratio_without_setup={product_sending / raw:.2f}")
        print(f"pause_latency p95={p95:.3f} sends_after_pause={after}")
        print(f"defaults: sandbox {default_rate:,.0f} msg/s at rate={defaults.rate_per_second}/s "
              f"batch={defaults.batch_size} ({defaults.recipient_count:,} recipients, from the "
              f"click to the last settled row)")
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
