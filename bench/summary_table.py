"""Benchmark: the managers' crisis summary page at 10 and at 1,000 incidents.

Creates its own PostgreSQL database (amends_bench_summary by default), loads incidents with
their six steps, owners, plan versions and sign-offs, affected audiences, assessments,
breach clocks and duties, timeline events (some deliverability alerts) and apology
broadcasts; requests the page as a manager through Django's test client (the whole stack:
middleware, session, permissions, selectors, template, chart) at 10 incidents, then at
1,000; drops the database and prints, as its last lines:

    summary_table incidents=10 queries=<n> median_ms=<t> p95_ms=<t> min_ms=<t> python_cpu_ms=<t>
    summary_table incidents=1000 queries=<n> median_ms=<t> p95_ms=<t> min_ms=<t> python_cpu_ms=<t>
    summary_table ratio=<median at 1,000 / median at 10> queries_10=<n> queries_1000=<n>

The page is asked for with period=365d, so all 1,000 incidents are in scope of the figures
and the row count (25 rows a page are rendered). Wall time is the server time per request
(the test client runs the whole Django stack in-process, so there is no network in it);
python_cpu_ms is the CPU the web process itself spent, which shows how much of the wall
time was waiting for a CPU on a shared machine or for PostgreSQL. Targets (issue 11): the
same query count at both sizes (at most 12) and under 150 ms at 1,000.

Usage: python bench/summary_table.py [--requests N]
Connection: BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432), database name
BENCH_DB (default amends_bench_summary).
"""

import argparse
import os
import random
import time
from datetime import timedelta
from decimal import Decimal

from benchdb import (  # bench/ is sys.path[0] when run
    django_setup,
    fresh_database,
    page_timings,
    pages_setup,
)

DB = os.environ.get("BENCH_DB", "amends_bench_summary")
URL = "/incidents/summary/?period=365d"



def load(n: int, offset: int, users: list, rng: random.Random) -> None:
    """n incidents, bulk-inserted (the services would write the same rows, one by one)."""
    from django.utils import timezone

    from incidents import playbook
    from incidents.models import (
        AffectedAudience,
        Assessment,
        BreachClock,
        DutyStatus,
        EventKind,
        Incident,
        Kind,
        PlanVersion,
        RegulatoryDuty,
        ResponseStep,
        SignOff,
        StepStatus,
        TimelineEvent,
    )
    from messaging.models import Broadcast, BroadcastStatus

    now = timezone.now()
    kinds = list(Kind.values)
    incidents = []
    for i in range(offset, offset + n):
        declared = now - timedelta(days=rng.uniform(0, 360), hours=rng.uniform(0, 23))
        kind = kinds[i % len(kinds)]
        closed = declared + timedelta(days=rng.uniform(1, 20)) if i % 5 < 3 else None
        incidents.append(Incident(
            title=f"Bench incident {i}", kind=kind, severity=1 + i % 4,
            status="closed" if closed and closed < now else "assessed",
            restricted=kind == Kind.DATA_BREACH, pii_exposed=kind == Kind.DATA_BREACH,
            lead=users[i % len(users)], declared_by=users[i % len(users)],
            detected_at=declared - timedelta(minutes=5), declared_at=declared,
            closed_at=closed if closed and closed < now else None))
    incidents = Incident.objects.bulk_create(incidents)

    steps, plans, audiences, assessments, clocks, events, broadcasts = [], [], [], [], [], [], []
    for inc in incidents:
        done_upto = 6 if inc.closed_at else rng.randint(0, 5)
        for d in playbook.STEPS:
            status = (StepStatus.DONE if d.number <= done_upto else
                      StepStatus.IN_PROGRESS if d.number == done_upto + 1 else
                      StepStatus.NOT_STARTED)
            done_at = (inc.declared_at + timedelta(minutes=rng.randint(5, 60 * 24 * d.number))
                       if status == StepStatus.DONE else None)
            steps.append(ResponseStep(
                incident=inc, number=d.number, title=str(d.title), goal=str(d.goal),
                owning_teams=str(d.owning_teams), risk_impact=str(d.risk_impact),
                owner=users[(inc.pk + d.number) % len(users)], status=status,
                target_minutes=d.targets.get(inc.severity),
                started_at=inc.declared_at if status != StepStatus.NOT_STARTED else None,
                done_at=done_at))
        plans.append(PlanVersion(incident=inc, number=1, author=inc.lead,
                                 created_at=inc.declared_at + timedelta(hours=2),
                                 internal_steps="Fix the segment", subscriber_message="Sorry"))
        audiences.append(AffectedAudience(incident=inc, computed_at=inc.declared_at,
                                          reached_count=rng.randint(100, 50_000),
                                          affected_count=rng.randint(50, 40_000)))
        assessments.append(Assessment(incident=inc, currency="EUR",
                                      compensation_per_person=Decimal("2.50")
                                      if inc.pk % 3 == 0 else None))
        if inc.restricted:
            clocks.append(BreachClock(incident=inc, aware_at=inc.declared_at,
                                      recorded_by=inc.lead))
        events.append(TimelineEvent(incident=inc, actor=inc.lead, kind=EventKind.DECLARED,
                                    message="Declared", created_at=inc.declared_at))
        if inc.pk % 7 == 0:
            events.append(TimelineEvent(incident=inc, kind=EventKind.ALERT,
                                        message="Deliverability alert",
                                        data={"deliverability_alert": f"c@{inc.pk}"},
                                        created_at=inc.declared_at + timedelta(days=1)))
        if done_upto >= 5:
            broadcasts.append(Broadcast(
                source_ref=f"incident:{inc.pk}", subject="We made a mistake",
                from_email="care@shop.test", default_locale="en", provider="sandbox",
                status=BroadcastStatus.COMPLETED, recipient_count=100,
                started_at=inc.declared_at + timedelta(hours=20),
                finished_at=inc.declared_at + timedelta(hours=21)))
    ResponseStep.objects.bulk_create(steps, batch_size=2000)
    plans = PlanVersion.objects.bulk_create(plans)
    AffectedAudience.objects.bulk_create(audiences)
    Assessment.objects.bulk_create(assessments)
    BreachClock.objects.bulk_create(clocks)
    TimelineEvent.objects.bulk_create(events, batch_size=2000)
    Broadcast.objects.bulk_create(broadcasts)
    signoffs, duties = [], []
    for inc, plan in zip(incidents, plans, strict=True):
        if inc.restricted or inc.severity == 1:
            signoffs.append(SignOff(incident=inc, version=plan, role="legal",
                                    signer=users[0], decision="approved"))
            if inc.restricted and inc.pk % 2:
                signoffs.append(SignOff(incident=inc, version=plan, role="security",
                                        signer=users[1], decision="approved"))
        if inc.restricted:
            duties.append(RegulatoryDuty(
                incident=inc, jurisdiction="eu", code="authority", title="Tell the authority",
                audience="authority", legal_basis="GDPR Art. 33",
                deadline_at=inc.declared_at + timedelta(hours=72),
                status=DutyStatus.PENDING if inc.closed_at is None else DutyStatus.NOT_NEEDED,
                approver=users[0] if inc.closed_at else None,
                decision_reason="Encrypted" if inc.closed_at else ""))
    SignOff.objects.bulk_create(signoffs)
    RegulatoryDuty.objects.bulk_create(duties)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    with fresh_database(DB):
        run(args)


def run(args) -> None:
    django_setup(DB, LOG_LEVEL="WARNING")
    from django.db import connection
    from django.test import Client

    from accounts.roles import Role
    from accounts.services import user_create_with_role

    users = pages_setup()
    rng = random.Random(11)
    manager = user_create_with_role(username="boss", password="bench-password-1",
                                    role=Role.MANAGER, first_name="Boss")
    client = Client()
    client.force_login(manager)

    results = {}
    loaded = 0
    for size in (10, 1000):
        started = time.perf_counter()
        load(size - loaded, loaded, users, rng)
        loaded = size
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"loaded {size:,} incidents in {time.perf_counter() - started:.1f} s")
        results[size] = page_timings(client, URL, args.requests)
        queries, median, p95, cpu, fastest = results[size]
        print(f"summary_table incidents={size} queries={queries} median_ms={median:.1f} "
              f"p95_ms={p95:.1f} min_ms={fastest:.1f} python_cpu_ms={cpu:.1f}")
    (q10, m10, *_rest), (q1000, m1000, *_rest) = results[10], results[1000]
    print(f"summary_table ratio={m1000 / m10:.2f} queries_10={q10} queries_1000={q1000}")


if __name__ == "__main__":
    main()
