from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self) -> None:
        from . import language  # noqa: F401  (connects the sign-in receiver)
        from .services import roles_sync_after_migrate

        post_migrate.connect(roles_sync_after_migrate, dispatch_uid="accounts-roles-sync")
