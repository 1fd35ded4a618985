import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from incidents.models import EventKind, Kind, Severity
from incidents.plan.models import SignOff
from incidents.plan.services import plan_version_create
from incidents.plan.signoff import (
    ApologyBlocked,
    apology_send_allowed,
    require_signoff_for_send,
    required_signers,
    signer_requests_set,
    signoff_inbox,
    signoff_record,
)
from incidents.services import stakeholder_add
from tests.conftest import wait_for
from tests.factories import declare

pytestmark = pytest.mark.django_db


def write(incident, actor, text="Tell everyone the truth."):
    return plan_version_create(incident=incident, actor=actor, internal_steps="Lock exports",
                               subscriber_message=text)


def sign(incident, version, actor, decision="approved", reason=""):
    return signoff_record(incident=incident, version=version, actor=actor, decision=decision,
                          reason=reason)


@pytest.fixture
def breach(marketer, lawyer, security_officer):
    incident = declare(marketer, kind=Kind.DATA_BREACH, severity=Severity.SEV1)
    stakeholder_add(incident=incident, actor=marketer, user=lawyer, role="legal")
    stakeholder_add(incident=incident, actor=marketer, user=security_officer, role="security")
    return incident


def test_who_must_sign_follows_kind_pii_severity_and_the_leads_request(marketer):
    assert set(required_signers(declare(marketer, kind=Kind.DATA_BREACH))) == {
        "legal", "security"}
    assert set(required_signers(declare(marketer, pii_exposed=True))) == {"legal", "security"}
    assert set(required_signers(declare(marketer, severity=Severity.SEV1))) == {"legal"}
    plain = declare(marketer, severity=Severity.SEV3)
    assert required_signers(plain) == {}
    signer_requests_set(incident=plain, actor=marketer, roles={"security"})
    assert set(required_signers(plain)) == {"security"}
    assert plain.events.filter(kind=EventKind.SIGNOFF, message__contains="asked for").exists()


def test_nothing_required_means_the_guard_allows(marketer):
    assert apology_send_allowed(declare(marketer, severity=Severity.SEV3)) == (True, [])


def test_breach_apology_needs_both_signoffs(breach, marketer, lawyer, security_officer):
    allowed, reasons = apology_send_allowed(breach)
    assert not allowed and "No plan has been written yet" in reasons[0]
    v1 = write(breach, marketer)
    sign(breach, v1, lawyer)
    allowed, reasons = apology_send_allowed(breach)
    assert not allowed and reasons == [
        "Security has not signed plan version 1 yet (needed: a data breach)."]
    with pytest.raises(ApologyBlocked, match="Security has not signed"):
        require_signoff_for_send(breach)
    sign(breach, v1, security_officer)
    assert apology_send_allowed(breach) == (True, [])
    require_signoff_for_send(breach)  # does not raise
    assert breach.events.filter(message__contains="the apology may be sent").exists()


def test_rejection_needs_a_reason_and_blocks_with_it(breach, marketer, lawyer, security_officer):
    v1 = write(breach, marketer)
    with pytest.raises(ValidationError, match="Say why"):
        sign(breach, v1, security_officer, "rejected", "  ")
    sign(breach, v1, lawyer)
    sign(breach, v1, security_officer, "rejected", "Say which data was exposed.")
    allowed, reasons = apology_send_allowed(breach)
    assert not allowed
    assert reasons == ["Security rejected plan version 1: Say which data was exposed."]


def test_editing_the_plan_voids_signatures_visibly(breach, marketer, lawyer, security_officer):
    v1 = write(breach, marketer)
    first = sign(breach, v1, lawyer)
    sign(breach, v1, security_officer)
    assert apology_send_allowed(breach)[0]
    v2 = write(breach, marketer, "Tell everyone the whole truth.")
    first.refresh_from_db()
    assert first.voided_at is not None and first.void_reason == "plan edited to version 2"
    assert not apology_send_allowed(breach)[0]
    voids = breach.events.filter(kind=EventKind.SIGNOFF, data__voided=True)
    assert voids.count() == 2
    assert voids.filter(message__contains="approval of Leo (Legal) on version 1 is void").exists()
    with pytest.raises(ValidationError, match="no longer current"):
        sign(breach, v1, lawyer)
    sign(breach, v2, lawyer)
    sign(breach, v2, security_officer)
    assert apology_send_allowed(breach) == (True, [])


def test_a_signer_can_change_their_mind_and_the_old_decision_stays_void(
        breach, marketer, security_officer):
    v1 = write(breach, marketer)
    sign(breach, v1, security_officer, "rejected", "Too vague")
    sign(breach, v1, security_officer)
    assert SignOff.objects.filter(version=v1).count() == 2
    assert SignOff.objects.filter(version=v1, voided_at__isnull=True).get().decision == "approved"


def test_only_legal_and_security_sign(breach, marketer, admin_user, deliverability_lead):
    v1 = write(breach, marketer)
    for user in (marketer, admin_user, deliverability_lead):
        with pytest.raises(PermissionDenied):
            sign(breach, v1, user)


def test_guard_reads_the_database_not_a_stale_instance(breach, marketer, lawyer,
                                                       security_officer):
    v1 = write(breach, marketer)
    sign(breach, v1, lawyer)
    sign(breach, v1, security_officer)
    stale = type(breach).objects.get(pk=breach.pk)
    assert apology_send_allowed(stale)[0]
    write(breach, marketer, "Changed after the task loaded the incident.")
    assert not apology_send_allowed(stale)[0]


def test_suppression_list_incident_never_allows_an_apology(marketer):
    incident = declare(marketer, kind=Kind.SUPPRESSION_SEND, severity=Severity.SEV3)
    allowed, reasons = apology_send_allowed(incident)
    assert not allowed and "suppression list" in reasons[0]


def test_inbox_lists_what_waits_for_my_role_only_where_i_may_look(
        breach, marketer, lawyer, security_officer, make_signer):
    assert signoff_inbox(user=lawyer) == []  # no plan yet: nothing to sign
    v1 = write(breach, marketer)
    assert [i.incident for i in signoff_inbox(user=lawyer)] == [breach]
    other_lawyer = make_signer("lena", "legal")
    assert signoff_inbox(user=other_lawyer) == []  # restricted: not a stakeholder
    sign(breach, v1, lawyer)
    assert signoff_inbox(user=lawyer) == []
    assert [i.roles for i in signoff_inbox(user=security_officer)] == [["security"]]
    assert signoff_inbox(user=marketer) == []


@pytest.fixture
def make_signer(db):
    from accounts.roles import Role
    from tests.conftest import make_user

    return lambda name, role: make_user(name, Role(role))


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_voided_signers_get_an_email_after_commit(celery_worker, marketer, lawyer,
                                                  security_officer):
    incident = declare(marketer, kind=Kind.DATA_BREACH, severity=Severity.SEV1)
    v1 = write(incident, marketer)
    sign(incident, v1, lawyer)
    inbox = celery_worker["inbox"]
    before = len(inbox.messages)
    write(incident, marketer, "A better message.")
    # Leo also got the request to sign at declaration (issue 9): find the "sign again" one.
    wait_for(lambda: any("leo@example.test" in m.rcpt_tos and b"sign again" in m.content
                         for m in inbox.messages[before:]))


def test_inbox_query_count_does_not_grow_with_incidents(marketer, lawyer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count():
        with CaptureQueriesContext(connection) as ctx:
            signoff_inbox(user=lawyer)
        return len(ctx.captured_queries)

    write(declare(marketer, severity=Severity.SEV1), marketer)
    count()  # warms the user's permission and role caches
    one = count()
    for _ in range(3):
        write(declare(marketer, severity=Severity.SEV1), marketer)
    assert len(signoff_inbox(user=lawyer)) == 4
    assert count() == one
