from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from messaging.models import Campaign

from .imports import KINDS
from .services import import_upload_check


class ImportForm(forms.Form):
    ENCODING_CHOICES = [("auto", _("Detect (UTF-8 with or without BOM, UTF-16 with BOM)")),
                        ("utf-8", _("UTF-8")), ("latin-1", _("Latin-1 (ISO-8859-1)"))]

    kind = forms.ChoiceField(label=_("What the file holds"), choices=())
    file = forms.FileField(label=_("CSV file"), error_messages={
        "empty": _("The file is empty (0 bytes): choose a CSV file with a header line and "
                   "at least one row."),
        "required": _("Choose a CSV file to import.")})
    encoding = forms.ChoiceField(label=_("Encoding"), choices=ENCODING_CHOICES,
                                 initial="auto")
    skip_bad_rows = forms.BooleanField(
        label=_("Skip bad rows (import the rest and give me a report of the bad ones)"),
        required=False)
    segment = forms.CharField(label=_("Segment for rows without one"), required=False,
                              max_length=200,
                              help_text=_("Segment membership files only; created if new."))
    list_name = forms.CharField(label=_("Suppression list name"), required=False,
                                max_length=200,
                                help_text=_("Suppression files only; created if new."))
    source = forms.CharField(label=_("Where the list comes from"), required=False,
                             max_length=200, help_text=_("e.g. “Mailchimp export, 2019”."))
    campaign = forms.ModelChoiceField(label=_("Campaign for rows without one"),
                                      queryset=Campaign.objects.all(), required=False,
                                      help_text=_("Recipient logs only."))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [(key, kind.label) for key, kind in KINDS.items()]
        self.fields["file"].help_text = _("Up to %(limit)s.") % {
            "limit": filesizeformat(settings.AMENDS_IMPORTS["MAX_BYTES"])}

    def clean_file(self):
        upload = self.cleaned_data["file"]
        import_upload_check(size=upload.size)
        return upload

    def options(self) -> dict:
        data = self.cleaned_data
        kind = data["kind"]
        if kind == "segments":
            return {"segment": data["segment"]}
        if kind == "suppression":
            return {"list_name": data["list_name"], "source": data["source"]}
        if kind == "recipients":
            return {"campaign": data["campaign"].pk if data["campaign"] else None}
        return {}
