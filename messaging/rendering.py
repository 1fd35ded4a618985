"""Render a message in the organisation's brand template: an HTML part and a text part.

Bodies are written as plain text with a little light markup that people type naturally:
blank lines separate paragraphs, lines starting with "- " or "* " make a list, "1. " a
numbered list, "## " a heading, **bold**, and bare http(s) links become links. Every
piece of user content is escaped before markup is applied, so nothing a writer or a
merge value contains can inject HTML into the email.

Merge tags use one syntax, `{{ field }}`. Fields present in `merge_data` are filled in
(escaped in the HTML part); others are left as written, so the linter can point at them.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from .esp.base import OutgoingMessage, header_safe
from .models import UNSUBSCRIBE_PLACEHOLDER, BrandTemplate

MERGE_TAG = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
# Runs on escaped text: stop at whitespace, at an escaped quote/bracket, and at a merge tag.
_URL = re.compile(r"https?://[^\s<>\"'{}]+?(?=[.,;:!?)]?(?:\s|$|&lt;|&gt;|&quot;|&#x27;|\{))")
_BULLET = re.compile(r"^\s*[-*•]\s+")
_NUMBERED = re.compile(r"^\s*\d{1,3}[.)]\s+")
_HEADING = re.compile(r"^#{1,3}\s+")
_SAFE_LINK = re.compile(r"^https?://", re.I)

# For a page that shows a rendered email on its own, framed by our pages: the email's
# inline styles and remote images, no script at all, framed only by this site.
EMAIL_PREVIEW_POLICY = (
    "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; "
    "font-src https: data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'")

FONT = ("-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, 'Noto Sans', "
        "'Noto Sans Arabic', 'Noto Sans Hebrew', Arial, sans-serif")


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


def fill_merge_tags(text: str, merge_data: dict[str, Any], *, html: bool = False) -> str:
    """Replace `{{ field }}` by merge_data[field]; unknown fields stay as written."""

    def replace(match: re.Match) -> str:
        key = match.group(1)
        if key not in merge_data or merge_data[key] is None:
            return match.group(0)
        value = str(merge_data[key])
        return escape(value) if html else value

    return MERGE_TAG.sub(replace, text)


def _inline(escaped: str, link_color: str) -> str:
    escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
    return _URL.sub(
        lambda m: (f'<a href="{m.group(0)}" style="color:{link_color};'
                   f'text-decoration:underline;">{m.group(0)}</a>'), escaped)


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    """Group lines into (kind, lines): paragraph, bullets, numbered or heading."""
    blocks: list[tuple[str, list[str]]] = []
    previous = "blank"
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line.strip():
            previous = "blank"
            continue
        if _HEADING.match(line):
            kind = "heading"
        elif _BULLET.match(line):
            kind = "bullets"
        elif _NUMBERED.match(line):
            kind = "numbered"
        else:
            kind = "paragraph"
        if kind == previous and kind != "heading":
            blocks[-1][1].append(line.rstrip())
        else:
            blocks.append((kind, [line.rstrip()]))
        previous = kind
    return blocks


def body_to_html(body: str, *, merge_data: dict[str, Any], text_color: str,
                 link_color: str) -> SafeString:
    """Light markup to email-safe HTML with inline styles (mail clients drop <style>)."""
    p_style = f"margin:0 0 16px 0;font-size:16px;line-height:1.55;color:{text_color};"
    li_style = "margin:0 0 6px 0;"
    parts: list[str] = []

    def inline(line: str) -> str:
        return fill_merge_tags(_inline(escape(line), link_color), merge_data, html=True)

    for kind, lines in _blocks(body):
        if kind == "bullets":
            items = "".join(f'<li style="{li_style}">{inline(_BULLET.sub("", x))}</li>'
                            for x in lines)
            parts.append(f'<ul style="{p_style}padding-inline-start:24px;">{items}</ul>')
        elif kind == "numbered":
            items = "".join(f'<li style="{li_style}">{inline(_NUMBERED.sub("", x))}</li>'
                            for x in lines)
            parts.append(f'<ol style="{p_style}padding-inline-start:24px;">{items}</ol>')
        elif kind == "heading":
            parts.append(f'<h2 style="margin:8px 0 12px 0;font-size:18px;line-height:1.3;'
                         f'color:{text_color};">{inline(_HEADING.sub("", lines[0]))}</h2>')
        else:
            parts.append(f'<p style="{p_style}">' + "<br>".join(inline(x) for x in lines)
                         + "</p>")
    return mark_safe("\n".join(parts))  # noqa: S308 — every piece above was escaped


def body_to_text(body: str, *, merge_data: dict[str, Any]) -> str:
    out: list[str] = []
    for kind, lines in _blocks(body):
        for line in lines:
            line = _BOLD.sub(r"\1", line)
            if kind == "heading":
                line = _HEADING.sub("", line)
            elif kind == "bullets":
                line = _BULLET.sub("- ", line)
            out.append(fill_merge_tags(line, merge_data))
        out.append("")
    return "\n".join(out).strip()


def _luminance(colour: str) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(int(colour[i:i + 2], 16) / 255) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two #RRGGBB colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _readable_on(background: str) -> str:
    """White or near-black, whichever reads better on the brand colour."""
    return "#FFFFFF" if contrast(background, "#FFFFFF") >= contrast(background, "#111827") \
        else "#111827"


def _unsubscribe_href(template: BrandTemplate, merge_data: dict[str, Any]) -> str:
    url = fill_merge_tags(template.unsubscribe_url, merge_data)
    if _SAFE_LINK.match(url):
        return url
    # Not filled in yet: keep the placeholder visible for whoever fills it later; any
    # other scheme (javascript:, data:) never reaches an href.
    return UNSUBSCRIBE_PLACEHOLDER if MERGE_TAG.fullmatch(url.strip()) else "#"


def _plain_template() -> BrandTemplate:
    return BrandTemplate(name="", brand_name="", primary_color="#374151",
                         text_color="#1F2933", postal_address="")


def render_branded_email(*, template: BrandTemplate | None, subject: str,
                         body_markdown_or_text: str, merge_data: dict[str, Any],
                         locale: str) -> RenderedEmail:
    """One message in the brand's look, in `locale` (language and writing direction).

    `merge_data` fills `{{ field }}` tags in the subject, the body and the template's
    unsubscribe link (`unsubscribe_url`); the sender passes each recipient's data.
    """
    template = template or _plain_template()
    with translation.override(locale):
        rtl = translation.get_language_bidi()
        filled_subject = header_safe(fill_merge_tags(subject, merge_data).strip())
        # A pale brand colour would make links unreadable on white: fall back to ink.
        link_color = (template.primary_color
                      if contrast(template.primary_color, "#FFFFFF") >= 3
                      else template.text_color)
        body_html = body_to_html(body_markdown_or_text, merge_data=merge_data,
                                 text_color=template.text_color, link_color=link_color)
        body_text = body_to_text(body_markdown_or_text, merge_data=merge_data)
        unsubscribe = _unsubscribe_href(template, merge_data)
        first_line = next((line for _, lines in _blocks(body_text) for line in lines), "")
        context = {
            "t": template, "subject": filled_subject, "body": body_html, "locale": locale,
            "dir": "rtl" if rtl else "ltr", "align": "right" if rtl else "left",
            "header_ink": _readable_on(template.primary_color), "font": FONT,
            "preheader": first_line[:120], "unsubscribe_url": unsubscribe,
        }
        html = render_to_string("messaging/email/branded.html", context)
        text = render_to_string("messaging/email/branded.txt", {
            **context, "body": body_text}).strip() + "\n"
    return RenderedEmail(subject=filled_subject, html=html, text=text)


# --- Headers every apology carries ------------------------------------------------------------

ONE_CLICK = "List-Unsubscribe=One-Click"


_broadcasts = None


def _ledger():
    """messaging.broadcasts (which imports this module), looked up once: the unsubscribe
    pair is asked for once per message of a fan-out, and an import statement per message
    showed in its profile."""
    global _broadcasts
    if _broadcasts is None:
        from . import broadcasts

        _broadcasts = broadcasts
    return _broadcasts


def unsubscribe_headers(message: OutgoingMessage) -> dict[str, str]:
    """RFC 2369 `List-Unsubscribe` and RFC 8058 `List-Unsubscribe-Post` for one recipient.

    The link is the recipient's own `/unsubscribe/<id>-<mac>/` (from the `recipient_id` in
    the message's metadata), plus a mailto when AMENDS_UNSUBSCRIBE_MAILTO names a mailbox.
    One-click is announced only for an https link: RFC 8058 allows nothing else, and a
    mailbox provider would not POST to plain http anyway. A message with no recipient id
    (not one of ours) gets no headers.
    """
    recipient_id = message.metadata.get("recipient_id", "")
    if not recipient_id.isdigit():
        return {}
    ledger = _ledger()
    url = ledger.unsubscribe_url(int(recipient_id))
    # Asked once per message of a fan-out: the common case (no mailbox) builds one dict.
    mailbox = getattr(settings, "AMENDS_UNSUBSCRIBE_MAILTO", "")
    targets = f"<{url}>"
    if mailbox:
        subject = quote(f"unsubscribe {ledger.unsubscribe_token(int(recipient_id))}")
        targets += f", <mailto:{quote(mailbox, safe='@')}?subject={subject}>"
    if url.startswith("https://"):
        return {"List-Unsubscribe": targets, "List-Unsubscribe-Post": ONE_CLICK}
    return {"List-Unsubscribe": targets}


def header_merge_data(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """merge_data whose values may fill a Subject: each one line (unchanged, and not
    copied, when every value already is)."""
    if all(not isinstance(v, str) or v.isprintable() for v in data.values()):
        return data
    return {k: header_safe(v) if isinstance(v, str) else v for k, v in data.items()}


def message_headers(message: OutgoingMessage) -> Mapping[str, str]:
    """Every header a sender puts on `message`: its own and the unsubscribe pair, each one
    line. The one function each sender (sandbox, Postmark JSON, anymail) calls."""
    extra = unsubscribe_headers(message)
    if not message.headers:
        return extra  # our own link and mailto: one line by construction
    if not extra and all(v.isprintable() for v in message.headers.values()):
        return message.headers
    return {k: header_safe(v) for k, v in {**message.headers, **extra}.items()}
