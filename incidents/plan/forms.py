from django import forms
from django.utils.translation import gettext_lazy as _

from incidents.forms import UserChoiceField
from incidents.plan.jurisdictions import JURISDICTIONS
from incidents.plan.models import CompensationKind, Decision, PlanVersion, SignerRole
from incidents.plan.services import FollowUp
from incidents.selectors import assignable_users


class PlanForm(forms.ModelForm):
    class Meta:
        model = PlanVersion
        fields = ["internal_steps", "subscriber_message", "subscriber_action_required",
                  "subscriber_actions", "compensation_kind", "compensation_value",
                  "compensation_eligibility", "process_changes", "note"]
        widgets = {name: forms.Textarea(attrs={"rows": 3}) for name in (
            "internal_steps", "subscriber_message", "subscriber_actions",
            "compensation_eligibility", "process_changes")}
        help_texts = {
            "internal_steps": _("One step per line: who does what inside the company."),
            "subscriber_actions": _("E.g. reset your password, turn on two-factor "
                                    "authentication."),
            "compensation_value": _("E.g. 20 % off the next order, a coupon worth 10 €."),
            "note": _("Optional: a line for the signers about this edit."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["compensation_kind"].choices = CompensationKind.choices


class FollowUpForm(forms.Form):
    action = forms.CharField(label=_("Follow-up action"), max_length=300, required=False)
    owner = UserChoiceField(label=_("Owner"), queryset=assignable_users(), required=False)
    due = forms.DateField(label=_("Due"), required=False,
                          widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("action") or data.get("owner") or data.get("due"):
            if not (data.get("action") or "").strip():
                self.add_error("action", _("Say what must be done."))
            if not data.get("owner"):
                self.add_error("owner", _("Choose who owns this action."))
            if not data.get("due"):
                self.add_error("due", _("Give a due date."))
        return data

    def follow_up(self) -> FollowUp | None:
        data = self.cleaned_data
        if not data.get("action"):
            return None
        return FollowUp(action=data["action"], owner=data["owner"], due=data["due"])


FollowUpFormSet = forms.formset_factory(FollowUpForm, extra=2)


class SignForm(forms.Form):
    decision = forms.ChoiceField(choices=Decision.choices)
    reason = forms.CharField(label=_("Reason"), max_length=2000, required=False,
                             widget=forms.Textarea(attrs={"rows": 2}))
    # The package digest the signer read; empty from older pages means "as it is now".
    digest = forms.CharField(max_length=64, required=False, widget=forms.HiddenInput)
    role = forms.ChoiceField(choices=SignerRole.choices, required=False)

    def clean(self):
        data = super().clean()
        if data.get("decision") == Decision.REJECTED and not data.get("reason", "").strip():
            self.add_error("reason", _("Say why you reject the plan."))
        return data


class WithdrawForm(forms.Form):
    role = forms.ChoiceField(choices=SignerRole.choices, required=False)


class RequirementDropForm(forms.Form):
    role = forms.ChoiceField(label=_("Sign-off"), choices=SignerRole.choices)
    reason = forms.CharField(label=_("Why it is no longer needed"), max_length=2000,
                             widget=forms.Textarea(attrs={"rows": 2}))


class SignerRequestForm(forms.Form):
    roles = forms.MultipleChoiceField(label=_("Ask for sign-off by"), required=False,
                                      choices=SignerRole.choices,
                                      widget=forms.CheckboxSelectMultiple)


class DiffForm(forms.Form):
    old = forms.IntegerField(label=_("Compare version"), min_value=1)
    new = forms.IntegerField(label=_("with version"), min_value=1)


# --- Breach clock ------------------------------------------------------------------------

class AwarenessForm(forms.Form):
    aware_at = forms.DateTimeField(label=_("We became aware at"),
                                   widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    jurisdictions = forms.MultipleChoiceField(
        label=_("Jurisdictions of the affected people"),
        choices=[(j.code, j.name) for j in JURISDICTIONS],
        widget=forms.CheckboxSelectMultiple)


class DutyNotifiedForm(forms.Form):
    notified_at = forms.DateTimeField(label=_("Notified at"),
                                      widget=forms.DateTimeInput(
                                          attrs={"type": "datetime-local"}))
    reference = forms.CharField(label=_("Reference"), max_length=200)


class DutyNotNeededForm(forms.Form):
    approver = UserChoiceField(label=_("Approved by"), queryset=assignable_users())
    reason = forms.CharField(label=_("Why no notice is needed"), max_length=4000,
                             widget=forms.Textarea(attrs={"rows": 2}))
