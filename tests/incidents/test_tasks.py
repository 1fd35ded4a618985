from email import message_from_bytes, policy

import pytest
from django.utils import timezone

from incidents import services
from incidents.models import EventKind, StakeholderRole
from tests.conftest import wait_for
from tests.factories import declare


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_real_worker_emails_stakeholders_about_a_status_change(celery_worker, marketer, lawyer):
    """Declared → contained: the worker process sends the notice over real SMTP."""
    inbox = celery_worker["inbox"]
    incident = declare(marketer, title="Coupon sent to the wrong list")
    services.stakeholder_add(incident=incident, actor=marketer, user=lawyer,
                             role=StakeholderRole.LEGAL)
    for number in (1, 2):
        services.step_set_status(step=incident.steps.get(number=number), actor=marketer,
                                 status="done", note="Handled on the call")

    def text_of(message) -> str:  # the plain part, decoded (it may travel encoded)
        parsed = message_from_bytes(message.content, policy=policy.default)
        body = parsed.get_body(("plain", "html"))
        return f"{parsed['Subject']}\n{body.get_content() if body else ''}"

    def notice_for_lawyer():
        # The inbox is the session's: other worker tests' incidents mail Leo too.
        link = f"/incidents/{incident.pk}/"
        return [text_of(m) for m in inbox.messages if "leo@example.test" in m.rcpt_tos
                and "to Contained" in text_of(m) and link in text_of(m)]

    text = wait_for(notice_for_lawyer)[0]
    assert "Coupon sent to the wrong list" in text
    # The actor is never emailed about their own change (other tests' mail to Maya aside).
    link = f"/incidents/{incident.pk}/"
    assert not [m for m in inbox.messages
                if "maya@example.test" in m.rcpt_tos and link in text_of(m)]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_real_worker_runs_the_overdue_check(celery_worker, marketer):
    from incidents.tasks import check_step_targets

    incident = declare(marketer, severity=1,
                       detected_at=timezone.now() - timezone.timedelta(hours=1))
    type(incident).objects.filter(pk=incident.pk).update(
        declared_at=timezone.now() - timezone.timedelta(minutes=30))
    check_step_targets.delay()
    alerts = wait_for(lambda: list(incident.events.filter(kind=EventKind.ALERT)))
    assert {a.data["step"] for a in alerts} == {1, 2}
