"""Benchmark: the product's affected-audience computation against a hand-written
INSERT … SELECT, on PostgreSQL with 1,000,000 recipients across 20 segments and 50,000
suppressed addresses.

Creates its own database (amends_bench by default), loads it with generate_series, runs
both computations alternately (best of N each, the snapshot table emptied between runs),
checks they materialise the same rows, drops the database, and prints as its last line:

    affected_audience ratio=<product/baseline> product=<s> baseline=<s>

Usage: python bench/affected_audience.py [--subscribers N] [--repeat N]
Connection: BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432), database name
BENCH_DB (default amends_bench).
"""

import argparse
import os
import time

from benchdb import django_setup, fresh_database  # bench/ is sys.path[0] when run

DB = os.environ.get("BENCH_DB", "amends_bench")
SEGMENTS = 20
SUPPRESSED = 50_000



def load(cursor, n: int) -> None:
    """Everything in set-based SQL: no rows travel through Python."""
    cursor.execute(f"""
        INSERT INTO audiences_subscriber (email, name, locale, status, attributes,
                                          created_at, updated_at)
        SELECT 'User' || i || '@bench.test', 'User ' || i, 'en',
               CASE WHEN i % 211 = 0 THEN 'complained' WHEN i % 97 = 0 THEN 'bounced'
                    WHEN i % 50 = 0 THEN 'unsubscribed' ELSE 'active' END,
               '{{}}'::jsonb, now(), now()
        FROM generate_series(1, {n}) AS i""")
    cursor.execute(f"""
        INSERT INTO audiences_segment (name, description, created_at)
        SELECT 'Segment ' || g, '', now() FROM generate_series(1, {SEGMENTS}) AS g""")
    # Everyone in one segment; a quarter also in a second one (overlaps).
    cursor.execute(f"""
        INSERT INTO audiences_segmentmembership (segment_id, subscriber_id, added_at)
        SELECT g.id, s.id, now() FROM audiences_subscriber s
        JOIN audiences_segment g ON g.name = 'Segment ' || (s.id % {SEGMENTS} + 1)""")
    cursor.execute(f"""
        INSERT INTO audiences_segmentmembership (segment_id, subscriber_id, added_at)
        SELECT g.id, s.id, now() FROM audiences_subscriber s
        JOIN audiences_segment g ON g.name = 'Segment ' || ((s.id * 7 + 3) % {SEGMENTS} + 1)
        WHERE s.id % 4 = 0 ON CONFLICT DO NOTHING""")
    cursor.execute("""
        INSERT INTO audiences_suppressionlist (name, source, description, created_at)
        VALUES ('Old list', 'bench', '', now()), ('Legal hold', 'bench', '', now())""")
    step = max(n // SUPPRESSED, 1)
    cursor.execute(f"""
        INSERT INTO audiences_suppressionentry (suppression_list_id, email, reason, added_at)
        SELECT l.id, 'user' || (i * {step} + 3) || '@bench.test', 'bench', now()
        FROM generate_series(0, {SUPPRESSED - 1}) AS i
        JOIN audiences_suppressionlist l ON l.name = 'Old list'""")
    # A few addresses on both lists, and a few not subscribers at all.
    cursor.execute("""
        INSERT INTO audiences_suppressionentry (suppression_list_id, email, reason, added_at)
        SELECT l.id, 'user' || (i * 1000 + 3) || '@bench.test', 'bench', now()
        FROM generate_series(0, 499) AS i
        JOIN audiences_suppressionlist l ON l.name = 'Legal hold'
        ON CONFLICT DO NOTHING""")
    cursor.execute("""
        INSERT INTO messaging_espaccount (provider, label, created_at)
        VALUES ('sandbox', 'Bench', now())""")
    cursor.execute("""
        INSERT INTO messaging_campaign (esp_account_id, esp_campaign_id, name, subject,
                                        status, started_at, created_at)
        SELECT id, 'bench-1', 'Bench campaign', 'Hello', 'sent', now(), now()
        FROM messaging_espaccount""")
    cursor.execute("""
        INSERT INTO messaging_campaignrecipient (campaign_id, subscriber_id, sent_at,
                                                 esp_message_id)
        SELECT c.id, s.id, now() - interval '1 hour' + (s.id || ' milliseconds')::interval,
               'msg-' || s.id
        FROM audiences_subscriber s CROSS JOIN messaging_campaign c""")
    cursor.execute("ANALYZE")


BASELINE = """
    INSERT INTO incidents_affectedrecipient
        (incident_id, subscriber_id, campaign_id, sent_at, exclusion_reason,
         suppression_list_id)
    SELECT %s, r.subscriber_id, r.campaign_id, r.sent_at,
           CASE WHEN sup.list_id IS NOT NULL THEN 'suppressed'
                WHEN s.status <> 'active' THEN s.status ELSE '' END,
           sup.list_id
    FROM messaging_campaignrecipient r
    JOIN audiences_subscriber s ON s.id = r.subscriber_id
    LEFT JOIN (SELECT email, MIN(suppression_list_id) AS list_id
               FROM audiences_suppressionentry GROUP BY email) sup
           ON sup.email = lower(s.email)
    WHERE r.campaign_id = %s
      AND r.subscriber_id IN (SELECT subscriber_id FROM audiences_segmentmembership
                              WHERE segment_id = ANY(%s))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with fresh_database(DB):
        run(args)


def run(args) -> None:
    django_setup(DB, LOG_LEVEL="WARNING")
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.roles import Role
    from accounts.services import user_create_with_role
    from audiences.models import Segment
    from incidents.assessment.services import affected_audience_compute
    from incidents.models import AffectedRecipient
    from incidents.services import incident_declare
    from messaging.models import Campaign

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        load(cursor, args.subscribers)
    print(f"loaded {args.subscribers:,} subscribers and recipients in "
          f"{time.perf_counter() - started:.1f} s")

    user = user_create_with_role(username="bench", password="bench-password-1",
                                 role=Role.MARKETING)
    campaign = Campaign.objects.get()
    # Half the segments in scope: exercises the segment filter and the overlaps.
    segment_ids = list(Segment.objects.order_by("id").values_list("id", flat=True)[:10])
    product_times, baseline_times, counts = [], [], set()

    def empty_snapshot() -> None:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE incidents_affectedrecipient")
            cursor.execute("VACUUM ANALYZE incidents_affectedrecipient")

    for i in range(args.repeat):
        for which in (("product", "baseline") if i % 2 == 0 else ("baseline", "product")):
            empty_snapshot()
            incident = incident_declare(actor=user, title=f"Bench {which} {i}",
                                        kind="wrong_segment", severity=2,
                                        detected_at=timezone.now())
            started = time.perf_counter()
            if which == "product":
                affected_audience_compute(incident=incident, actor=user,
                                          campaigns=[campaign], segments=segment_ids)
                product_times.append(time.perf_counter() - started)
            else:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(BASELINE, [incident.pk, campaign.pk, segment_ids])
                baseline_times.append(time.perf_counter() - started)
            counts.add(AffectedRecipient.objects.filter(incident=incident).count())
            print(f"  run {i + 1} {which:<8} {time.perf_counter() - started:.3f} s")
    if len(counts) != 1:
        raise SystemExit(f"product and baseline disagree on the row count: {counts}")
    print(f"materialised {counts.pop():,} rows per run")
    product, baseline = min(product_times), min(baseline_times)
    print(f"affected_audience ratio={product / baseline:.2f} product={product:.3f} "
          f"baseline={baseline:.3f}")


if __name__ == "__main__":
    main()
