from django import forms
from django.utils.translation import gettext_lazy as _

from incidents.containment.selectors import campaigns_recent


class CampaignChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"{obj.name} · {obj.esp_account.label} · {obj.get_status_display()}"


def faulty_campaigns_field(*, required: bool) -> CampaignChoiceField:
    return CampaignChoiceField(
        label=_("Faulty campaigns"), queryset=campaigns_recent(), required=required,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Campaigns still sending or sent in the last two weeks. Mark the faulty "
                    "ones so step 2 can pause them at once."),
        error_messages={"required": _("Choose at least one campaign.")})


class CampaignLinkForm(forms.Form):
    campaigns = faulty_campaigns_field(required=True)
