from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from incidents.containment.forms import faulty_campaigns_field
from incidents.models import (
    SEVERITY_DEFINITIONS,
    Incident,
    Kind,
    Severity,
    StakeholderRole,
    Status,
    StepStatus,
)
from incidents.selectors import assignable_users


class UserChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.get_full_name() or obj.get_username()


class SeverityField(forms.TypedChoiceField):
    def __init__(self, **kwargs):
        choices = [(s.value, f"{s.label} — {SEVERITY_DEFINITIONS[s]}") for s in Severity]
        super().__init__(choices=choices, coerce=int, **kwargs)


class DeclareForm(forms.Form):
    title = forms.CharField(label=_("What went wrong, in a line"), max_length=200,
                            widget=forms.TextInput(attrs={"autofocus": True}))
    kind = forms.ChoiceField(label=_("Kind"), choices=Kind.choices)
    severity = SeverityField(label=_("Severity"), initial=Severity.SEV2,
                             widget=forms.RadioSelect)
    detected_at = forms.DateTimeField(
        label=_("Detected at"), required=False,
        help_text=_("Leave empty for now."),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    summary = forms.CharField(label=_("What we know so far"), required=False,
                              widget=forms.Textarea(attrs={"rows": 4}))
    pii_exposed = forms.BooleanField(label=_("Personal data was exposed"), required=False)
    lead = UserChoiceField(label=_("Lead"), queryset=assignable_users(), required=False,
                           empty_label=_("Me"))
    campaigns = faulty_campaigns_field(required=False)

    def clean_detected_at(self):
        value = self.cleaned_data["detected_at"] or timezone.now()
        if value > timezone.now() + timedelta(minutes=1):
            raise forms.ValidationError(_("Detection time cannot be in the future."))
        if value > timezone.now():
            value = timezone.now()
        return value


class IncidentEditForm(forms.ModelForm):
    severity = SeverityField(label=_("Severity"))
    lead = UserChoiceField(label=_("Lead"), queryset=assignable_users())
    change_reason = forms.CharField(
        label=_("Why this change?"), required=False, max_length=500,
        help_text=_("Lowering the kind, severity or personal data does not drop a sign-off: "
                    "the signer who would be dropped must approve it. Tell them why."))

    class Meta:
        model = Incident
        fields = ["title", "kind", "severity", "cause", "pii_exposed", "lead", "summary"]
        widgets = {"summary": forms.Textarea(attrs={"rows": 4})}


class StepStatusForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=StepStatus.choices)
    skip_reason = forms.CharField(label=_("Why skip it?"), required=False, max_length=1000)
    note = forms.CharField(label=_("Why is it done with items open?"), required=False,
                           max_length=1000)

    def clean(self):
        data = super().clean()
        if data.get("status") == StepStatus.SKIPPED and not data.get("skip_reason", "").strip():
            self.add_error("skip_reason", _("Say why this step is skipped."))
        return data


class StepOwnerForm(forms.Form):
    owner = UserChoiceField(label=_("Owner"), queryset=assignable_users(), required=False,
                            empty_label=_("Nobody yet"))


class ChecklistItemForm(forms.Form):
    text = forms.CharField(label=_("Item"), max_length=300)


class ChecklistTickForm(forms.Form):
    done = forms.BooleanField(required=False)


class ChecklistMoveForm(forms.Form):
    offset = forms.TypedChoiceField(choices=[(-1, _("Up")), (1, _("Down"))], coerce=int)


class NoteForm(forms.Form):
    message = forms.CharField(label=_("Note"), max_length=4000,
                              widget=forms.Textarea(attrs={"rows": 2}))


class StakeholderForm(forms.Form):
    user = UserChoiceField(label=_("Person"), queryset=assignable_users(),
                           empty_label=_("Choose someone"))
    role = forms.ChoiceField(label=_("Role"), choices=StakeholderRole.choices)


class ReopenForm(forms.Form):
    reason = forms.CharField(label=_("Why reopen?"), max_length=1000)


class IncidentFilterForm(forms.Form):
    STATUS_CHOICES = [("", _("Any status")), ("open", _("Open")), *Status.choices]
    status = forms.ChoiceField(label=_("Status"), choices=STATUS_CHOICES, required=False)
    severity = forms.TypedChoiceField(
        label=_("Severity"), required=False, coerce=int, empty_value=None,
        choices=[("", _("Any severity"))] + list(Severity.choices))
    kind = forms.ChoiceField(label=_("Kind"), required=False,
                             choices=[("", _("Any kind"))] + list(Kind.choices))
    q = forms.CharField(label=_("Search"), required=False, max_length=100)

