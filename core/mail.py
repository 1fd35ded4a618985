"""Team notifications: the plain text everyone can read, plus an HTML part that says which
language it is in and which way it runs, so an Arabic or Hebrew notice opens right to left.
"""

from collections.abc import Iterable

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation


def team_mail_send(*, subject: str, body: str, recipients: Iterable[str],
                   language: str) -> None:
    """Send one notice written in `language` (the subject and body are already in it)."""
    with translation.override(language):
        rtl = translation.get_language_bidi()
        html = render_to_string("email/team_notification.html", {
            "subject": subject, "paragraphs": [p for p in body.split("\n\n") if p.strip()],
            "lang": language, "dir": "rtl" if rtl else "ltr",
            "align": "right" if rtl else "left",
        })
    message = EmailMultiAlternatives(subject, body, settings.DEFAULT_FROM_EMAIL,
                                     list(recipients), headers={"Content-Language": language})
    message.attach_alternative(html, "text/html")
    message.send()
