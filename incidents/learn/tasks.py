"""The learn step's background work: rendering a big incident's PDF post-mortem."""

import logging

from celery import shared_task

from incidents.learn.export import postmortem_export_render
from incidents.learn.models import PostMortemExport

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def render_postmortem_pdf(export_id: int, language: str = "") -> None:
    # No retry: a failed render is marked failed on the export (with its error) and the
    # person asks again; rendering the same record twice would fail the same way.
    if not PostMortemExport.objects.filter(pk=export_id).exists():
        log.warning("post-mortem export %s is gone; nothing to render", export_id)
        return
    postmortem_export_render(export_id=export_id, language=language)
