from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin

from .esp.registry import Provider, send_limits
from .models import BrandTemplate, Campaign, CampaignStop, EspAccount
from .selectors import account_send_limits
from .services import brand_template_set_default


@admin.register(EspAccount)
class EspAccountAdmin(admin.ModelAdmin):
    """Sending limits are validated by EspAccount.clean against the ESP's batch API."""

    list_display = ["label", "provider", "sending_rate", "sending_batch", "created_at"]
    fields = ["label", "provider", "rate_per_second", "batch_size", "esp_limits"]
    readonly_fields = ["esp_limits"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "provider":
            return forms.ChoiceField(choices=Provider.choices, label=db_field.verbose_name,
                                     help_text=db_field.help_text)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def _limits(self, obj: EspAccount):
        return account_send_limits(obj)

    @admin.display(description=_("rate used"))
    def sending_rate(self, obj: EspAccount) -> str:
        limits = self._limits(obj)
        return f"{limits.rate_per_second}/s" if limits else "—"

    @admin.display(description=_("batch used"))
    def sending_batch(self, obj: EspAccount) -> str:
        limits = self._limits(obj)
        return str(limits.batch_size) if limits else "—"

    @admin.display(description=_("what the ESP takes"))
    def esp_limits(self, obj: EspAccount) -> str:
        limits = send_limits(obj.provider) if obj.provider else None
        if limits is None:
            return _("Amends does not send through this ESP.")
        outcome = _("per recipient") if limits.per_recipient_outcome else _(
            "per call only (per recipient from its tracking events)")
        return _("At most %(max)s messages a call; usual rate %(rate)s/s; outcome "
                 "reported %(outcome)s.") % {"max": limits.max_per_call,
                                             "rate": limits.default_rate, "outcome": outcome}


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "esp_account", "esp_campaign_id", "status", "started_at"]
    list_filter = ["status", "esp_account"]
    search_fields = ["name", "esp_campaign_id", "subject"]
    filter_horizontal = ["segments"]


@admin.register(BrandTemplate)
class BrandTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "brand_name", "primary_color", "is_default", "updated_at"]
    readonly_fields = ["is_default", "created_at", "updated_at"]
    search_fields = ["name", "brand_name"]
    actions = ["make_default"]

    @admin.action(description=_("Make the selected template the default"))
    def make_default(self, request, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, _("Choose exactly one template."), messages.ERROR)
            return
        brand_template_set_default(template=queryset.get())
        self.message_user(request, _("Default brand template changed."))


# --- Campaign stops (issue 4, step 2): a record of what the ESPs answered; read-only ------

@admin.register(CampaignStop)
class CampaignStopAdmin(ReadOnlyAdmin):
    list_display = ["campaign", "outcome", "action", "http_status",
                    "recipients_sent_before_stop", "attempts", "requested_at", "finished_at"]
    list_filter = ["outcome", "action"]
    search_fields = ["campaign__name", "detail"]
    list_select_related = ["campaign"]
