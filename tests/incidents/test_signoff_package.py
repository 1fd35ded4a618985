"""Issue 9: sign-off that cannot be dodged and covers what is sent.

Each attack from the issue, replayed against the real services and pages, refused with the
reason a person sees."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from incidents.apology.send import apology_send_start
from incidents.apology.services import apology_save
from incidents.assessment.services import affected_audience_compute
from incidents.models import EventKind, Kind, Severity, Stakeholder
from incidents.plan.models import SignerRequirement, SignOff
from incidents.plan.package import package_current
from incidents.plan.services import plan_version_create
from incidents.plan.signoff import (
    ApologyBlocked,
    apology_send_allowed,
    required_signers,
    signer_requirement_drop,
    signoff_inbox,
    signoff_record,
    signoff_withdraw,
)
from incidents.services import incident_update
from messaging.models import BrandTemplate, Broadcast, BroadcastStatus, Campaign
from tests.messaging.send_world import sendable_incident

pytestmark = pytest.mark.django_db


def write_plan(incident, actor, text="We exposed names and emails; we are sorry."):
    return plan_version_create(incident=incident, actor=actor, internal_steps="Rotate keys",
                               subscriber_message=text)


def sign(incident, actor, decision="approved", reason="", **kwargs):
    version = incident.plan_versions.order_by("-number").first()
    return signoff_record(incident=incident, version=version, actor=actor, decision=decision,
                          reason=reason, **kwargs)


def edit_apology(incident, actor, **changes):
    apology = type(incident).objects.get(pk=incident.pk).apology
    values = {name: getattr(apology, name) for name in (
        "subject", "from_name", "from_email", "reply_to", "brand_template", "default_locale",
        "bodies", "coupon_code", "compensation_text", "protective_steps")}
    return apology_save(incident=incident, actor=actor, **{**values, **changes})


@pytest.fixture
def breach(marketer, lawyer, security_officer):
    """A breach with 5 affected people, a plan and an apology, nobody has signed yet."""
    world = sendable_incident(marketer, 5, kind=Kind.DATA_BREACH, severity=Severity.SEV1,
                              tag="b")
    write_plan(world.incident, marketer)
    return world.incident


@pytest.fixture
def signed(breach, lawyer, security_officer):
    sign(breach, lawyer)
    sign(breach, security_officer)
    assert apology_send_allowed(breach) == (True, [])
    return breach


# --- 1. Requirements only ratchet up ----------------------------------------------------------

def test_reclassifying_a_breach_does_not_dodge_the_signers(breach, marketer):
    incident_update(incident=breach, actor=marketer, kind=Kind.OTHER, severity=Severity.SEV4,
                    pii_exposed=False)
    with pytest.raises(ApologyBlocked) as refused:
        apology_send_start(incident=breach, actor=marketer)
    assert refused.value.reasons == [
        "Legal has not signed plan version 1 yet (needed: a data breach; dropping it waits "
        "for Legal's approval).",
        "Security has not signed plan version 1 yet (needed: a data breach; dropping it "
        "waits for Security's approval).",
    ]
    assert not Broadcast.objects.exists()
    assert breach.events.filter(kind=EventKind.SIGNOFF, data__action="drop_requested",
                                message__contains="stays required until Legal approves "
                                                  "dropping it").count() == 1


def test_the_send_page_refuses_a_reclassified_breach_with_the_reason(client, breach,
                                                                     marketer):
    incident_update(incident=breach, actor=marketer, kind=Kind.OTHER, severity=Severity.SEV4,
                    pii_exposed=False)
    client.force_login(marketer)
    response = client.post(reverse("incidents:apology-send", args=[breach.pk]),
                           {"confirm": "on", "expected_count": 5}, follow=True)
    assert "Legal has not signed plan version 1 yet" in response.content.decode()
    assert not Broadcast.objects.exists()


def test_only_the_dropped_signer_can_approve_lowering_with_a_reason(
        breach, marketer, lawyer, security_officer):
    with pytest.raises(ValidationError, match="still needed: a data breach"):
        signer_requirement_drop(incident=breach, actor=lawyer, role="legal", reason="No")
    incident_update(incident=breach, actor=marketer, kind=Kind.OTHER, severity=Severity.SEV3,
                    pii_exposed=False, reason="It was test data")
    with pytest.raises(PermissionDenied):
        signer_requirement_drop(incident=breach, actor=marketer, role="legal", reason="x")
    with pytest.raises(PermissionDenied):
        signer_requirement_drop(incident=breach, actor=security_officer, role="legal",
                                reason="x")
    with pytest.raises(ValidationError, match="Say why"):
        signer_requirement_drop(incident=breach, actor=lawyer, role="legal", reason=" ")
    signer_requirement_drop(incident=breach, actor=lawyer, role="legal",
                            reason="Only synthetic test records were in the export.")
    breach.refresh_from_db()
    assert set(required_signers(breach)) == {"security"}
    assert breach.events.filter(message__contains="Leo (Legal) approved dropping Legal's "
                                                  "sign-off").exists()
    assert breach.events.filter(message__contains="Reason given: It was test data").exists()
    row = SignerRequirement.objects.get(incident=breach, role="legal")
    assert row.released_by == lawyer and row.released_at is not None


def test_lowering_severity_keeps_legal_and_raising_again_withdraws_the_drop(marketer):
    from tests.factories import declare

    incident = declare(marketer, severity=Severity.SEV1)
    assert set(required_signers(incident)) == {"legal"}
    incident_update(incident=incident, actor=marketer, severity=Severity.SEV3)
    assert "dropping it waits" in required_signers(incident)["legal"]
    incident_update(incident=incident, actor=marketer, severity=Severity.SEV1)
    assert required_signers(incident) == {"legal": "SEV1"}
    assert incident.events.filter(data__action="drop_withdrawn").exists()


def test_withdrawing_a_lead_request_does_not_drop_the_signer(marketer):
    from incidents.plan.signoff import signer_requests_set
    from tests.factories import declare

    incident = declare(marketer, severity=Severity.SEV3)
    signer_requests_set(incident=incident, actor=marketer, roles={"security"})
    signer_requests_set(incident=incident, actor=marketer, roles=set())
    assert "dropping it waits" in required_signers(incident)["security"]


# --- 2. A signature covers the whole outgoing package ----------------------------------------

@pytest.mark.parametrize("body", ["Nothing was leaked, ignore this.",
                                  "Sorry, it was the intern's fault lol"])
def test_replacing_the_body_after_signoff_voids_both_signatures(signed, marketer, body):
    edit_apology(signed, marketer, bodies={"en": body})
    assert SignOff.objects.filter(incident=signed, voided_at__isnull=True).count() == 0
    voids = signed.events.filter(kind=EventKind.SIGNOFF, data__voided=True)
    assert voids.count() == 2
    assert voids.filter(message__startswith="The apology email changed (version 2: body "
                                            "(English, Dutch)), so the approval of Leo "
                                            "(Legal)").exists()
    with pytest.raises(ApologyBlocked, match="Legal has not signed plan version 1 yet"):
        apology_send_start(incident=signed, actor=marketer)


@pytest.mark.parametrize("change", [
    {"coupon_code": "SORRY10", "compensation_text": "10% off"},
    {"subject": "We made a small mistake"},
    {"from_email": "news@northwind.test"},
    {"bodies": {"en": "Dear {{ first_name }}, we sent you the wrong sale. Sorry.",
                "nl": "Beste {{ first_name }}, sorry voor de fout.",
                "pl": "Przepraszamy za błąd."}},
])
def test_any_change_to_the_email_voids_the_signatures(signed, marketer, change):
    edit_apology(signed, marketer, **change)
    allowed, reasons = apology_send_allowed(signed)
    assert not allowed
    assert reasons[:2] == [
        "Legal has not signed plan version 1 yet (needed: a data breach).",
        "Security has not signed plan version 1 yet (needed: a data breach)."]


def test_a_different_brand_template_voids_the_signatures(signed, marketer):
    other = BrandTemplate.objects.create(name="Loud", brand_name="Northwind!",
                                         postal_address="1 Road")
    edit_apology(signed, marketer, brand_template=other)
    assert not apology_send_allowed(signed)[0]


def test_editing_the_brand_template_itself_is_caught_by_the_digest_at_send_time(
        signed, marketer):
    # Messaging cannot call up into incidents, so nothing voids eagerly: the guard's digest
    # comparison refuses, and says what changed.
    BrandTemplate.objects.filter(pk=signed.apology.brand_template_id).update(
        footer_text="Ignore this email")
    with pytest.raises(ApologyBlocked) as refused:
        apology_send_start(incident=signed, actor=marketer)
    assert refused.value.reasons[0] == (
        "Legal signed an earlier package; since then Email: brand template changed, so "
        "Legal must sign again.")


def test_recomputing_a_different_audience_voids_the_signatures(signed, marketer):
    campaign = Campaign.objects.get(name="Spring sale b")
    other = Campaign.objects.create(esp_account=campaign.esp_account, esp_campaign_id="other",
                                    name="Other", subject="x", status=campaign.status)
    affected_audience_compute(incident=signed, actor=marketer, campaigns=[campaign, other])
    assert not apology_send_allowed(signed)[0]
    assert signed.events.filter(message__startswith="The affected audience changed").exists()


def test_recomputing_the_same_audience_keeps_the_signatures(signed, marketer):
    campaign = Campaign.objects.get(name="Spring sale b")
    affected_audience_compute(incident=signed, actor=marketer, campaigns=[campaign])
    assert apology_send_allowed(signed) == (True, [])


def test_the_signature_stores_the_package_and_its_digest(signed, lawyer):
    snapshot, digest = package_current(incident=signed)
    legal = SignOff.objects.get(incident=signed, role="legal", voided_at__isnull=True)
    assert legal.package_digest == digest and len(digest) == 64
    assert legal.package["apology"]["bodies"]["en"].startswith("Dear {{ first_name }}")
    assert legal.package["audience"]["count"] == 5
    assert legal.package["plan"]["number"] == 1


def test_signing_a_package_that_changed_while_reading_records_nothing(breach, marketer,
                                                                      lawyer):
    _snapshot, seen = package_current(incident=breach)
    edit_apology(breach, marketer, subject="Notice of data breach")
    with pytest.raises(ValidationError, match="changed while you were reading"):
        sign(breach, lawyer, digest=seen)
    assert not SignOff.objects.exists()


def test_a_send_under_way_pauses_when_the_package_changes(signed, marketer,
                                                          django_capture_on_commit_callbacks):
    broadcast = apology_send_start(incident=signed, actor=marketer, batch_size=2)
    assert broadcast.status == BroadcastStatus.SENDING
    edit_apology(signed, marketer, bodies={"en": "Sorry, ignore this."})
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.PAUSED
    alert = signed.events.get(kind=EventKind.ALERT, data__reason="package_changed")
    assert alert.message.startswith("Sending the apology is paused: The apology email changed")


# --- 3. The signers are reached ----------------------------------------------------------------

def test_declaring_a_breach_makes_every_signer_a_stakeholder_and_emails_them(
        lawyer, security_officer, marketer, mailoutbox, django_capture_on_commit_callbacks,
        monkeypatch):
    from config.celery import app
    from tests.factories import declare

    # Tasks run in this process (the Celery app is configured once per run, so changing
    # Django's setting now would not reach it).
    monkeypatch.setattr(app.conf, "task_always_eager", True)
    with django_capture_on_commit_callbacks(execute=True):
        incident = declare(security_officer, kind=Kind.DATA_BREACH, severity=Severity.SEV2)
    roles = set(Stakeholder.objects.filter(incident=incident, user=lawyer)
                .values_list("role", flat=True))
    assert roles == {"legal"}
    write_plan(incident, security_officer)
    assert [i.incident for i in signoff_inbox(user=lawyer)] == [incident]
    mail = next(m for m in mailoutbox if "leo@example.test" in m.to
                and "Your sign-off is needed" in m.subject)
    assert reverse("incidents:signoff-review", args=[incident.pk]) in mail.body


def test_a_configured_default_signer_is_the_only_one_asked(marketer, lawyer, settings):
    from accounts.roles import Role
    from tests.conftest import make_user
    from tests.factories import declare

    other = make_user("lena", Role.LEGAL)
    settings.AMENDS_DEFAULT_SIGNERS = {"legal": "lena"}
    incident = declare(marketer, severity=Severity.SEV1)
    legal = set(incident.stakeholders.filter(role="legal").values_list("user", flat=True))
    assert legal == {other.pk}


def test_the_sign_page_has_approve_reject_and_the_diff(client, signed, marketer, lawyer):
    edit_apology(signed, marketer, bodies={"en": "Dear {{ first_name }}, sorry. Ignore "
                                                 "this."})
    client.force_login(lawyer)
    html = client.get(reverse("incidents:signoff-review", args=[signed.pk])).content.decode()
    assert 'id="approve-legal"' in html and 'id="reject-legal"' in html
    assert "<ins>Dear {{ first_name }}, sorry. Ignore this.</ins>" in html
    assert "<del>Dear {{ first_name }}, we sent you the wrong sale. Sorry.</del>" in html


def test_one_decision_per_signer_per_package_and_withdraw(client, breach, lawyer):
    sign(breach, lawyer)
    with pytest.raises(ValidationError, match="already approved this package"):
        sign(breach, lawyer)
    assert SignOff.objects.filter(incident=breach, role="legal").count() == 1
    client.force_login(lawyer)
    page = reverse("incidents:signoff-review", args=[breach.pk])
    html = client.get(page).content.decode()
    assert 'id="approve-legal"' not in html and 'id="withdraw-legal"' in html
    assert "Approved — " in html
    response = client.post(reverse("incidents:signoff-withdraw", args=[breach.pk]),
                           {"role": "legal", "next": "review"})
    assert response.status_code == 302 and response["Location"] == page
    assert not SignOff.objects.filter(incident=breach, voided_at__isnull=True).exists()
    assert breach.events.filter(data__withdrawn=True).exists()
    with pytest.raises(ValidationError, match="no decision to withdraw"):
        signoff_withdraw(incident=breach, actor=lawyer)


def test_a_second_approve_click_from_the_page_is_refused_with_the_reason(client, breach,
                                                                         lawyer):
    client.force_login(lawyer)
    url = reverse("incidents:plan-sign", args=[breach.pk, 1])
    client.post(url, {"decision": "approved", "next": "review"})
    response = client.post(url, {"decision": "approved", "next": "review"}, follow=True)
    assert "Leo already approved this package for Legal" in response.content.decode()
    assert SignOff.objects.filter(incident=breach).count() == 1


def test_the_edit_page_lowers_with_a_reason_and_the_signers_stay(client, breach, marketer):
    client.force_login(marketer)
    response = client.post(reverse("incidents:incident-edit", args=[breach.pk]), {
        "title": breach.title, "kind": Kind.OTHER, "severity": Severity.SEV4, "cause": "",
        "lead": marketer.pk, "summary": "", "change_reason": "Only test records leaked"})
    assert response.status_code == 302
    breach.refresh_from_db()
    assert breach.kind == Kind.OTHER and not breach.pii_exposed
    assert breach.events.filter(data__action="drop_requested",
                                message__endswith="Reason given: Only test records "
                                                  "leaked").count() == 2
    assert set(required_signers(breach)) == {"legal", "security"}
