from django.contrib import admin

from core.admin import ReadOnlyAdmin

from .models import AudienceImport, Segment, Subscriber, SuppressionEntry, SuppressionList


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = ["email", "name", "locale", "status", "updated_at"]
    list_filter = ["status", "locale"]
    search_fields = ["email", "name"]
    show_full_result_count = False  # counting a big list on every page is slow


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]


@admin.register(SuppressionList)
class SuppressionListAdmin(admin.ModelAdmin):
    list_display = ["name", "source", "created_at"]


@admin.register(SuppressionEntry)
class SuppressionEntryAdmin(admin.ModelAdmin):
    list_display = ["email", "suppression_list", "reason", "added_at"]
    list_filter = ["suppression_list"]
    search_fields = ["email"]
    show_full_result_count = False


@admin.register(AudienceImport)
class AudienceImportAdmin(ReadOnlyAdmin):
    list_display = ["pk", "kind", "original_name", "size", "dry_run", "status", "created_by",
                    "created_at", "finished_at"]
    list_filter = ["status", "kind", "dry_run"]
    list_select_related = ["created_by"]
