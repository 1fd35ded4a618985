"""Text the product wrote into a record (a playbook step's title, a checklist item, a
breach duty) shown in the reader's language.

Such text is stored as its English source, which is also its msgid: looked up in the
catalogue it reads in the reader's language. Text a person wrote or edited is not in the
catalogue and shows exactly as written.
"""

from django import template

from core.l10n import catalogued

register = template.Library()
register.filter("translated", catalogued)
