"""Issue 14: team notices are written in each reader's language and say so (lang, dir)."""

import pytest

from accounts.models import UserPreference
from incidents.models import EventKind
from incidents.plan.signoff import signoff_request_notify
from incidents.services import stakeholder_add, timeline_event_notify, timeline_note_add
from tests.factories import declare

pytestmark = pytest.mark.django_db


def html_of(message) -> str:
    (html, mimetype), = message.alternatives
    assert mimetype == "text/html"
    return html


def test_each_reader_gets_the_notice_in_their_language_and_direction(
        marketer, lawyer, security_officer, mailoutbox):
    incident = declare(marketer, title="Wrong coupon (SAVE-20)")
    stakeholder_add(incident=incident, actor=marketer, user=lawyer, role="legal")
    stakeholder_add(incident=incident, actor=marketer, user=security_officer, role="security")
    UserPreference.objects.create(user=lawyer, language="ar")
    event = timeline_note_add(incident=incident, actor=marketer, message="ESP says all clear.")
    assert event.kind == EventKind.NOTE
    mailoutbox.clear()

    assert timeline_event_notify(event=event) == 2
    by_reader = {m.to[0]: m for m in mailoutbox}
    arabic, english = by_reader[lawyer.email], by_reader[security_officer.email]
    assert len(mailoutbox) == 2 and arabic.to == [lawyer.email]
    assert arabic.extra_headers["Content-Language"] == "ar"
    assert '<html lang="ar" dir="rtl">' in html_of(arabic)
    assert english.extra_headers["Content-Language"] == "en"
    assert '<html lang="en" dir="ltr">' in html_of(english)
    # The entry and its link keep their own direction inside a right-to-left notice.
    assert '<p dir="auto" style="margin:0 0 12px;">ESP says all clear.</p>' in html_of(arabic)
    assert "ESP says all clear." in arabic.body  # the plain text is unchanged


def test_a_signer_who_reads_hebrew_is_asked_in_hebrew(marketer, lawyer, mailoutbox):
    incident = declare(marketer)
    UserPreference.objects.create(user=lawyer, language="he")
    assert signoff_request_notify(incident_id=incident.pk, user_ids=[lawyer.pk]) == 1
    (message,) = mailoutbox
    assert message.extra_headers["Content-Language"] == "he"
    assert '<html lang="he" dir="rtl">' in html_of(message)
    assert f"/incidents/{incident.pk}/" in html_of(message)
