"""Every URL of the project × every role, with the answer each must get.

The URL list comes from the URL conf itself, so a new view without a rule here fails
`test_every_url_has_a_rule` (and its own matrix row). Only the Django admin, i18n and
static files are left out: they carry their own, framework-tested permissions.

The incident in the matrix is a restricted data breach: its stakeholders are the
marketer (lead), the lawyer, the security officer and the deliverability lead; the
outsider is a marketer who is none of them. Every request runs in a savepoint that is
rolled back, so each role meets the same world.

Expected answers: 200, 302 (a redirect that is not the login page), LOGIN (302 to the
login page), 403, 404, 405.
"""

from dataclasses import dataclass, field
from datetime import date

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.roles import Role
from incidents.models import Kind, Severity
from incidents.plan.breach import breach_awareness_record
from incidents.plan.services import FollowUp, plan_version_create
from incidents.services import stakeholder_add, timeline_note_add
from tests.conftest import make_user
from tests.factories import declare

LOGIN = "login"
ROLES = ["anonymous", "marketing", "legal", "security", "deliverability", "manager", "admin",
         "outsider"]
SKIPPED_NAMESPACES = ("admin",)
SKIPPED_PREFIXES = ("i18n/", "static/", "media/")


def walk(patterns=None, namespace: str = "", prefix: str = ""):
    """Yield (name, route, pattern) for every URL of the project."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            ns = p.namespace or ""
            if ns in SKIPPED_NAMESPACES or route.startswith(SKIPPED_PREFIXES):
                continue
            yield from walk(p.url_patterns, f"{namespace}{ns}:" if ns else namespace, route)
        elif isinstance(p, URLPattern):
            if route.startswith(SKIPPED_PREFIXES):
                continue
            name = f"{namespace}{p.name}" if p.name else f"<unnamed {route}>"
            yield name, route, p


def url_names() -> list[str]:
    return sorted({name for name, _route, _p in walk()})


# --- The rules -------------------------------------------------------------------------------

def everyone(code, anonymous=LOGIN) -> dict:
    return {"anonymous": anonymous, **{r: code for r in ROLES if r != "anonymous"}}


def readers(code=200) -> dict:
    """Anyone who may see the restricted incident; the outsider must not learn it exists."""
    return {**everyone(code), "outsider": 404}


def writers(code=302) -> dict:
    """Stakeholders who work incidents; managers read only; outsiders see nothing."""
    return {**everyone(code), "manager": 403, "outsider": 404}


@dataclass
class Rule:
    method: str
    expect: dict
    data: dict | None = None  # or a callable taking the world
    kwargs: dict = field(default_factory=dict)  # overrides by kwarg name: callable(world)


def plan_data(world):
    return {"internal_steps": "Rotate keys", "subscriber_message": "We made a mistake.",
            "compensation_kind": "none", "fu-TOTAL_FORMS": "0", "fu-INITIAL_FORMS": "0",
            "fu-MIN_NUM_FORMS": "0", "fu-MAX_NUM_FORMS": "1000"}


def BRAND_EDITORS(code) -> dict:  # noqa: N802 (reads like the other rule builders)
    """The organisation's brand templates: marketing (the outsider is a marketer) and admins."""
    return {**everyone(403), "marketing": code, "outsider": code, "admin": code}


def brand_pk(world) -> int:
    from messaging.services import brand_template_ensure_demo

    return brand_template_ensure_demo().pk


RULES: dict[str, Rule] = {
    "home": Rule("GET", everyone(302, anonymous=302)),
    "accounts:login": Rule("GET", {**everyone(302), "anonymous": 200}),
    "accounts:logout": Rule("POST", everyone(302, anonymous=302)),
    # Anyone may choose a language (the sign-in page has the switcher too).
    "accounts:language": Rule("POST", everyone(302, anonymous=302), data={"language": "nl"}),
    "incidents:incident-list": Rule("GET", everyone(200)),
    # Issue 11: the crisis summary; every role sees the rows it may see (the outsider's
    # table simply lacks the restricted incident).
    "incidents:summary": Rule("GET", everyone(200)),
    "incidents:summary-poll": Rule("GET", everyone(200)),
    "incidents:summary-follow-ups": Rule("GET", everyone(200)),
    "incidents:summary-export": Rule("GET", everyone(200)),
    "incidents:incident-declare": Rule("GET", {
        **everyone(200), "legal": 403, "deliverability": 403, "manager": 403}),
    "incidents:incident-detail": Rule("GET", readers()),
    "incidents:incident-edit": Rule("GET", writers(200)),
    "incidents:incident-close": Rule("GET", writers(200)),
    "incidents:incident-reopen": Rule("GET", writers(200)),
    "incidents:step-status": Rule("POST", writers(), {"status": "in_progress"}),
    "incidents:step-owner": Rule("POST", writers(), {"owner": ""}),
    "incidents:checklist-add": Rule("POST", writers(), {"text": "Check the log"}),
    "incidents:checklist-tick": Rule("POST", writers(), {"done": "on"}),
    "incidents:checklist-edit": Rule("POST", writers(), {"text": "Reworded"}),
    "incidents:checklist-move": Rule("POST", writers(), {"offset": "1"}),
    "incidents:timeline": Rule("GET", readers()),
    "incidents:note-add": Rule("POST", writers(), {"message": "A note"}),
    "incidents:event-correct": Rule("POST", writers(), {"message": "The right account"}),
    "incidents:stakeholder-add": Rule("POST", writers(), lambda w: {
        "user": w["users"]["outsider"].pk, "role": "marketing"}),
    "incidents:stakeholder-remove": Rule("POST", writers()),
    # Issue 5: plan, sign-off, breach clock.
    "incidents:signoff-inbox": Rule("GET", everyone(200)),
    "incidents:plan-detail": Rule("GET", readers()),
    "incidents:plan-edit": Rule("GET", writers(200)),
    "incidents:plan-diff": Rule("GET", readers()),
    "incidents:plan-sign": Rule("POST", {
        **writers(), "marketing": 403, "deliverability": 403, "admin": 403},
        {"decision": "approved"}, kwargs={"number": lambda w: w["latest"].number}),
    # Issue 9: the signer's page; withdrawing a decision; dropping a lowered requirement
    # (the matrix's breach still needs legal, so legal is turned back with the reason).
    "incidents:signoff-review": Rule("GET", readers()),
    "incidents:signoff-withdraw": Rule("POST", {
        **writers(), "marketing": 403, "deliverability": 403, "admin": 403}),
    "incidents:requirement-drop": Rule("POST", {
        **writers(), "marketing": 403, "deliverability": 403, "admin": 403, "security": 403},
        {"role": "legal", "reason": "No personal data after all"}),
    "incidents:signer-request": Rule("POST", {
        **writers(), "legal": 403, "security": 403, "deliverability": 403},
        {"roles": ["legal"]}),
    "incidents:breach-aware": Rule("POST", writers(), {
        "aware_at": "2026-01-05T10:00", "jurisdictions": ["eu", "au"]}),
    "incidents:duty-notified": Rule("POST", writers(), {
        "notified_at": "2026-01-06T10:00", "reference": "DPA-1"}),
    "incidents:duty-not-needed": Rule("POST", writers(), lambda w: {
        "approver": w["users"]["legal"].pk, "reason": "Encrypted data"}),
    # Issue 3: audiences, imports, affected audience and assessment.
    "incidents:audience-compute": Rule("POST", writers(), {}),
    "incidents:audience-lookup": Rule("GET", readers(), {"email": "someone@example.com"}),
    # Issue 13: the background computation's progress (no htmx: back to the war room) and
    # its cancel (nothing running: back to the war room with the message).
    "incidents:audience-progress": Rule("GET", readers(302)),
    "incidents:audience-cancel": Rule("POST", writers(), {}),
    "incidents:assessment-update": Rule("POST", writers(), {
        "legal_involved": "yes", "law_enforcement_involved": "no", "currency": "EUR"}),
    "audiences:import-upload": Rule("GET", {
        **everyone(403), "marketing": 200, "deliverability": 200, "admin": 200,
        "outsider": 200}),
    # A report that does not exist: importers get 404, everyone else 403 before any lookup.
    "audiences:import-report": Rule("GET", {
        **everyone(403), "marketing": 404, "deliverability": 404, "admin": 404,
        "outsider": 404}, kwargs={"name": lambda w: "no-such-report.csv"}),
    # Issue 12: an import that does not exist (owners are tested in test_import_views).
    "audiences:import-detail": Rule("GET", {
        **everyone(403), "marketing": 404, "deliverability": 404, "admin": 404,
        "outsider": 404}, kwargs={"pk": lambda w: 999_999}),
    "audiences:import-confirm": Rule("POST", {
        **everyone(403), "marketing": 404, "deliverability": 404, "admin": 404,
        "outsider": 404}, kwargs={"pk": lambda w: 999_999}),
    # Issue 4 (content): the apology composer and the brand templates.
    "incidents:apology-compose": Rule("GET", readers()),
    "incidents:apology-check": Rule("POST", writers(200), {"subject": "We made a mistake"}),
    "incidents:apology-preview": Rule("GET", readers()),
    "messaging:brand-list": Rule("GET", BRAND_EDITORS(200)),
    "messaging:brand-create": Rule("GET", BRAND_EDITORS(200)),
    "messaging:brand-edit": Rule("GET", BRAND_EDITORS(200), kwargs={"pk": brand_pk}),
    "messaging:brand-preview": Rule("GET", BRAND_EDITORS(200), kwargs={"pk": brand_pk}),
    "messaging:brand-set-default": Rule("POST", BRAND_EDITORS(302), kwargs={"pk": brand_pk}),
    # Issue 12: the public unsubscribe page. No login; a link whose MAC fails is 404 for
    # everyone (tests/messaging/test_unsubscribe.py covers the valid link).
    "unsubscribe": Rule("GET", everyone(404, anonymous=404),
                        kwargs={"token": lambda w: "1-000000000000000000000000"}),
    # Issue 4 (step 2): pause the incident's campaigns and watch the ESPs answer.
    "incidents:containment": Rule("GET", readers()),
    "incidents:campaigns-stop": Rule("POST", writers()),
    # Issue 12: resume or cancel one campaign (the matrix's incident has none: writers are
    # sent back to the war room with the reason).
    "incidents:campaign-resume": Rule("POST", writers(), kwargs={"campaign_pk": lambda w: 1}),
    "incidents:campaign-cancel": Rule("POST", writers(), kwargs={"campaign_pk": lambda w: 1}),
    "incidents:campaigns-link": Rule("POST", writers()),
    # Issue 10: one step open by address; the live poll (htmx only; else back to the page).
    "incidents:step-detail": Rule("GET", readers()),
    "incidents:incident-live": Rule("GET", readers(302)),
    # Issue 4 (send): start, progress, pause, resume, cancel, reconcile, decide. The matrix's breach
    # is not signed off: writers are turned back to the war room with the reasons (302).
    "incidents:apology-send": Rule("POST", writers(), {"confirm": "on",
                                                       "expected_count": "1"}),
    "incidents:apology-send-progress": Rule("GET", readers(302)),
    "incidents:apology-send-pause": Rule("POST", writers()),
    "incidents:apology-send-resume": Rule("POST", writers()),
    "incidents:apology-send-cancel": Rule("POST", writers(), {"confirm": "on"}),
    "incidents:apology-send-reconcile": Rule("POST", writers()),
    "incidents:apology-send-decide": Rule("POST", writers(), {"decision": "drop"},
                                          kwargs={"delivery_id": lambda w: 1}),
    # Issue 11: the post-mortem, its follow-ups and lessons, and the PDF. Reading and
    # exporting is for everyone who may see the incident; writing for those who work it.
    "incidents:postmortem": Rule("GET", readers()),
    "incidents:postmortem-save": Rule("POST", writers(), {
        "what_happened": "Sent to all", "cause_category": "human", "affected_count": "0",
        "excluded_count": "0", "suppressed_count": "0", "currency": "EUR"}),
    "incidents:postmortem-finish": Rule("POST", writers()),
    "incidents:follow-up-add": Rule("POST", writers(), lambda w: {
        "action": "Lock the picker", "owner": w["users"]["legal"].pk, "due_on": "2026-12-01"}),
    "incidents:follow-up-done": Rule("POST", writers(), {"done": "on"},
                                     kwargs={"follow_up_id": lambda w: follow_up_pk(w)}),
    "incidents:lesson-adopt": Rule("POST", writers(), {"text": "Check twice",
                                                       "step_number": "2"}),
    # The matrix's incident is small: the PDF comes back in the answer.
    "incidents:postmortem-export": Rule("POST", readers(200)),
    "incidents:postmortem-export-status": Rule("GET", readers(),
                                               kwargs={"export_id": lambda w: export_pk(w)}),
    "incidents:postmortem-export-download": Rule("GET", readers(),
                                                 kwargs={"export_id": lambda w: export_pk(w)}),
}


def follow_up_pk(world) -> int:
    from incidents.learn.services import follow_up_add

    return follow_up_add(incident=world["incident"], actor=world["users"]["marketing"],
                         action="Audit", owner=world["users"]["legal"],
                         due_on=date(2026, 12, 1)).pk


def export_pk(world) -> int:
    """A finished export with a (tiny) file."""
    from django.core.files.base import ContentFile

    from incidents.learn.models import ExportStatus, PostMortemExport

    export = PostMortemExport(incident=world["incident"], requested_by=world["users"]["admin"],
                              status=ExportStatus.DONE, progress=100)
    export.file.save("matrix.pdf", ContentFile(b"%PDF-1.7 matrix"), save=False)
    export.save()
    return export.pk

# ESP webhooks authenticate the ESP, not a person: a signed-in session grants nothing, and
# a request without the webhook's credentials is refused before anything is stored.
# Our wrapper answers 401 when the basic-auth credentials are missing; anymail itself answers
# 403 first where the ESP signs its posts, and for inbound mail, which Amends does not take.
REFUSED_BY_ANYMAIL = {
    "anymail:brevo_inbound_webhook", "anymail:mailersend_inbound_webhook",
    "anymail:mailersend_tracking_webhook", "anymail:mailgun_inbound_webhook",
    "anymail:mailgun_tracking_webhook", "anymail:mandrill_tracking_webhook",
    "anymail:mandrill_webhook", "anymail:postal_inbound_webhook",
    "anymail:postal_tracking_webhook", "anymail:sendinblue_inbound_webhook",
    "anymail:unisender_go_tracking_webhook",
}
RULES.update({
    name: Rule("POST", everyone(403 if name in REFUSED_BY_ANYMAIL else 401,
                                anonymous=403 if name in REFUSED_BY_ANYMAIL else 401))
    for name, route, _p in walk() if route.startswith("webhooks/")})

# Extra POST-body for write views checked with the plan edit form.
RULES_POST_EXTRA = {"incidents:plan-edit": Rule("POST", writers(), plan_data)}


# --- The world every request meets ------------------------------------------------------------

@pytest.fixture
def world(db, settings, tmp_path):
    # Seven users per test: a fast hasher keeps the matrix quick (login uses force_login).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path  # PDF exports
    users = {
        "marketing": make_user("maya", Role.MARKETING, "Maya"),
        "legal": make_user("leo", Role.LEGAL, "Leo"),
        "security": make_user("sam", Role.SECURITY, "Sam"),
        "deliverability": make_user("dana", Role.DELIVERABILITY, "Dana"),
        "manager": make_user("max", Role.MANAGER, "Max"),
        "admin": make_user("ada", Role.ADMIN, "Ada"),
        "outsider": make_user("otto", Role.MARKETING, "Otto"),
    }
    lead = users["marketing"]
    incident = declare(lead, title="Customer table exposed", kind=Kind.DATA_BREACH,
                       severity=Severity.SEV1)
    assert incident.restricted
    for role in ("legal", "security", "deliverability"):
        stakeholder_add(incident=incident, actor=lead, user=users[role], role=role)
    plan_version_create(incident=incident, actor=lead, internal_steps="Rotate keys",
                        follow_ups=[FollowUp("Audit", users["legal"], date(2026, 12, 1))])
    latest = plan_version_create(incident=incident, actor=lead,
                                 internal_steps="Rotate all keys")
    from django.utils import timezone
    breach_awareness_record(incident=incident, actor=users["security"],
                            aware_at=timezone.now(), jurisdictions=["eu"])
    step4 = incident.steps.get(number=4)
    item = step4.items.order_by("position").first()
    event = timeline_note_add(incident=incident, actor=lead, message="Started")
    stake = incident.stakeholders.get(user=users["deliverability"])
    duty = incident.duties.get(code="authority")
    return {"users": users, "incident": incident, "latest": latest,
            "kwargs": {"pk": incident.pk, "number": 4, "item_id": item.pk,
                       "event_id": event.pk, "stakeholder_id": stake.pk, "duty_id": duty.pk}}


def url_for(name: str, rule: Rule, world) -> str:
    pattern = dict((n, p) for n, _r, p in walk())[name]
    kwargs = {}
    for key in pattern.pattern.converters:
        if key in rule.kwargs:
            kwargs[key] = rule.kwargs[key](world)
        else:
            kwargs[key] = world["kwargs"][key]
    return reverse(name, kwargs=kwargs)


def answer(response) -> int | str:
    if response.status_code == 302 and response["Location"].startswith(reverse(
            "accounts:login")) and "next=" in response["Location"]:
        return LOGIN
    return response.status_code


def run(world, name: str, rule: Rule, role: str, method: str | None = None):
    client = Client()
    if role != "anonymous":
        client.force_login(world["users"][role])
    url = url_for(name, rule, world)
    data = rule.data(world) if callable(rule.data) else (rule.data or {})
    with transaction.atomic():
        if (method or rule.method) == "GET":
            response = client.get(url)
        else:
            response = client.post(url, data)
        transaction.set_rollback(True)
    return answer(response)


def mismatches(world, name: str, rule: Rule) -> list[str]:
    wrong = []
    for role in ROLES:
        got = run(world, name, rule, role)
        want = rule.expect[role]
        if got != want:
            wrong.append(f"{name} {rule.method} as {role}: expected {want}, got {got}")
    return wrong


def missing_rules(rules: dict) -> list[str]:
    return [name for name in url_names() if name not in rules]


# --- The tests --------------------------------------------------------------------------------

def test_every_url_has_a_rule():
    missing = missing_rules(RULES)
    assert not missing, (
        "These URLs have no rule in tests/test_permission_matrix.py: add the answer each "
        f"role must get: {missing}")
    stale = sorted(set(RULES) - set(url_names()))
    assert not stale, f"Rules for URLs that no longer exist: {stale}"
    for name, rule in RULES.items():
        assert set(rule.expect) == set(ROLES), f"{name}: give an answer for every role"


def test_the_coverage_check_catches_a_view_without_a_rule():
    fewer = {k: v for k, v in RULES.items() if k != "incidents:plan-sign"}
    assert missing_rules(fewer) == ["incidents:plan-sign"]


@pytest.mark.parametrize("name", url_names())
def test_matrix(world, name):
    rule = RULES.get(name)
    if rule is None:
        pytest.fail(f"No permission rule for URL {name!r}: add one to RULES.")
    wrong = mismatches(world, name, rule)
    extra = RULES_POST_EXTRA.get(name)
    if extra is not None:
        wrong += mismatches(world, name, extra)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", sorted(
    n for n, r in RULES.items()
    if r.method == "POST" and {200, 302} & set(r.expect.values())))  # webhooks: no role posts
def test_post_only_views_refuse_get_with_405(world, name):
    rule = RULES[name]
    allowed = next(r for r in ROLES if rule.expect[r] in (200, 302) and r != "anonymous")
    assert run(world, name, rule, allowed, method="GET") == 405
