from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class UserPreference(models.Model):
    """What a person chose for themselves; one row per person who chose anything."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="preference")
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES,
                                blank=True, help_text=_("Empty: the browser's language."))

    class Meta:
        verbose_name = _("user preference")
        verbose_name_plural = _("user preferences")

    def __str__(self) -> str:
        return f"{self.user} ({self.language or '-'})"
