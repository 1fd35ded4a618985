from django import forms
from django.utils.translation import gettext_lazy as _

from incidents.forms import UserChoiceField
from incidents.learn.models import PostMortem
from incidents.learn.services import POSTMORTEM_FIELDS
from incidents.learn.summary import DEFAULT_PERIOD, DEFAULT_SORT, PERIODS, SORTS, SummaryFilters
from incidents.models import Kind, Severity
from incidents.selectors import assignable_users

TEXTAREA = {"rows": 5}
SORT_CHOICES = [(k, k) for k in SORTS] + [(f"-{k}", f"-{k}") for k in SORTS]


class PostMortemForm(forms.ModelForm):
    class Meta:
        model = PostMortem
        fields = POSTMORTEM_FIELDS
        widgets = {name: forms.Textarea(attrs=TEXTAREA) for name in (
            "what_happened", "root_cause", "detection_how", "compensation", "went_well",
            "went_badly", "lessons")}


class FollowUpForm(forms.Form):
    action = forms.CharField(label=_("Action"), max_length=300)
    owner = UserChoiceField(label=_("Owner"), queryset=assignable_users())
    due_on = forms.DateField(label=_("Due on"),
                             widget=forms.DateInput(attrs={"type": "date"}))


class FollowUpDoneForm(forms.Form):
    done = forms.BooleanField(label=_("Done"), required=False)


class LessonForm(forms.Form):
    text = forms.CharField(label=_("Checklist item for every future incident of this kind"),
                           max_length=300)
    step_number = forms.TypedChoiceField(
        label=_("Step"), coerce=int,
        choices=[(n, str(n)) for n in range(1, 7)], initial=3)


class SummaryFilterForm(forms.Form):
    state = forms.ChoiceField(label=_("Open or closed"), required=False, choices=[
        ("", _("Open and closed")), ("open", _("Open")), ("closed", _("Closed"))])
    period = forms.ChoiceField(label=_("Period"), required=False,
                               choices=[(k, label) for k, (_days, label) in PERIODS.items()])
    kind = forms.ChoiceField(label=_("Kind"), required=False,
                             choices=[("", _("Any kind")), *Kind.choices])
    severity = forms.TypedChoiceField(label=_("Severity"), required=False, coerce=int,
                                      empty_value=None,
                                      choices=[("", _("Any severity")), *Severity.choices])
    lead = UserChoiceField(label=_("Lead"), required=False, queryset=assignable_users(),
                           empty_label=_("Anyone"))
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES, widget=forms.HiddenInput)

    def filters(self) -> SummaryFilters:
        """The valid part of what was asked; anything invalid falls back to its default
        (and the form shows why)."""
        data = self.cleaned_data if self.is_bound else {}
        lead = data.get("lead")
        return SummaryFilters(state=data.get("state") or "",
                              period=data.get("period") or DEFAULT_PERIOD,
                              kind=data.get("kind") or "", severity=data.get("severity"),
                              lead=lead.pk if lead else None,
                              sort=data.get("sort") or DEFAULT_SORT)
