"""Benchmark: the PDF post-mortem of a big incident against WeasyPrint rendering a bare
500-row table, in the same run.

The product side: an incident with 500 timeline events, step 6's three charts (delivery
events before and after it), an affected audience, a signed plan and a finished
post-mortem, rendered by incidents.learn.pdf.postmortem_pdf_render (the record is read
from the database on every run, as the export task does). The baseline: a 500-row,
four-column HTML table of the same event texts, no styling, through WeasyPrint.

Creates its own database (amends_bench_pdf by default), runs both alternately (best of N
each), drops the database, and prints as its last lines:
    pdf_export peak_rss=<MiB> ...
    pdf_export ratio=<product/baseline> product=<s> baseline=<s> pages=<n>/<n>

Usage: python bench/pdf_export.py [--events N] [--repeat N]
Connection: BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432), database name
BENCH_DB (default amends_bench_pdf).
"""

import argparse
import html
import os
import resource
import time
import uuid
from datetime import timedelta

from benchdb import django_setup, fresh_database  # bench/ is sys.path[0] when run

DB = os.environ.get("BENCH_DB", "amends_bench_pdf")



def build_incident(events: int):
    """The incident, worked through every step, with `events` timeline events in all."""
    from django.utils import timezone

    from accounts.roles import Role
    from accounts.services import user_create_with_role
    from deliverability.models import DeliveryEvent
    from incidents import services
    from incidents.learn import services as learn
    from incidents.models import Cause, StepStatus
    from incidents.plan.services import FollowUp, plan_version_create

    lead = user_create_with_role(username="maya", password="x" * 12, role=Role.MARKETING,
                                 first_name="Maya", last_name="Marketing")
    legal = user_create_with_role(username="leo", password="x" * 12, role=Role.LEGAL,
                                  first_name="Leo", last_name="Legal")
    incident = services.incident_declare(
        actor=lead, title="Spring sale sent to the whole list instead of VIPs",
        kind="wrong_segment", severity=2,
        detected_at=timezone.now() - timedelta(minutes=20),
        summary="The VIP early-access email went to all 24,000 subscribers.")
    plan_version_create(incident=incident, actor=lead, internal_steps="Pause the journey.",
                        subscriber_message="We sent you an email meant for others.",
                        process_changes="Two people check the segment before a send.",
                        follow_ups=[FollowUp("Lock the segment picker", legal,
                                             timezone.now().date())])
    for step in incident.steps.all():
        services.step_set_status(step=step, actor=lead, status=StepStatus.DONE,
                                 note="Handled by hand")
    learn.postmortem_save(incident=incident, actor=lead, cause_category=Cause.HUMAN,
                          root_cause="The picker defaulted to all subscribers.",
                          lessons="Show the recipient count before every send.")
    learn.postmortem_finish(incident=incident, actor=lead)
    have = incident.events.count()
    for i in range(max(0, events - have)):
        services.timeline_note_add(
            incident=incident, actor=lead,
            message=f"Update {i}: support answered another reply about the wrong email; "
                    f"the count of complaints is still under the threshold.")
    # Step 6's three charts: a calm baseline, then the fallout after the declaration.
    rows = []
    for day in range(1, 8):
        at = incident.declared_at - timedelta(days=day)
        rows += [("delivered", 400, at), ("complained", 1, at), ("bounced_hard", 4, at),
                 ("unsubscribed", 2, at)]
    for hour in range(0, 6):
        at = incident.declared_at + timedelta(minutes=10 * hour)
        rows += [("delivered", 300, at), ("complained", 3, at), ("bounced_hard", 8, at),
                 ("unsubscribed", 6, at)]
    DeliveryEvent.objects.bulk_create(
        DeliveryEvent(esp="sandbox", esp_account="bench", kind=kind, occurred_at=at,
                      dedupe_key=uuid.uuid4(), recipient=f"{kind}{i}@bench.test")
        for kind, n, at in rows for i in range(n))
    return incident


def baseline_html(incident) -> str:
    rows = "".join(
        f"<tr><td>{e.created_at:%d %b %Y %H:%M}</td><td>{html.escape(str(e.actor))}</td>"
        f"<td>{e.kind}</td><td>{html.escape(e.message)}</td></tr>"
        for e in incident.events.select_related("actor").order_by("created_at", "id"))
    return f"<!DOCTYPE html><html><body><table>{rows}</table></body></html>"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with fresh_database(DB):
        run(args)


def run(args) -> None:
    django_setup(DB, EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
    from django.core.management import call_command
    from weasyprint import HTML

    from incidents.learn.pdf import postmortem_pdf_render

    call_command("migrate", verbosity=0)
    incident = build_incident(args.events)
    assert incident.events.count() == args.events, incident.events.count()
    bare = baseline_html(incident)

    product_times, baseline_times = [], []
    product_pages = baseline_pages = 0
    for _ in range(args.repeat):
        start = time.perf_counter()
        pdf = postmortem_pdf_render(incident=incident)
        product_times.append(time.perf_counter() - start)
        product_pages = pdf.pages
        start = time.perf_counter()
        document = HTML(string=bare).render()
        document.write_pdf()
        baseline_times.append(time.perf_counter() - start)
        baseline_pages = len(document.pages)
    product, baseline = min(product_times), min(baseline_times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"pdf_export peak_rss={peak:.0f}MiB events={args.events} charts=3 "
          f"repeat={args.repeat}")
    print(f"pdf_export ratio={product / baseline:.2f} product={product:.2f}s "
          f"baseline={baseline:.2f}s pages={product_pages}/{baseline_pages}")


if __name__ == "__main__":
    main()
