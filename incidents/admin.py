from django.contrib import admin

from core.admin import ReadOnlyAdmin
from incidents.models import ChecklistItem, Incident, ResponseStep, Stakeholder, TimelineEvent
from incidents.permissions import incidents_visible_to


class ResponseStepInline(admin.TabularInline):
    model = ResponseStep
    extra = 0
    fields = ["number", "title", "owner", "status", "target_minutes", "started_at", "done_at"]
    readonly_fields = ["number", "title"]
    can_delete = False


class StakeholderInline(admin.TabularInline):
    model = Stakeholder
    extra = 0


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "kind", "severity", "status", "lead", "declared_at"]
    list_filter = ["status", "severity", "kind", "restricted"]
    search_fields = ["title", "summary"]
    readonly_fields = ["status", "declared_at", "declared_by"]
    inlines = [ResponseStepInline, StakeholderInline]

    def get_queryset(self, request):
        # Restricted incidents stay restricted in the back office too.
        return incidents_visible_to(request.user)


@admin.register(ChecklistItem)
class ChecklistItemAdmin(admin.ModelAdmin):
    list_display = ["text", "step", "done", "done_by", "done_at"]
    list_filter = ["done"]


@admin.register(TimelineEvent)
class TimelineEventAdmin(ReadOnlyAdmin):
    """Append-only: notes and corrections are written in the war room."""

    list_display = ["created_at", "incident", "kind", "actor", "message"]
    list_filter = ["kind"]
    search_fields = ["message"]


# --- Step 5: apology content (read-only here: edits go through apology_save) --------------
from incidents.apology.models import Apology  # noqa: E402
from incidents.plan import admin as plan_admin  # noqa: E402,F401  (plan, sign-off, duties)


@admin.register(Apology)
class ApologyAdmin(ReadOnlyAdmin):
    list_display = ["incident", "subject", "from_email", "version", "updated_at", "updated_by"]
    search_fields = ["subject", "incident__title"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(
            incident__in=incidents_visible_to(request.user))
