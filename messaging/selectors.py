from django.db.models import QuerySet

from .models import BrandTemplate


def brand_template_list() -> QuerySet[BrandTemplate]:
    return BrandTemplate.objects.all()


def brand_template_default() -> BrandTemplate | None:
    return BrandTemplate.objects.filter(is_default=True).first()
