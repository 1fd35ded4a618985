"""Finding a person by address, any case, through the case-insensitive unique index: the
bounce and unsubscribe feedback of a big send looks people up one event at a time."""

import pytest
from django.db import connection

from audiences.models import Subscriber, SubscriberStatus
from audiences.services import subscriber_status_raise

pytestmark = pytest.mark.django_db


def test_any_case_and_spacing_finds_the_person():
    maya = Subscriber.objects.create(email="Maya.Lopez@Example.com", name="Maya")
    Subscriber.objects.create(email="someone@example.com")
    assert list(Subscriber.objects.with_email("  maya.lopez@EXAMPLE.COM ")) == [maya]
    assert subscriber_status_raise(email="MAYA.LOPEZ@example.com",
                                   status=SubscriberStatus.BOUNCED) == 1
    maya.refresh_from_db()
    assert maya.status == SubscriberStatus.BOUNCED


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner")
def test_the_lookup_can_use_the_unique_index():
    Subscriber.objects.create(email="maya@example.com")
    query = Subscriber.objects.with_email("Maya@Example.com")
    with connection.cursor() as cursor:
        # With scans of the whole table priced out, only a query the index can answer
        # shows it in its plan (UPPER(email), what email__iexact writes, cannot).
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = query.query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "subscriber_email_ci_unique" in plan, plan
