from django.contrib import admin

from core.admin import ReadOnlyAdmin
from incidents.models import ChecklistItem, Incident, ResponseStep, Stakeholder, TimelineEvent
from incidents.permissions import incidents_visible_to

# Incidents are worked in the war room, where every change goes through a service that
# records its timeline event. The back office only reads: an admin form would change an
# incident (say, turn "restricted" off on a breach) with no event and no sign-off check.

class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ResponseStepInline(_ReadOnlyInline):
    model = ResponseStep
    fields = ["number", "title", "owner", "status", "target_minutes", "started_at", "done_at"]


class StakeholderInline(_ReadOnlyInline):
    model = Stakeholder
    fields = ["user", "role", "added_at"]


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = ["id", "title", "kind", "severity", "status", "lead", "declared_at"]
    list_filter = ["status", "severity", "kind", "restricted"]
    search_fields = ["title", "summary"]
    inlines = [ResponseStepInline, StakeholderInline]

    def get_queryset(self, request):
        # Restricted incidents stay restricted in the back office too.
        return incidents_visible_to(request.user)


@admin.register(ChecklistItem)
class ChecklistItemAdmin(ReadOnlyAdmin):
    list_display = ["text", "step", "done", "done_by", "done_at"]
    list_filter = ["done"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(
            step__incident__in=incidents_visible_to(request.user))


@admin.register(TimelineEvent)
class TimelineEventAdmin(ReadOnlyAdmin):
    """Append-only: notes and corrections are written in the war room."""

    list_display = ["created_at", "incident", "kind", "actor", "message"]
    list_filter = ["kind"]
    search_fields = ["message"]


# --- Step 5: apology content (read-only here: edits go through apology_save) --------------
from incidents.apology.models import Apology  # noqa: E402
from incidents.learn import admin as learn_admin  # noqa: E402,F401  (exports, lessons)
from incidents.plan import admin as plan_admin  # noqa: E402,F401  (plan, sign-off, duties)


@admin.register(Apology)
class ApologyAdmin(ReadOnlyAdmin):
    list_display = ["incident", "subject", "from_email", "version", "updated_at", "updated_by"]
    search_fields = ["subject", "incident__title"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(
            incident__in=incidents_visible_to(request.user))
