from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"

    def ready(self) -> None:
        from audiences.imports import register_kind

        from .imports import RecipientLogImport

        register_kind(RecipientLogImport)
