"""Keep values that read left-to-right (titles, addresses, codes, numbers) whole inside a
sentence translated to Arabic or Hebrew.

`{% blocktranslate with title=incident.title|bdi %}Close “{{ title }}”?{% endblocktranslate %}`
isolates the value with `<bdi>`: the msgid stays the same, the translator never sees markup,
and "Wrong coupon (SAVE-20)!" keeps its brackets and punctuation where its author put them.
Only for HTML text: an attribute (aria-label, hx-confirm) cannot hold a tag.
"""

from django import template
from django.utils.html import format_html

register = template.Library()


@register.filter(is_safe=True)
def bdi(value):
    if value is None or value == "":
        return value
    return format_html("<bdi>{}</bdi>", value)
