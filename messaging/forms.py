from django import forms
from django.utils.translation import gettext_lazy as _

from .models import BrandTemplate
from .services import BRAND_FIELDS


class BrandTemplateForm(forms.ModelForm):
    class Meta:
        model = BrandTemplate
        fields = list(BRAND_FIELDS)
        widgets = {
            "primary_color": forms.TextInput(attrs={"type": "color"}),
            "text_color": forms.TextInput(attrs={"type": "color"}),
            "footer_text": forms.Textarea(attrs={"rows": 3}),
            "postal_address": forms.Textarea(attrs={"rows": 2}),
        }
        help_texts = {"name": _("For you: e.g. “House style 2026”.")}
