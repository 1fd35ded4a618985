"""Writes for messaging content that the organisation sets up once."""

from typing import Any

from django.db import transaction

from .models import BrandTemplate

BRAND_FIELDS = ("name", "brand_name", "logo_url", "primary_color", "text_color",
                "footer_text", "unsubscribe_url", "postal_address")


@transaction.atomic
def brand_template_save(*, template: BrandTemplate | None = None,
                        **fields: Any) -> BrandTemplate:
    """Create (template=None) or change a brand template; validates every field first."""
    unknown = set(fields) - set(BRAND_FIELDS)
    if unknown:
        raise ValueError(f"not brand template fields: {', '.join(sorted(unknown))}")
    template = template or BrandTemplate()
    for name, value in fields.items():
        setattr(template, name, value.strip() if isinstance(value, str) else value)
    template.primary_color = template.primary_color.upper()
    template.text_color = template.text_color.upper()
    template.full_clean()
    if template.pk is None:
        first = not BrandTemplate.objects.exists()
        template.is_default = first
        template.save()
    else:
        template.save(update_fields=[*BRAND_FIELDS, "updated_at"])
    return template


@transaction.atomic
def brand_template_set_default(*, template: BrandTemplate) -> BrandTemplate:
    # Lock every row so two admins choosing different defaults cannot both win; the
    # partial unique constraint would reject the loser anyway, this avoids the 500.
    list(BrandTemplate.objects.select_for_update().order_by("pk"))
    BrandTemplate.objects.filter(is_default=True).exclude(pk=template.pk).update(
        is_default=False)
    BrandTemplate.objects.filter(pk=template.pk).update(is_default=True)
    template.is_default = True
    return template


@transaction.atomic
def brand_template_ensure_demo() -> BrandTemplate:
    """Idempotent: the demo's brand, made default when nothing else is."""
    template = BrandTemplate.objects.filter(name="Northwind house style").first()
    if template is None:
        template = brand_template_save(
            name="Northwind house style", brand_name="Northwind Goods",
            logo_url="", primary_color="#1F5FA8", text_color="#1F2933",
            footer_text="You receive this email because you have an account with "
                        "Northwind Goods. Questions? Just reply to this email.",
            postal_address="Northwind Goods B.V., Keizersgracht 1, 1015 AA Amsterdam, NL")
    if not BrandTemplate.objects.filter(is_default=True).exists():
        brand_template_set_default(template=template)
    return template
