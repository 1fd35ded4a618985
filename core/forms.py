"""One way to turn what went wrong with a form or a service into the sentence a person reads."""

from collections.abc import Callable

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext as _


def error_text(error: ValidationError | PermissionDenied | forms.BaseForm) -> str:
    """A form's errors (each led by its field's label), a service's ValidationError, or a
    refusal's reasons, as one readable line."""
    if isinstance(error, forms.BaseForm):
        return " ".join(f"{error.fields[name].label}: {message}" if name in error.fields
                        else message
                        for name, messages in error.errors.items() for message in messages)
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return " ".join(getattr(error, "reasons", [])) or _("You may not do that.")


def form_apply(form: forms.BaseForm, action: Callable[[dict], object]) -> str:
    """Validate the form and run one service with its cleaned data; the error text to show,
    or "" when it worked."""
    if not form.is_valid():
        return error_text(form)
    try:
        action(form.cleaned_data)
    except ValidationError as exc:
        return error_text(exc)
    return ""
