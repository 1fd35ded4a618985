from django import forms
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from incidents.apology.lint import ERROR, Finding, body_field
from incidents.apology.models import Apology
from incidents.models import Incident
from messaging.models import BrandTemplate

TEXT_FIELDS = ("subject", "from_name", "from_email", "reply_to", "coupon_code",
               "compensation_text", "protective_steps")


class BrandTemplateChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: BrandTemplate) -> str:
        return str(_("%(name)s (default)") % {"name": obj.name}) if obj.is_default \
            else obj.name


class ApologyForm(forms.Form):
    """The composer. One body field per language in settings.LANGUAGES (body_<code>)."""

    from_name = forms.CharField(label=_("Sender name"), max_length=100, required=False)
    from_email = forms.EmailField(label=_("Sender address"), required=False,
                                  help_text=_("A mailbox someone reads: people will reply."))
    reply_to = forms.EmailField(label=_("Reply-to address"), required=False,
                                help_text=_("Leave empty to receive replies at the sender "
                                            "address."))
    subject = forms.CharField(label=_("Subject"), max_length=200, required=False,
                              help_text=_("Plain and clear: “We made a mistake”, “Notice of "
                                          "data breach”, “Correction”."))
    brand_template = BrandTemplateChoiceField(
        label=_("Brand template"), queryset=BrandTemplate.objects.all(), required=False,
        empty_label=_("None (plain look)"))
    default_locale = forms.ChoiceField(
        label=_("Default language"), choices=settings.LANGUAGES,
        help_text=_("Sent to everyone whose language has no body of its own."))
    coupon_code = forms.CharField(label=_("Coupon code"), max_length=64, required=False,
                                  help_text=_("Optional. Use {{ coupon_code }} in a body, or "
                                              "let the email add it below the text."))
    compensation_text = forms.CharField(
        label=_("What the coupon is worth"), max_length=300, required=False,
        help_text=_("In words, e.g. “20% off your next order”."))
    protective_steps = forms.CharField(
        label=_("Steps to protect yourself"), required=False,
        widget=forms.Textarea(attrs={"rows": 6, "dir": "auto"}),
        help_text=_("Required when personal data was exposed. Added below every body."))
    version = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=0)
    preview_locale = forms.ChoiceField(label=_("Preview language"), choices=settings.LANGUAGES,
                                       required=False)

    def __init__(self, *args, incident: Incident, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.incident = incident
        for code, name in settings.LANGUAGES:
            self.fields[body_field(code)] = forms.CharField(
                label=_("Body in %(language)s") % {"language": name}, required=False,
                max_length=20000,
                # Typed in its own language's direction, whatever the page's is.
                widget=forms.Textarea(attrs={"rows": 10, "lang": code, "dir": (
                    "rtl" if translation.get_language_info(code)["bidi"] else "ltr")}))

    @staticmethod
    def initial_for(apology: Apology) -> dict:
        initial = {name: getattr(apology, name) for name in TEXT_FIELDS}
        initial.update({"brand_template": apology.brand_template_id,
                        "default_locale": apology.default_locale,
                        "version": apology.version,
                        "preview_locale": apology.default_locale})
        for code, body in (apology.bodies or {}).items():
            initial[body_field(code)] = body
        return initial

    def body_fields(self) -> list[tuple[str, str, forms.BoundField]]:
        return [(code, name, self[body_field(code)]) for code, name in settings.LANGUAGES]

    def content(self) -> dict:
        """Keyword arguments for apology_save, from valid data."""
        data = self.cleaned_data
        return {
            **{name: data[name] for name in TEXT_FIELDS},
            "brand_template": data["brand_template"], "default_locale": data["default_locale"],
            "bodies": {code: data[body_field(code)] for code, _name in settings.LANGUAGES
                       if data.get(body_field(code), "").strip()},
            "expected_version": data["version"],
        }

    def draft(self) -> Apology:
        """An unsaved Apology from whatever was typed, valid or not, for the linter and
        the preview: a malformed address is still checked for "no-reply"."""
        raw = self.data
        valid = self.cleaned_data if hasattr(self, "cleaned_data") else {}

        def text(name: str) -> str:
            value = valid.get(name) if name in valid else raw.get(name, "")
            return (value or "").strip() if isinstance(value, str) else ""

        brand = valid.get("brand_template") if "brand_template" in valid else None
        locale = valid.get("default_locale") or settings.LANGUAGE_CODE
        return Apology(
            incident=self.incident, **{name: text(name) for name in TEXT_FIELDS},
            brand_template=brand, default_locale=locale,
            bodies={code: text(body_field(code)) for code, _name in settings.LANGUAGES
                    if text(body_field(code))},
        )

    def error_findings(self) -> list[Finding]:
        """Form errors in the linter's shape, so the checks list shows them too."""
        findings = []
        for name, errors in self.errors.items():
            label = self.fields[name].label if name in self.fields else ""
            for message in errors:
                findings.append(Finding(ERROR, "invalid",
                                        f"{label}: {message}" if label else str(message),
                                        field=name if name in self.fields else ""))
        return findings

    def preview_locale_value(self) -> str:
        valid = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        return valid.get("preview_locale") or valid.get("default_locale") \
            or settings.LANGUAGE_CODE
