from django import forms
from django.utils.translation import gettext_lazy as _

from incidents.forms import UserChoiceField
from incidents.learn.models import PostMortem
from incidents.learn.services import POSTMORTEM_FIELDS
from incidents.selectors import assignable_users

TEXTAREA = {"rows": 5}


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
