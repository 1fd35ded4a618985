from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records (evidence, audit trails) are looked at in the back office, never written:
    every write goes through a service that also records it."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
