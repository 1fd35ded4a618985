from django.conf import settings
from django.db.models import QuerySet
from django.utils import translation

from audiences.models import Subscriber

from .models import BrandTemplate


def brand_template_list() -> QuerySet[BrandTemplate]:
    return BrandTemplate.objects.all()


def brand_template_default() -> BrandTemplate | None:
    return BrandTemplate.objects.filter(is_default=True).first()


def default_brand_name() -> str:
    template = brand_template_default()
    return template.brand_name if template else ""


def unsubscribe_subscriber(*, subscriber_id: int | None) -> Subscriber | None:
    """The person an unsubscribe link names (its MAC already checked), if they exist."""
    if subscriber_id is None:
        return None
    return Subscriber.objects.filter(pk=subscriber_id).first()


def subscriber_language(subscriber: Subscriber) -> str:
    """The site language closest to the subscriber's locale ("pl-PL" → "pl"), else ours."""
    try:
        return translation.get_supported_language_variant(
            (subscriber.locale or "").replace("_", "-").lower())
    except LookupError:
        return settings.LANGUAGE_CODE


def masked_address(email: str) -> str:
    """Enough of the address to recognise it, not enough to harvest it: "a•••@example.com"."""
    local, _sep, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else "•••"
