"""Two small readings shared by templates (filters) and stored sentences (core.sentences).

- `catalogued`: text stored as its English source (a msgid) in the reader's language;
  anything not in the catalogue (what a person typed) comes back as it is.
- `grouped_number`: a number as the reader's language writes it (1,234 · 1 234 · 1.234).
  Not global (USE_THOUSAND_SEPARATOR) on purpose: ids and cursors in URLs and data
  attributes must stay plain digits.
"""

from django.utils.formats import number_format
from django.utils.translation import gettext


def catalogued(text):
    if not isinstance(text, str) or not text.strip():
        return text  # gettext("") would answer with the catalogue's header
    return gettext(text)


def grouped_number(value, decimals: int | None = None) -> str:
    return number_format(value, decimal_pos=decimals, use_l10n=True, force_grouping=True)
