"""The PDF post-mortem: every section, escaped user strings, the charts, page numbers;
who may export it; inline for small incidents, a progress page for big ones."""

import io
import re

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from pypdf import PdfReader

from incidents.learn.export import postmortem_export_render, postmortem_export_request
from incidents.learn.models import ExportStatus, PostMortemExport
from incidents.learn.pdf import postmortem_document, postmortem_pdf_render
from incidents.models import EventKind
from tests.incidents.learn_world import HOSTILE_TITLE, worked_incident

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def incident(marketer, lawyer):
    return worked_incident(marketer, lawyer)


def pdf_text(content: bytes) -> tuple[list[str], PdfReader]:
    reader = PdfReader(io.BytesIO(content))
    return [page.extract_text() for page in reader.pages], reader


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_pdf_has_every_section_escaped_strings_charts_and_page_numbers(incident):
    stages = []
    pdf = postmortem_pdf_render(incident=incident,
                                progress=lambda percent, stage: stages.append(percent))
    pages, reader = pdf_text(pdf.content)
    text = squash(" ".join(pages))
    assert pdf.pages == len(reader.pages) >= 6
    assert stages == sorted(stages) and stages[-1] < 100
    # The cover, with the hostile title as plain text (escaped, never markup).
    cover = squash(pages[0])
    assert HOSTILE_TITLE in cover
    assert "SEV2" in cover and "Sent to the wrong segment" in cover and "Maya" in cover
    assert "Declared" in cover and "Closed" in cover
    # Every section, listed in the table of contents with its page.
    toc = squash(pages[1])
    sections = ["Summary figures", "The six steps", "Post-mortem", "Follow-up actions",
                "Affected audience", "Plan versions and signatures", "The apology as sent",
                "Deliverability", "Timeline"]
    for title in sections:
        assert re.search(re.escape(title) + r"[ .]*\d+", toc), title
        assert title in text
    # Running headers carry the (escaped) title; every page after the cover is numbered.
    for number, page in enumerate(pages, start=1):
        assert f"{number} / {len(pages)}" in squash(page)
    assert "Post-mortem · #" in squash(pages[2]) and "<script>" in squash(pages[2])
    # The six steps, the figures, the audience by segment and by exclusion reason.
    for step in ["Own the problem", "Put out the fire", "Assess the business damage",
                 "Make a plan", "Inform and apologize", "Proceed with caution"]:
        assert step in text
    assert "time to contain" in text.lower() and "time to notify" in text.lower()
    assert "VIP & <friends>" in text and "On a suppression list" in text
    # The plan version and its signature.
    assert "Version 1, by Maya" in text and "Approved" in text and "Leo" in text
    # The apology as sent, per locale, escaped, with its counts.
    assert "We made a mistake" in text and "Wij hebben een fout gemaakt" in text
    assert "we are sorry <really>." in text and "2 recipients: 2 sent" in text
    # The post-mortem sections, follow-ups and the lesson given to the playbook.
    for heading in ["What happened", "Cause", "Detection", "Impact", "What went well",
                    "What went badly", "Lessons", "Added to the playbook"]:
        assert heading in text, heading
    assert "The segment picker defaulted to <All subscribers>." in text
    assert "Lock the segment picker" in text and "Add a send-count check" in text
    assert "Compare the recipient count with the intended segment" in text
    # The three step-6 charts (pygal SVG drawn as text) against their thresholds.
    assert {"Spam complaints", "Bounces (hard + soft)", "Unsubscribes"} <= set(
        re.findall(r"Spam complaints|Bounces \(hard \+ soft\)|Unsubscribes", text))
    assert "Baseline (30 days before)" in text and "crossed" in text
    # The timeline, oldest first, ends with the closing.
    assert text.index("declared a SEV2 incident") < text.index("closed the incident")


def test_the_pdf_carries_no_markup_from_user_strings(incident):
    pdf = postmortem_pdf_render(incident=incident)
    raw = pdf.content
    # Text is selectable (fonts embedded as text, not outlines) and nothing ran as script.
    assert b"/JavaScript" not in raw and b"/JS " not in raw
    pages, _reader = pdf_text(raw)
    assert all(page.strip() for page in pages)


def test_small_incident_exports_inline_and_records_who_and_when(client, incident, manager):
    client.force_login(manager)
    response = client.post(reverse("incidents:postmortem-export", args=[incident.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    content = b"".join(response.streaming_content)
    assert content.startswith(b"%PDF")
    export = PostMortemExport.objects.get(incident=incident)
    assert export.status == ExportStatus.DONE and export.requested_by == manager
    assert export.finished_at and export.pages >= 6 and export.file.name.endswith(".pdf")
    event = incident.events.filter(kind=EventKind.LEARN).first()
    assert event.message == "Max exported the post-mortem as a PDF."
    download = client.get(reverse("incidents:postmortem-export-download",
                                  args=[incident.pk, export.pk]))
    assert b"".join(download.streaming_content) == content


def test_big_incident_goes_to_a_worker_with_a_progress_page(
        client, incident, marketer, settings, django_capture_on_commit_callbacks):
    settings.POSTMORTEM_PDF_INLINE_MAX_EVENTS = 5
    client.force_login(marketer)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("incidents:postmortem-export", args=[incident.pk]))
    export = PostMortemExport.objects.get(incident=incident)
    status_url = reverse("incidents:postmortem-export-status", args=[incident.pk, export.pk])
    assert response.status_code == 302 and response["Location"] == status_url
    assert len(callbacks) == 1  # the render task, queued on commit
    page = client.get(status_url)
    assert b'hx-trigger="every 1s"' in page.content and b"Waiting" in page.content
    fragment = client.get(status_url, HTTP_HX_REQUEST="true")
    assert b'id="export-progress"' in fragment.content and b"<html" not in fragment.content
    download = reverse("incidents:postmortem-export-download", args=[incident.pk, export.pk])
    assert client.get(download).status_code == 404  # not ready yet
    postmortem_export_render(export_id=export.pk)  # what the task does
    assert postmortem_export_render(export_id=export.pk) is None  # claimed once only
    done = client.get(status_url, HTTP_HX_REQUEST="true")
    assert b"every 1s" not in done.content and b"Download the PDF" in done.content
    assert client.get(download).status_code == 200


def test_outsider_cannot_export_a_restricted_incident(client, marketer, lawyer, outsider):
    from incidents.services import incident_update

    incident = worked_incident(marketer, lawyer, title="Customer table exposed", close=False)
    incident_update(incident=incident, actor=marketer, kind="data_breach")
    incident.refresh_from_db()
    assert incident.restricted
    export = postmortem_export_request(incident=incident, actor=marketer, in_background=False)
    postmortem_export_render(export_id=export.pk)
    client.force_login(outsider)
    urls = [reverse("incidents:postmortem-export", args=[incident.pk])]
    assert client.post(urls[0]).status_code == 404
    for name in ("postmortem-export-status", "postmortem-export-download"):
        assert client.get(reverse(f"incidents:{name}", args=[incident.pk, export.pk])
                          ).status_code == 404
    assert PostMortemExport.objects.filter(incident=incident).count() == 1
    # A stakeholder of the same incident gets it.
    client.force_login(lawyer)
    assert client.post(urls[0]).status_code == 200


# --- Right to left (issue 14) ----------------------------------------------------------

ARABIC_TITLE = "قسيمة خاطئة أرسلت إلى الجميع"


def page_number_x(content: bytes, index: int = 1) -> float:
    """Where the running "n / total" page number sits on a page (x in PDF units)."""
    found = []

    def visit(text, cm, tm, font, size):
        if re.fullmatch(r"\s*\d+ / \d+\s*", text):
            found.append(tm[4] * cm[0] + cm[4])

    PdfReader(io.BytesIO(content)).pages[index].extract_text(visitor_text=visit)
    assert len(found) == 1, found
    return found[0]


def glyphs_behind(reader: PdfReader, text: str) -> dict[str, set[int]]:
    """For each character of `text`, the glyph ids the embedded fonts drew it with (from
    their ToUnicode maps). Glyph 0 is .notdef: the box drawn for a letter a font lacks."""
    drawn: dict[str, set[int]] = {}
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            to_unicode = font.get_object().get("/ToUnicode")
            if to_unicode is None:
                continue
            cmap = to_unicode.get_object().get_data().decode("latin-1")
            for gid, chars in re.findall(r"<([0-9a-fA-F]{4})>\s*<([0-9a-fA-F]+)>", cmap):
                for i in range(0, len(chars), 4):
                    drawn.setdefault(chr(int(chars[i:i + 4], 16)), set()).add(int(gid, 16))
    return {c: drawn.get(c, set()) for c in set(text) if not c.isspace()}


def test_arabic_pdf_reads_right_to_left_with_arabic_glyphs(marketer, lawyer):
    incident = worked_incident(marketer, lawyer, title=ARABIC_TITLE)
    with translation.override("ar"):
        html = render_to_string("learn/postmortem_pdf.html",
                                postmortem_document(incident=incident))
        arabic = postmortem_pdf_render(incident=incident)
    english = postmortem_pdf_render(incident=incident)
    assert '<html lang="ar" dir="rtl">' in html

    pages, reader = pdf_text(arabic.content)
    assert ARABIC_TITLE in pages[0]  # the Arabic text comes back out, in reading order
    # Drawn with a font that has Arabic letters, never the empty box of a missing glyph.
    fonts = {str(f.get_object()["/BaseFont"]) for p in reader.pages
             for f in p["/Resources"]["/Font"].values()}
    assert any(name in f for f in fonts for name in ("DejaVu", "Noto")), fonts
    for char, gids in glyphs_behind(reader, ARABIC_TITLE).items():
        assert gids and 0 not in gids, f"{char!r} has no glyph"
    # The page is mirrored: the page number moves from the right margin to the left one.
    assert page_number_x(arabic.content) < 200 < page_number_x(english.content)


def test_export_renders_in_the_language_of_whoever_asked(marketer, lawyer):
    from accounts.models import UserPreference

    incident = worked_incident(marketer, lawyer, title=ARABIC_TITLE)
    UserPreference.objects.create(user=marketer, language="he")
    export = postmortem_export_request(incident=incident, actor=marketer, in_background=True)
    export = postmortem_export_render(export_id=export.pk)  # the task, told no language
    hebrew = export.file.read()
    english = postmortem_pdf_render(incident=incident).content
    assert page_number_x(hebrew) < 200 < page_number_x(english)
