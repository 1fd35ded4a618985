"""Forms of the step 3 panel: the audience scope, the lookup, the assessment answers."""

from django import forms
from django.utils.translation import gettext_lazy as _

from audiences.models import Segment
from incidents.models import Answer, PiiField
from messaging.models import Campaign


class AudienceScopeForm(forms.Form):
    campaigns = forms.ModelMultipleChoiceField(
        label=_("Faulty campaigns"), queryset=Campaign.objects.all(),
        error_messages={"required": _("Choose at least one faulty campaign.")})
    segments = forms.ModelMultipleChoiceField(
        label=_("Segments in scope"), queryset=Segment.objects.all(), required=False,
        help_text=_("None chosen: every segment the campaigns reached."))


class LookupForm(forms.Form):
    email = forms.EmailField(label=_("Email address"), max_length=254)


class AssessmentForm(forms.Form):
    pii_exposed = forms.BooleanField(label=_("Personal data was exposed"), required=False)
    pii_fields = forms.MultipleChoiceField(label=_("Which personal data"),
                                           choices=PiiField.choices, required=False)
    compensation_per_person = forms.DecimalField(
        label=_("Compensation per affected person"), required=False, min_value=0,
        max_digits=10, decimal_places=2)
    currency = forms.RegexField(label=_("Currency"), regex=r"^[A-Za-z]{3}$",
                                initial="EUR", error_messages={
                                    "invalid": _("Use a three-letter currency code.")})
    other_costs = forms.CharField(label=_("Other costs"), required=False, max_length=4000)
    legal_involved = forms.ChoiceField(label=_("Must legal be involved?"),
                                       choices=Answer.choices)
    law_enforcement_involved = forms.ChoiceField(
        label=_("Must law enforcement be involved?"), choices=Answer.choices)
    notes = forms.CharField(label=_("Why"), required=False, max_length=4000)

    def clean_currency(self) -> str:
        return self.cleaned_data["currency"].upper()

    def clean(self):
        data = super().clean()
        if data.get("pii_fields") and not data.get("pii_exposed"):
            self.add_error("pii_exposed", _(
                "Tick “personal data was exposed” when you name exposed fields."))
        return data
