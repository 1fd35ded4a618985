"""Back-office views of the learn step: post-mortem exports are records (read-only, scoped
to what the user may see); playbook lessons can be retired (past incidents keep theirs)."""

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from incidents.learn.models import PlaybookLesson, PostMortemExport
from incidents.permissions import incidents_visible_to


@admin.register(PostMortemExport)
class PostMortemExportAdmin(ReadOnlyAdmin):
    list_display = ["incident", "requested_by", "requested_at", "status", "pages", "size"]
    list_filter = ["status"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(
            incident__in=incidents_visible_to(request.user))


@admin.register(PlaybookLesson)
class PlaybookLessonAdmin(admin.ModelAdmin):
    list_display = ["text", "kind", "step_number", "added_by", "added_at", "retired_at"]
    list_filter = ["kind", "step_number"]
    fields = ["kind", "step_number", "text", "retired_at"]
    readonly_fields = ["kind", "step_number", "text"]

    def has_add_permission(self, request) -> bool:
        return False  # lessons come from a post-mortem, with their incident on the timeline
