"""Step 3 through a real Celery worker: a 100,000-recipient affected audience computed in
the background while the war room keeps answering; cancel and the one-at-a-time rule."""

import re
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from core.schedule import BEAT_SCHEDULE
from incidents.assessment.services import affected_audience_compute, affected_audience_watchdog
from incidents.models import AffectedAudience, AudienceComputation, ComputationStatus
from messaging.models import Campaign
from tests.conftest import _database_url, wait_for
from tests.factories import declare

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SEGMENTS = 4


def load(n: int) -> list[int]:
    """n subscribers who all got one campaign and a tenth of whom got a second, loaded in
    set-based SQL as bench/affected_audience.py does. Returns the two campaigns' ids."""
    with connection.cursor() as cursor:
        cursor.execute(f"""
            INSERT INTO audiences_subscriber (email, name, locale, status, attributes,
                                              created_at, updated_at)
            SELECT 'User' || i || '@load.test', 'User ' || i, 'en',
                   CASE WHEN i % 211 = 0 THEN 'complained' WHEN i % 97 = 0 THEN 'bounced'
                        WHEN i % 50 = 0 THEN 'unsubscribed' ELSE 'active' END,
                   '{{}}'::jsonb, now(), now()
            FROM generate_series(1, {n}) AS i""")
        cursor.execute(f"""
            INSERT INTO audiences_segment (name, description, created_at)
            SELECT 'Segment ' || g, '', now() FROM generate_series(1, {SEGMENTS}) AS g""")
        # One person in ten is in no segment: outside the scope.
        cursor.execute(f"""
            INSERT INTO audiences_segmentmembership (segment_id, subscriber_id, added_at)
            SELECT g.id, s.id, now() FROM audiences_subscriber s
            JOIN audiences_segment g ON g.name = 'Segment ' || (s.id % {SEGMENTS} + 1)
            WHERE s.id % 10 <> 0""")
        cursor.execute("""
            INSERT INTO audiences_suppressionlist (name, source, description, created_at)
            VALUES ('Old list', 'test', '', now())""")
        cursor.execute(f"""
            INSERT INTO audiences_suppressionentry (suppression_list_id, email, reason,
                                                    added_at)
            SELECT l.id, 'user' || (i * 20 + 3) || '@load.test', 'test', now()
            FROM generate_series(0, {n // 20 - 1}) AS i
            JOIN audiences_suppressionlist l ON l.name = 'Old list'""")
        cursor.execute("""
            INSERT INTO messaging_espaccount (provider, label, created_at)
            VALUES ('sandbox', 'Load', now())""")
        cursor.execute("""
            INSERT INTO messaging_campaign (esp_account_id, esp_campaign_id, name, subject,
                                            status, started_at, created_at)
            SELECT id, 'load-' || g, 'Load campaign ' || g, 'Hello', 'sent', now(), now()
            FROM messaging_espaccount, generate_series(1, 2) AS g""")
        cursor.execute("""
            INSERT INTO messaging_campaignrecipient (campaign_id, subscriber_id, sent_at,
                                                     esp_message_id)
            SELECT c.id, s.id, now() - interval '1 hour', 'msg-' || c.id || '-' || s.id
            FROM audiences_subscriber s JOIN messaging_campaign c
              ON c.name = 'Load campaign 1' OR (c.name = 'Load campaign 2' AND s.id % 10 = 3)""")
        cursor.execute("ANALYZE")
    return list(Campaign.objects.filter(name__startswith="Load campaign")
                .order_by("name").values_list("pk", flat=True))


def direct_counts(campaign_ids: list[int]) -> tuple[int, int]:
    """Reached and apology audience, counted straight from the source tables."""
    with connection.cursor() as cursor:
        cursor.execute("""
            WITH people AS (
                SELECT DISTINCT r.subscriber_id FROM messaging_campaignrecipient r
                WHERE r.campaign_id = ANY(%s) AND EXISTS (
                    SELECT 1 FROM audiences_segmentmembership m
                    WHERE m.subscriber_id = r.subscriber_id))
            SELECT COUNT(*),
                   COUNT(*) FILTER (WHERE s.status = 'active' AND NOT EXISTS (
                       SELECT 1 FROM audiences_suppressionentry e
                       WHERE e.email = lower(s.email)))
            FROM people p JOIN audiences_subscriber s ON s.id = p.subscriber_id""",
                       [campaign_ids])
        return cursor.fetchone()


def wait_until_ended(run: AudienceComputation) -> None:
    def ended() -> bool:
        run.refresh_from_db()
        return not run.is_active

    wait_for(ended, timeout=60)


def war_room(client, incident):
    """The war room with step 3 open, as a person following the computation sees it."""
    return client.get(reverse("incidents:step-detail", args=[incident.pk, 3]))


def test_100k_audience_computed_by_the_worker_while_the_war_room_answers(
        client, celery_worker, marketer):
    campaign_ids = load(100_000)
    incident = declare(marketer)
    client.force_login(marketer)

    response = client.post(reverse("incidents:audience-compute", args=[incident.pk]),
                           {"campaigns": campaign_ids}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'id="audience-progress"' in response.content.decode()
    run = AudienceComputation.objects.get(incident=incident)

    pages, seen = [], []

    def finished() -> bool:
        page = war_room(client, incident)
        body = page.content.decode()
        pages.append((page.status_code, 'id="audience-progress"' in body,
                      'data-count="reached"' in body))
        bar = re.search(r'<progress id="audience-bar" max="(\d+)" value="(\d+)"', body)
        if bar:
            seen.append((int(bar[2]), int(bar[1])))
        run.refresh_from_db()
        return not run.is_active and pages[-1][2]

    wait_for(finished, timeout=300, interval=0.2)
    assert run.status == ComputationStatus.DONE
    assert all(status == 200 for status, _bar, _result in pages)
    assert all(bar or result for _status, bar, result in pages), \
        "a page showed neither the progress nor the result"
    done = [d for d, _t in seen]
    assert done == sorted(done) and all(d <= t for d, t in seen)  # real, monotone progress

    reached, affected = direct_counts(campaign_ids)
    audience = AffectedAudience.objects.get(incident=incident)
    assert (audience.reached_count, audience.affected_count) == (reached, affected)
    assert incident.affected_recipients.count() == reached
    assert reached == 90_000  # everyone but the tenth in no segment (campaign 2 ⊂ 1)
    body = war_room(client, incident).content.decode()
    assert f'data-count="reached">{reached:,}<'.replace(",", "") in body.replace(",", "")
    messages = list(incident.events.values_list("message", flat=True))
    assert any("started computing the affected audience" in m for m in messages)
    assert any("computed the affected audience of Load campaign 1, Load campaign 2: "
               f"{reached:,} reached, {affected:,} in the apology audience" in m for m in messages)


def test_cancel_keeps_the_previous_snapshot_and_a_second_run_is_refused(
        client, celery_worker, marketer):
    campaign_ids = load(5_000)
    incident = declare(marketer)
    # The previous snapshot: the first campaign only.
    affected_audience_compute(incident=incident, actor=marketer, campaigns=campaign_ids[:1])
    before = AffectedAudience.objects.get(incident=incident)
    rows_before = incident.affected_recipients.count()
    client.force_login(marketer)
    url = reverse("incidents:audience-compute", args=[incident.pk])

    # Another transaction holds the incident (as any incident write may): the worker claims
    # the run, computes, and waits for the lock for its short ending, so the cancel lands
    # while it is running and is seen at its last check.
    with psycopg.connect(_database_url()) as other:
        other.execute("SELECT id FROM incidents_incident WHERE id = %s FOR NO KEY UPDATE",
                      [incident.pk])
        client.post(url, {"campaigns": campaign_ids}, HTTP_HX_REQUEST="true")
        run = AudienceComputation.objects.get(incident=incident, status__in=["queued",
                                                                             "running"])

        def running() -> bool:
            run.refresh_from_db()
            return run.status == ComputationStatus.RUNNING

        wait_for(running, timeout=60)
        second = client.post(url, {"campaigns": campaign_ids[:1]}, HTTP_HX_REQUEST="true")
        assert "already being computed for this incident" in second.content.decode()
        assert AudienceComputation.objects.filter(incident=incident).count() == 1
        page = war_room(client, incident).content.decode()
        assert 'id="audience-progress"' in page and "Cancel computation" in page
        assert "disabled" in page.split('class="scope-form"')[1].split("</form>")[0]

        cancel = client.post(reverse("incidents:audience-cancel", args=[incident.pk]),
                             HTTP_HX_REQUEST="true")
        assert "Cancelling" in cancel.content.decode()
        other.rollback()  # the worker goes on, and stops at its first check

    wait_until_ended(run)
    assert run.status == ComputationStatus.CANCELLED
    after = AffectedAudience.objects.get(incident=incident)
    assert (after.computed_at, after.reached_count, after.affected_count) == (
        before.computed_at, before.reached_count, before.affected_count)
    assert incident.affected_recipients.count() == rows_before
    event = incident.events.get(data__audience_run__status="cancelled")
    assert event.actor == marketer
    assert event.message == (
        f"Maya cancelled the computation of the affected audience. The previous one is "
        f"kept: {before.reached_count:,} reached, {before.affected_count:,} in the apology "
        f"audience.")
    page = war_room(client, incident).content.decode()
    assert "The last computation was cancelled." in page
    assert f'data-count="reached">{before.reached_count}<' in page.replace(",", "")


def test_a_run_whose_task_was_lost_is_queued_again_by_the_watchdog(celery_worker, marketer):
    campaign_ids = load(2_000)
    incident = declare(marketer)
    # Queued as the war room queues it, but its message never reached a worker.
    run = AudienceComputation.objects.create(
        incident=incident, campaign_ids=campaign_ids[:1], segment_ids=[],
        requested_by=marketer)
    assert affected_audience_watchdog() == []  # a run just queued is left alone
    AudienceComputation.objects.filter(pk=run.pk).update(
        requested_at=timezone.now() - timedelta(minutes=5))

    assert affected_audience_watchdog() == [run.pk]
    assert affected_audience_watchdog() == []  # once a minute at most

    wait_until_ended(run)
    assert run.status == ComputationStatus.DONE
    assert AffectedAudience.objects.get(incident=incident).reached_count == 1_800
    schedule = BEAT_SCHEDULE["incidents-audience-watchdog"]
    assert schedule["task"] == "incidents.assessment.tasks.audience_watchdog"


def test_the_incident_is_not_held_while_the_audience_is_computed(
        client, celery_worker, marketer):
    """The computation locks the audience row for its whole run and the incident only for
    its short ending: sign-off, plan and step writes do not wait out a million rows."""
    campaign_ids = load(5_000)
    incident = declare(marketer)
    affected_audience_compute(incident=incident, actor=marketer, campaigns=campaign_ids[:1])
    client.force_login(marketer)
    url = reverse("incidents:audience-compute", args=[incident.pk])

    with psycopg.connect(_database_url()) as holder, \
            psycopg.connect(_database_url()) as other:
        # One row of the previous snapshot held: the worker's DELETE of it waits there,
        # in the middle of its computation.
        holder.execute("SELECT id FROM incidents_affectedrecipient WHERE incident_id = %s "
                       "LIMIT 1 FOR UPDATE", [incident.pk])
        client.post(url, {"campaigns": campaign_ids}, HTTP_HX_REQUEST="true")

        def deleting() -> bool:
            found = other.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND "
                "wait_event_type = 'Lock' AND query LIKE 'DELETE FROM "
                "incidents_affectedrecipient%%'").fetchone()
            other.rollback()
            return found is not None

        wait_for(deleting, timeout=60)
        # Any service may take the incident now, without waiting.
        other.execute("SELECT id FROM incidents_incident WHERE id = %s "
                      "FOR NO KEY UPDATE NOWAIT", [incident.pk])
        other.rollback()
        holder.rollback()

    run = AudienceComputation.objects.get(incident=incident)

    wait_until_ended(run)
    assert run.status == ComputationStatus.DONE
    assert AffectedAudience.objects.get(incident=incident).reached_count == 4_500
