"""The apology email of an incident (step 5): its content, one row per incident.

Delivery (the Broadcast and its ledger) lives in messaging; this is what is said.
Imported at the end of incidents/models.py so Django registers the model with the app.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Apology(models.Model):
    incident = models.OneToOneField("incidents.Incident", on_delete=models.CASCADE,
                                    related_name="apology", verbose_name=_("incident"))
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    from_name = models.CharField(_("sender name"), max_length=100, blank=True)
    from_email = models.EmailField(_("sender address"), blank=True)
    reply_to = models.EmailField(_("reply-to address"), blank=True)
    brand_template = models.ForeignKey(
        "messaging.BrandTemplate", on_delete=models.PROTECT, null=True, blank=True,
        related_name="+", verbose_name=_("brand template"))
    default_locale = models.CharField(_("default language"), max_length=8,
                                      default=settings.LANGUAGE_CODE)
    # {locale: body}. Recipients whose language has no body get the default locale's.
    bodies = models.JSONField(_("bodies"), default=dict, blank=True)
    coupon_code = models.CharField(_("coupon code"), max_length=64, blank=True)
    compensation_text = models.CharField(
        _("compensation"), max_length=300, blank=True,
        help_text=_("What the coupon is worth, in words, e.g. “20% off your next order”."))
    protective_steps = models.TextField(_("steps to protect yourself"), blank=True)
    # Bumped by every content change; a Broadcast records the version it sent.
    version = models.PositiveIntegerField(_("version"), default=1)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   null=True, blank=True, related_name="+",
                                   verbose_name=_("updated by"))

    class Meta:
        verbose_name = _("apology")
        verbose_name_plural = _("apologies")
        constraints = [
            models.CheckConstraint(condition=Q(version__gte=1), name="apology_version_from_1"),
            # A coupon without words, or words without a coupon, reads as a broken promise.
            models.CheckConstraint(
                condition=Q(coupon_code="") | ~Q(compensation_text=""),
                name="apology_coupon_has_value"),
        ]

    def __str__(self) -> str:
        return self.subject or f"Apology for incident #{self.incident_id}"

    def body_for(self, locale: str) -> str:
        return self.bodies.get(locale) or self.bodies.get(self.default_locale, "")
