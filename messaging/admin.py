from django.contrib import admin

from .models import Campaign, EspAccount


@admin.register(EspAccount)
class EspAccountAdmin(admin.ModelAdmin):
    list_display = ["label", "provider", "created_at"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "esp_account", "esp_campaign_id", "status", "started_at"]
    list_filter = ["status", "esp_account"]
    search_fields = ["name", "esp_campaign_id", "subject"]
    filter_horizontal = ["segments"]
