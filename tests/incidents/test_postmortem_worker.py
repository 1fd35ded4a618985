"""A big incident's PDF is rendered by a real Celery worker: progress moves, the file is
kept with the incident, and the download link serves it."""

import io

import pytest
from django.urls import reverse
from pypdf import PdfReader

from incidents.learn.models import ExportStatus, PostMortemExport
from tests.conftest import wait_for
from tests.incidents.learn_world import worked_incident


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_real_worker_renders_a_big_incident_and_the_link_serves_it(celery_worker, client,
                                                                   marketer, lawyer, settings):
    # The worker writes under its own MEDIA_ROOT (the project's var/media), which is also
    # this process's default: the web side reads the same file back.
    settings.POSTMORTEM_PDF_INLINE_MAX_EVENTS = 10
    incident = worked_incident(marketer, lawyer, notes=15)
    client.force_login(marketer)
    response = client.post(reverse("incidents:postmortem-export", args=[incident.pk]))
    export = PostMortemExport.objects.get(incident=incident)
    assert response.status_code == 302
    assert response["Location"].endswith(f"/postmortem/pdf/{export.pk}/")

    def finished():
        export.refresh_from_db()
        return export.status in (ExportStatus.DONE, ExportStatus.FAILED)

    wait_for(finished, timeout=120)
    assert export.status == ExportStatus.DONE, export.error
    assert export.progress == 100 and export.requested_by == marketer and export.finished_at
    page = client.get(response["Location"], HTTP_HX_REQUEST="true")
    link = reverse("incidents:postmortem-export-download", args=[incident.pk, export.pk])
    assert link.encode() in page.content and b"every 1s" not in page.content
    content = b"".join(client.get(link).streaming_content)
    reader = PdfReader(io.BytesIO(content))
    assert len(reader.pages) == export.pages
    assert "Note 14" in "".join(p.extract_text() for p in reader.pages)
    export.file.delete(save=False)
