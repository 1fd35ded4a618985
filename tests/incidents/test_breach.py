from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from incidents.models import EventKind, Kind, Severity
from incidents.plan.breach import (
    breach_awareness_record,
    breach_view,
    duty_mark_not_needed,
    duty_mark_notified,
)
from incidents.plan.jurisdictions import JURISDICTIONS
from incidents.plan.models import DutyStatus
from tests.factories import declare
from tests.timefreeze import frozen_time

pytestmark = pytest.mark.django_db

MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def breach(security_officer):
    with frozen_time(MONDAY_9):
        return declare(security_officer, kind=Kind.DATA_BREACH, severity=Severity.SEV1,
                       detected_at=MONDAY_9 - timedelta(hours=1))


def duty(incident, jurisdiction, code):
    return incident.duties.get(jurisdiction=jurisdiction, code=code)


def test_jurisdictions_table_is_data_with_the_gdpr_72_hours():
    eu = next(j for j in JURISDICTIONS if j.code == "eu")
    assert [(d.legal_basis, d.hours) for d in eu.duties] == [("GDPR Art. 33", 72),
                                                             ("GDPR Art. 34", None)]
    au = next(j for j in JURISDICTIONS if j.code == "au")
    assert au.duties[0].hours == 30 * 24


def test_awareness_starts_the_clock_with_deadlines_from_the_table(breach, security_officer):
    with frozen_time(MONDAY_9 + timedelta(hours=2)):
        breach_awareness_record(incident=breach, actor=security_officer, aware_at=MONDAY_9,
                                jurisdictions=["eu", "us-tx"])
    art33 = duty(breach, "eu", "authority")
    assert art33.deadline_at == MONDAY_9 + timedelta(hours=72)
    assert duty(breach, "eu", "individuals").deadline_at is None
    assert duty(breach, "us-tx", "individuals").deadline_at == MONDAY_9 + timedelta(days=60)
    event = breach.events.filter(kind=EventKind.BREACH).first()
    assert "GDPR Art. 33" in event.message and "5 Mar 2026, 09:00" in event.message


def test_countdown_turns_overdue_after_72_hours(breach, security_officer):
    with frozen_time(MONDAY_9):
        breach_awareness_record(incident=breach, actor=security_officer, aware_at=MONDAY_9,
                                jurisdictions=["eu"])
    view = breach_view(incident=breach, now=MONDAY_9 + timedelta(hours=71))
    assert view.next_deadline.legal_basis == "GDPR Art. 33" and view.overdue == []
    view = breach_view(incident=breach, now=MONDAY_9 + timedelta(hours=73))
    assert [d.legal_basis for d in view.overdue] == ["GDPR Art. 33"]


def test_a_late_notification_is_flagged_late_forever(breach, security_officer):
    with frozen_time(MONDAY_9):
        breach_awareness_record(incident=breach, actor=security_officer, aware_at=MONDAY_9,
                                jurisdictions=["eu"])
    art33 = duty(breach, "eu", "authority")
    with frozen_time(MONDAY_9 + timedelta(hours=80)):
        duty_mark_notified(incident=breach, duty_id=art33.pk, actor=security_officer,
                           notified_at=MONDAY_9 + timedelta(hours=79), reference="DPA-2026-17")
    art33.refresh_from_db()
    assert art33.status == DutyStatus.NOTIFIED and art33.was_late
    alert = breach.events.filter(kind=EventKind.ALERT).first()
    assert "LATE" in alert.message and "DPA-2026-17" in alert.message
    # Moving the moment of awareness later afterwards cannot make the filing look on time.
    with frozen_time(MONDAY_9 + timedelta(hours=90)):
        breach_awareness_record(incident=breach, actor=security_officer,
                                aware_at=MONDAY_9 + timedelta(hours=24), jurisdictions=["eu"])
    art33.refresh_from_db()
    assert art33.deadline_at == MONDAY_9 + timedelta(hours=72)
    assert art33.was_late
    assert "already decided" in breach.events.filter(kind=EventKind.BREACH).first().message
    with pytest.raises(ValidationError, match="already decided"):
        duty_mark_notified(incident=breach, duty_id=art33.pk, actor=security_officer,
                           notified_at=MONDAY_9 + timedelta(hours=1), reference="again")


def test_an_on_time_notification_is_not_late(breach, security_officer):
    with frozen_time(MONDAY_9):
        breach_awareness_record(incident=breach, actor=security_officer, aware_at=MONDAY_9,
                                jurisdictions=["eu"])
    art33 = duty(breach, "eu", "authority")
    with frozen_time(MONDAY_9 + timedelta(hours=30)):
        duty_mark_notified(incident=breach, duty_id=art33.pk, actor=security_officer,
                           notified_at=MONDAY_9 + timedelta(hours=29), reference="DPA-1")
    art33.refresh_from_db()
    assert not art33.was_late


def test_correcting_awareness_moves_only_pending_deadlines_and_says_so(breach,
                                                                      security_officer):
    with frozen_time(MONDAY_9 + timedelta(hours=1)):
        breach_awareness_record(incident=breach, actor=security_officer, aware_at=MONDAY_9,
                                jurisdictions=["eu"])
        breach_awareness_record(incident=breach, actor=security_officer,
                                aware_at=MONDAY_9 - timedelta(hours=6), jurisdictions=["eu"])
    assert duty(breach, "eu", "authority").deadline_at == MONDAY_9 + timedelta(hours=66)
    event = breach.events.filter(kind=EventKind.BREACH).first()
    assert "corrected the moment of awareness" in event.message and "moved from" in event.message


def test_not_needed_needs_a_named_approver_and_a_reason(breach, security_officer, lawyer):
    with frozen_time(MONDAY_9):
        breach_awareness_record(incident=breach, actor=security_officer, aware_at=MONDAY_9,
                                jurisdictions=["eu"])
    art34 = duty(breach, "eu", "individuals")
    with pytest.raises(ValidationError, match="why no notice"):
        duty_mark_not_needed(incident=breach, duty_id=art34.pk, actor=security_officer,
                             approver=lawyer, reason=" ")
    duty_mark_not_needed(incident=breach, duty_id=art34.pk, actor=security_officer,
                         approver=lawyer, reason="Data was encrypted; no high risk.")
    art34.refresh_from_db()
    assert art34.status == DutyStatus.NOT_NEEDED and art34.approver == lawyer
    assert "approved by Leo" in breach.events.filter(kind=EventKind.BREACH).first().message


def test_bad_input_is_refused_with_a_clear_message(breach, security_officer, marketer):
    with frozen_time(MONDAY_9):
        with pytest.raises(ValidationError, match="future"):
            breach_awareness_record(incident=breach, actor=security_officer,
                                    aware_at=MONDAY_9 + timedelta(hours=1),
                                    jurisdictions=["eu"])
        with pytest.raises(ValidationError, match="unknown: mars"):
            breach_awareness_record(incident=breach, actor=security_officer,
                                    aware_at=MONDAY_9, jurisdictions=["mars"])
        plain = declare(marketer, kind=Kind.BROKEN_LINK, severity=Severity.SEV3)
        with pytest.raises(ValidationError, match="data breaches"):
            breach_awareness_record(incident=plain, actor=marketer, aware_at=MONDAY_9,
                                    jurisdictions=["eu"])
    assert not breach.duties.exists()
