from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin

from .models import BrandTemplate, Campaign, CampaignStop, EspAccount
from .services import brand_template_set_default


@admin.register(EspAccount)
class EspAccountAdmin(admin.ModelAdmin):
    list_display = ["label", "provider", "created_at"]


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
