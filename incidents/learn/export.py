"""PDF exports of the post-mortem: asked for by a person, rendered inline when the incident
is small and by a Celery task when it is big, kept with the incident (who, when, the file).
"""

import logging

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.language import SUPPORTED, user_language
from incidents.learn.models import ExportStatus, PostMortemExport
from incidents.learn.pdf import postmortem_pdf_render
from incidents.models import EventKind, Incident
from incidents.timeline import said, timeline_record, who

log = logging.getLogger(__name__)

User = AbstractBaseUser


def export_runs_inline(*, incident: Incident) -> bool:
    """Small incidents render in the request; big ones in the background with progress."""
    return incident.events.count() <= settings.POSTMORTEM_PDF_INLINE_MAX_EVENTS


@transaction.atomic
def postmortem_export_request(*, incident: Incident, actor: User,
                              in_background: bool) -> PostMortemExport:
    """Record the export (and who asked). In the background: the task starts on commit."""
    export = PostMortemExport.objects.create(incident=incident, requested_by=actor,
                                             stage=_("Waiting for a worker"))
    timeline_record(incident=incident, actor=actor, kind=EventKind.LEARN,
                    message=said("%(who)s exported the post-mortem as a PDF.", who=who(actor)),
                    data={"learn": {"action": "export", "export": export.pk}})
    if in_background:
        from incidents.learn.tasks import render_postmortem_pdf

        # The worker has no request: it renders in the language the reader asked in.
        language = translation.get_language() or user_language(actor)
        transaction.on_commit(lambda: render_postmortem_pdf.delay(export.pk, language))
    return export


def _progress(export_id: int):
    def report(percent: int, stage: str) -> None:
        # Its own autocommit write, so the page polling the export sees it move.
        PostMortemExport.objects.filter(pk=export_id).update(progress=percent, stage=stage)
    return report


def postmortem_export_render(*, export_id: int, language: str = "") -> PostMortemExport | None:
    """Render one export in `language` (default: the language of whoever asked for it).
    Claimed with a conditional update, so two workers never render the same one; returns
    None when someone else has it (or it is done)."""
    claimed = PostMortemExport.objects.filter(pk=export_id, status=ExportStatus.PENDING).update(
        status=ExportStatus.RENDERING, progress=5, stage=_("Starting"))
    if not claimed:
        return None
    export = (PostMortemExport.objects.select_related("incident", "requested_by")
              .get(pk=export_id))
    language = language if language in SUPPORTED else user_language(export.requested_by)
    try:
        with translation.override(language):
            pdf = postmortem_pdf_render(incident=export.incident, progress=_progress(export_id))
    except Exception as exc:
        log.exception("post-mortem PDF %s failed", export_id)
        PostMortemExport.objects.filter(pk=export_id).update(
            status=ExportStatus.FAILED, stage=_("Failed"), error=str(exc)[:2000],
            finished_at=timezone.now())
        raise
    stamp = timezone.now()
    name = f"incident-{export.incident_id}-postmortem-{stamp:%Y%m%d-%H%M%S}.pdf"
    export.file.save(name, ContentFile(pdf.content), save=False)
    export.status = ExportStatus.DONE
    export.progress = 100
    export.stage = _("Ready")
    export.size = len(pdf.content)
    export.pages = pdf.pages
    export.finished_at = stamp
    export.save(update_fields=["file", "status", "progress", "stage", "size", "pages",
                               "finished_at"])
    return export
