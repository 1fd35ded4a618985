"""Benchmark: pages at scale — the war room at 1,000 and at 1,000,000 affected recipients,
the incident list at 10 and at 1,000 incidents (issue 13 item 4).

Creates its own PostgreSQL database (amends_bench_war_room by default) and, in order:
1. loads 10 incidents (six steps, plan, sign-offs, audience counts, timeline: the rows
   bench/summary_table.py loads), requests the incident list, loads 990 more and requests
   it again;
2. loads 1,000,000 subscribers in 20 segments, 50,000 suppressed addresses and a campaign
   that reached them all, plus a campaign that reached the first 1,000 (generate_series,
   as bench/affected_audience.py does); declares two incidents and computes their affected
   audiences — the small one in the call, the large one through the war room's path (the
   request queues an AudienceComputation, the task runs it; Celery is eager here, so the
   task runs in this process after the request's commit) — and prints how long that took;
3. requests each war room (step 3, the assessment, open: it shows the counts, per segment
   and per suppression list) as the incident's lead.
Every request goes through Django's test client (middleware, session, permissions,
selectors, templates), so the time is server time without a network. Drops the database
and prints, as its last lines:

    war_room affected=1000 queries=<n> median_ms=<t> p95_ms=<t> min_ms=<t> python_cpu_ms=<t>
    war_room affected=1000000 queries=<n> median_ms=<t> ...
    war_room ratio=<median at 1M / median at 1k> queries_small=<n> queries_large=<n>
    incident_list incidents=10 queries=<n> median_ms=<t> ...
    incident_list incidents=1000 queries=<n> median_ms=<t> ...
    incident_list ratio=<median at 1,000 / median at 10> queries_small=<n> queries_large=<n>

Targets (issue 13): war room under 150 ms at 1,000,000 affected; both pages with the same
query count at both sizes. python_cpu_ms is the CPU the web process itself spent (the rest
of the wall time is PostgreSQL, or waiting for a CPU on a shared machine).

Usage: python bench/war_room_scale.py [--requests N] [--recipients N]
Connection: BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432), database name
BENCH_DB (default amends_bench_war_room).
"""

import argparse
import os
import random
import time

from benchdb import (  # bench/ is sys.path[0] when run
    django_setup,
    fresh_database,
    page_timings,
    pages_setup,
)

DB = os.environ.get("BENCH_DB", "amends_bench_war_room")
SMALL_AUDIENCE = 1_000


def report(name: str, label: str, results: dict) -> None:
    for size, (queries, median, p95, cpu, fastest) in results.items():
        print(f"{name} {label}={size} queries={queries} median_ms={median:.1f} "
              f"p95_ms={p95:.1f} min_ms={fastest:.1f} python_cpu_ms={cpu:.1f}")
    (q_small, m_small, *_r), (q_large, m_large, *_r) = results.values()
    print(f"{name} ratio={m_large / m_small:.2f} queries_small={q_small} "
          f"queries_large={q_large}")


def open_step_three(incident) -> None:
    """Steps 1 and 2 done, so the war room opens on step 3 (the assessment) by itself."""
    from incidents.models import ResponseStep, StepStatus

    ResponseStep.objects.filter(incident=incident, number__lt=3).update(
        status=StepStatus.DONE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--recipients", type=int, default=1_000_000)
    args = parser.parse_args()
    with fresh_database(DB):
        run(args)


def run(args) -> None:
    django_setup(DB, LOG_LEVEL="WARNING")
    from affected_audience import load as load_audience  # bench/affected_audience.py
    from django.db import connection, transaction
    from django.test import Client
    from django.utils import timezone
    from summary_table import load as load_incidents  # bench/summary_table.py

    from incidents.assessment.services import (
        affected_audience_compute,
        affected_audience_request,
    )
    from incidents.models import AffectedAudience, AudienceComputation
    from incidents.services import incident_declare
    from messaging.models import Campaign

    users = pages_setup()
    rng = random.Random(13)
    client = Client()
    client.force_login(users[0])

    # 1. The incident list at 10 and at 1,000 incidents.
    lists, loaded = {}, 0
    for size in (10, 1000):
        started = time.perf_counter()
        load_incidents(size - loaded, loaded, users, rng)
        loaded = size
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"loaded {size:,} incidents in {time.perf_counter() - started:.1f} s")
        lists[size] = page_timings(client, "/incidents/", args.requests)

    # 2. Two affected audiences: 1,000 and args.recipients people.
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        load_audience(cursor, args.recipients)
        cursor.execute("""
            INSERT INTO messaging_campaign (esp_account_id, esp_campaign_id, name, subject,
                                            status, started_at, created_at)
            SELECT id, 'bench-small', 'Small campaign', 'Hello', 'sent', now(), now()
            FROM messaging_espaccount""")
        cursor.execute(f"""
            INSERT INTO messaging_campaignrecipient (campaign_id, subscriber_id, sent_at,
                                                     esp_message_id)
            SELECT c.id, s.id, now() - interval '1 hour', 'small-' || s.id
            FROM audiences_subscriber s JOIN messaging_campaign c
              ON c.esp_campaign_id = 'bench-small'
            WHERE s.id < (SELECT MIN(id) FROM audiences_subscriber) + {SMALL_AUDIENCE}""")
        cursor.execute("ANALYZE")
    print(f"loaded {args.recipients:,} subscribers and recipients in "
          f"{time.perf_counter() - started:.1f} s")
    small_campaign = Campaign.objects.get(esp_campaign_id="bench-small")
    large_campaign = Campaign.objects.get(esp_campaign_id="bench-1")
    incidents = {}
    for size, campaign in ((SMALL_AUDIENCE, small_campaign),
                           (args.recipients, large_campaign)):
        incident = incident_declare(actor=users[0], title=f"{size:,} affected",
                                    kind="wrong_segment", severity=2,
                                    detected_at=timezone.now())
        open_step_three(incident)
        started = time.perf_counter()
        if size == SMALL_AUDIENCE:
            affected_audience_compute(incident=incident, actor=users[0], campaigns=[campaign])
        else:
            with transaction.atomic():  # the view's transaction; the task runs on commit
                affected_audience_request(incident=incident, actor=users[0],
                                          campaigns=[campaign])
            run = AudienceComputation.objects.get(incident=incident)
            if run.status != "done":
                raise SystemExit(f"the computation ended {run.status}: {run.error}")
        audience = AffectedAudience.objects.get(incident=incident)
        print(f"affected audience of {audience.reached_count:,} computed in "
              f"{time.perf_counter() - started:.1f} s"
              + (" (through the task, in chunks with progress)" if size > SMALL_AUDIENCE
                 else ""))
        incidents[size] = incident
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE incidents_affectedrecipient")

    # 3. The war room at both sizes.
    rooms = {size: page_timings(client, f"/incidents/{incident.pk}/", args.requests)
             for size, incident in incidents.items()}
    report("war_room", "affected", rooms)
    report("incident_list", "incidents", lists)


if __name__ == "__main__":
    main()
