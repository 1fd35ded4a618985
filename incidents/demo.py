"""Demo data for the embedded run: one user per role and incidents at different stages."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.roles import Role
from accounts.services import user_create_with_role
from deliverability.demo import demo_delivery_events_seed
from incidents import services
from incidents.assessment.services import affected_audience_compute
from incidents.models import Incident, Kind, Severity, StakeholderRole, StepStatus
from messaging.demo import demo_audience_ensure
from messaging.services import brand_template_ensure_demo

DEMO_PASSWORD = "amends-demo"

DEMO_USERS = [
    ("maya", "Maya", "Marketing", Role.MARKETING),
    ("leo", "Leo", "Legal", Role.LEGAL),
    ("sam", "Sam", "Security", Role.SECURITY),
    ("dana", "Dana", "Deliverability", Role.DELIVERABILITY),
    ("max", "Max", "Manager", Role.MANAGER),
    ("admin", "Ada", "Admin", Role.ADMIN),
]


def demo_users_ensure() -> dict[str, object]:
    User = get_user_model()
    users = {}
    for username, first, last, role in DEMO_USERS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = user_create_with_role(username=username, password=DEMO_PASSWORD, role=role,
                                         first_name=first, last_name=last,
                                         email=f"{username}@demo.amends.test")
        users[role] = user
    return users


@transaction.atomic
def demo_seed() -> list[Incident]:
    """Idempotent: creates only what is missing."""
    users = demo_users_ensure()
    faulty_campaign = demo_audience_ensure()  # messaging.demo: subscribers and campaigns
    brand_template_ensure_demo()  # the brand's usual email look, for the apology composer
    maya, leo, sam, dana = (users[Role.MARKETING], users[Role.LEGAL], users[Role.SECURITY],
                            users[Role.DELIVERABILITY])
    now = timezone.now()
    created = []

    title = "Spring sale sent to the whole list instead of VIPs"
    if not Incident.objects.filter(title=title).exists():
        incident = services.incident_declare(
            actor=maya, title=title, kind=Kind.WRONG_SEGMENT, severity=Severity.SEV2,
            detected_at=now - timedelta(minutes=40),
            summary="The VIP early-access email went to all 24,000 subscribers at 09:12.")
        services.stakeholder_add(incident=incident, actor=maya, user=dana,
                                 role=StakeholderRole.DELIVERABILITY)
        for step in incident.steps.filter(number=1):  # step 2 (pause) is the demo's next move
            for item in step.items.all():
                services.checklist_item_set_done(item=item, actor=maya, done=True)
            services.step_set_status(step=step, actor=maya, status=StepStatus.DONE,
                                     note="Handled in the morning call")
        step3 = incident.steps.get(number=3)
        services.checklist_item_set_done(item=step3.items.first(), actor=maya, done=True)
        services.timeline_note_add(incident=incident, actor=maya,
                                   message="The ESP is still sending it: pause it in step 2.")
        # Step 6: a month of sandbox delivery events, then the faulty send's fallout.
        demo_delivery_events_seed(declared_at=incident.declared_at, now=timezone.now())
        created.append(incident)

    # Link the faulty campaign to the Spring sale incident (once; recomputable in the page).
    spring = Incident.objects.filter(
        title="Spring sale sent to the whole list instead of VIPs").first()
    if spring is not None and spring.is_open and not hasattr(spring, "affected_audience"):
        affected_audience_compute(incident=spring, actor=maya, campaigns=[faulty_campaign])

    title = "Customer export left on a public link"
    if not Incident.objects.filter(title=title).exists():
        incident = services.incident_declare(
            actor=sam, title=title, kind=Kind.DATA_BREACH, severity=Severity.SEV1,
            detected_at=now - timedelta(hours=3),
            summary="A CSV of subscriber names and emails was shared with a public link.")
        services.stakeholder_add(incident=incident, actor=sam, user=leo,
                                 role=StakeholderRole.LEGAL)
        services.stakeholder_add(incident=incident, actor=sam, user=maya,
                                 role=StakeholderRole.MARKETING)
        created.append(incident)

    title = "Coupon SPRING20 rejected at checkout"
    if not Incident.objects.filter(title=title).exists():
        incident = services.incident_declare(
            actor=maya, title=title, kind=Kind.WRONG_OFFER, severity=Severity.SEV3,
            detected_at=now - timedelta(days=2))
        for step in incident.steps.all():
            services.step_set_status(step=step, actor=maya, status=StepStatus.DONE,
                                     note="Handled in the morning call")
        services.incident_close(incident=incident, actor=maya)
        created.append(incident)
    return created
