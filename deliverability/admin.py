from django.contrib import admin

from core.admin import ReadOnlyAdmin

from .models import DeliveryEvent, RawDeliveryBatch, SnsSubscriptionConfirmation


@admin.register(DeliveryEvent)
class DeliveryEventAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "kind", "recipient", "esp", "esp_account", "broadcast_id",
                    "campaign_key")
    list_filter = ("kind", "esp", "esp_account")
    search_fields = ("recipient", "message_id", "event_id")
    date_hierarchy = "occurred_at"
    show_full_result_count = False


@admin.register(RawDeliveryBatch)
class RawDeliveryBatchAdmin(ReadOnlyAdmin):
    list_display = ("id", "received_at", "esp", "event_count", "processed_at", "repairs")
    list_filter = ("esp",)


@admin.register(SnsSubscriptionConfirmation)
class SnsSubscriptionConfirmationAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "topic_arn", "outcome", "subscribe_url")
    list_filter = ("outcome",)
