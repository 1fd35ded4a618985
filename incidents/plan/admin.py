"""Back-office views of plans, sign-offs and regulatory duties: read-only (they are
records), and restricted incidents stay restricted here too."""

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from incidents.permissions import incidents_visible_to
from incidents.plan.models import PlanVersion, RegulatoryDuty, SignerRequirement, SignOff


class _ReadOnlyScoped(ReadOnlyAdmin):
    def get_queryset(self, request):
        return super().get_queryset(request).filter(
            incident__in=incidents_visible_to(request.user))


@admin.register(PlanVersion)
class PlanVersionAdmin(_ReadOnlyScoped):
    list_display = ["incident", "number", "author", "created_at"]


@admin.register(SignOff)
class SignOffAdmin(_ReadOnlyScoped):
    list_display = ["incident", "version", "role", "decision", "signer", "signed_at",
                    "voided_at", "package_digest"]
    list_filter = ["role", "decision"]


@admin.register(RegulatoryDuty)
class RegulatoryDutyAdmin(_ReadOnlyScoped):
    list_display = ["incident", "jurisdiction", "legal_basis", "deadline_at", "status",
                    "was_late"]
    list_filter = ["status", "was_late", "jurisdiction"]


@admin.register(SignerRequirement)
class SignerRequirementAdmin(_ReadOnlyScoped):
    list_display = ["incident", "role", "why", "since", "drop_requested_at", "released_at",
                    "released_by"]
    list_filter = ["role", "why"]
