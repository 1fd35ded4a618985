"""The upload page stores the file and queues the import; the import page shows progress,
then the result. The task body runs in-process here (test_import_worker.py runs it in a
real worker)."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audiences import services, tasks
from audiences.models import AudienceImport, ImportStatus, Subscriber

pytestmark = pytest.mark.django_db

URL = "/audiences/imports/"
GOOD = b"Email Address,First Name\nann@example.test,Ann\nbob@example.test,Bob\n"
BAD = b"Email Address,First Name\nann@example.test,Ann\nnot-an-email,Bob\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def upload(client, content: bytes, action: str = "import", headers=None, **extra):
    data = {"kind": "subscribers", "encoding": "auto", "action": action,
            "file": SimpleUploadedFile("list.csv", content, content_type="text/csv"), **extra}
    return client.post(URL, data, headers=headers or {})


def run_queued(callbacks) -> None:
    """What the worker would do with the tasks queued on commit."""
    for callback in callbacks:
        callback()


@pytest.fixture(autouse=True)
def eager():
    """Queued imports run in this process, inside the test's transaction."""
    from config.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_url_names():
    assert reverse("audiences:import-upload") == URL
    assert reverse("audiences:import-detail", args=[7]) == "/audiences/imports/7/"


def test_upload_only_stores_and_queues_then_the_page_shows_progress_and_result(
        client, marketer, django_capture_on_commit_callbacks):
    client.force_login(marketer)
    assert client.get(URL).status_code == 200
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = upload(client, GOOD, action="preview")
    audience_import = AudienceImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/audiences/imports/{audience_import.pk}/"
    assert audience_import.status == ImportStatus.QUEUED and audience_import.dry_run
    assert audience_import.size == len(GOOD) and audience_import.original_name == "list.csv"
    assert audience_import.file.read() == GOOD
    assert len(queued) == 1 and not Subscriber.objects.exists()
    waiting = client.get(response["Location"]).content.decode()
    assert "<progress" in waiting and 'hx-trigger="every 1s"' in waiting
    fragment = client.get(response["Location"], headers={"HX-Request": "true"})
    assert "<html" not in fragment.content.decode() and "<progress" in fragment.content.decode()

    run_queued(queued)
    done = client.get(response["Location"]).content.decode()
    assert "Preview: nothing has changed yet" in done
    assert '“<bdi>Email Address</bdi>” <span class="arrow-forward"></span> Email' in done
    assert "hx-trigger" not in done.split('id="import-status"')[1]  # polling stops
    assert not Subscriber.objects.exists()
    # The preview's stored file is imported for real without uploading it again.
    stored_name = audience_import.file.name
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = client.post(reverse("audiences:import-confirm", args=[audience_import.pk]))
    real = AudienceImport.objects.exclude(pk=audience_import.pk).get()
    assert confirmed["Location"] == f"/audiences/imports/{real.pk}/"
    assert "Imported" in client.get(confirmed["Location"]).content.decode()
    assert Subscriber.objects.count() == 2
    assert not real.file.storage.exists(stored_name)  # read, then deleted
    assert real.file.name == "" and AudienceImport.objects.filter(file="").count() == 2
    stale = client.post(reverse("audiences:import-confirm", args=[audience_import.pk]))
    assert stale.status_code == 409 and "upload the file again" in stale.content.decode()


def test_htmx_upload_redirects_the_page_to_the_import(client, marketer):
    client.force_login(marketer)
    response = upload(client, GOOD, headers={"HX-Request": "true"})
    audience_import = AudienceImport.objects.get()
    assert response["HX-Redirect"] == f"/audiences/imports/{audience_import.pk}/"


def test_bad_file_is_refused_with_messages_and_a_report_for_its_uploader(
        client, marketer, deliverability_lead, django_capture_on_commit_callbacks):
    client.force_login(marketer)
    with django_capture_on_commit_callbacks(execute=True):
        refused = upload(client, BAD)
    body = client.get(refused["Location"]).content.decode()
    assert "Nothing was imported" in body
    assert "Line 3, column “Email Address”: “not-an-email” is not an email address." in body
    assert not Subscriber.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        skipped = upload(client, BAD, skip_bad_rows="on")
    page = client.get(skipped["Location"]).content.decode()
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["ann@example.test"]
    link = next(part.split('"')[0] for part in page.split('href="')[1:] if "/reports/" in part)
    report = client.get(link)
    assert report.status_code == 200
    assert b"not-an-email" in b"".join(report.streaming_content)
    client.force_login(deliverability_lead)
    assert client.get(link).status_code == 404  # someone else's report
    assert client.get(skipped["Location"]).status_code == 404  # and someone else's import


def test_empty_file_is_named_on_the_form(client, marketer):
    client.force_login(marketer)
    response = upload(client, b"", headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert "The file is empty (0 bytes)" in body and 'id="import-form-card"' in body
    assert not AudienceImport.objects.exists()
    page = upload(client, b"").content.decode()
    assert "<html" in page and "The file is empty (0 bytes)" in page


def test_blank_or_header_only_files_say_there_is_nothing_to_import(
        client, marketer, django_capture_on_commit_callbacks):
    client.force_login(marketer)
    for content, message in [(b"\xef\xbb\xbf\r\n\r\n", "The file is empty."),
                             (b"Email Address,Name\r\n", "Line 1 is the header and no rows "
                                                         "follow it")]:
        with django_capture_on_commit_callbacks(execute=True):
            response = upload(client, content)
        assert message in client.get(response["Location"]).content.decode()


def test_oversized_upload_is_refused_with_both_sizes_and_nothing_stored(
        client, marketer, settings, tmp_path):
    settings.AMENDS_IMPORTS = {**settings.AMENDS_IMPORTS, "MAX_BYTES": 1000}
    client.force_login(marketer)
    body = upload(client, GOOD * 30).content.decode()
    assert "The file is 2.0\xa0KB; imports take files up to 1000\xa0bytes." in body
    assert not AudienceImport.objects.exists()
    assert not (tmp_path / "imports").exists()


def test_error_report_cells_cannot_start_a_formula(client, marketer,
                                                   django_capture_on_commit_callbacks):
    # Headers are matched without punctuation, so "=Status" is the status column.
    hostile = (b'-Email,Name,=Status\n'
               b"@SUM(1+1),Ann,active\n"
               b"ann@example.test,Ann,+cmd|' /C calc'!A0\n"
               b"-2+3@x,Bob,\t=1+1\n")
    client.force_login(marketer)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, hostile, skip_bad_rows="on")
    audience_import = AudienceImport.objects.get()
    path = services.import_report_path(actor=marketer, name=audience_import.report_name)
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    cells = [cell for row in rows[1:] for cell in row]
    assert cells and not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert {"'-Email", "'=Status"} <= set(cells)  # column names from the file, defused
    assert client.get(response["Location"]).status_code == 200


def test_task_for_a_missing_or_finished_import_does_nothing(marketer):
    assert tasks.audience_import_run(123456) is None
    assert services.audience_import_execute(import_id=123456) is None


def test_read_only_and_anonymous_and_wrong_method(client, manager):
    assert client.get(URL).status_code == 302  # to the login page
    client.force_login(manager)
    assert client.get(URL).status_code == 403
    assert upload(client, GOOD).status_code == 403
    assert client.get("/audiences/imports/1/").status_code == 403
    assert client.post("/audiences/imports/1/import/").status_code == 403
    assert not Subscriber.objects.exists() and not AudienceImport.objects.exists()


def test_wrong_method_is_405(client, marketer):
    client.force_login(marketer)
    assert client.put(URL).status_code == 405
    assert client.post("/audiences/imports/reports/1-" + "0" * 32 + ".csv").status_code == 405
    assert client.post("/audiences/imports/1/").status_code == 405
    assert client.get("/audiences/imports/1/import/").status_code == 405


def test_progress_bar_follows_the_worker_through_its_phases(client, marketer):
    from django.core.cache import cache
    from django.core.files.base import ContentFile

    audience_import = AudienceImport(created_by=marketer, kind="subscribers", size=1000,
                                     original_name="big.csv", status=ImportStatus.RUNNING)
    audience_import.file.save("big.csv", ContentFile(b"x"), save=True)
    key = services.PROGRESS_KEY.format(pk=audience_import.pk)
    client.force_login(marketer)
    url = reverse("audiences:import-detail", args=[audience_import.pk])
    cache.set(key, {"phase": "reading", "bytes": 420, "rows": 6000})
    body = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert 'max="100" value="42"' in body and "Reading the file: <bdi>420" in body
    cache.set(key, {"phase": "applying", "bytes": 1000, "rows": 9000})
    body = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "<progress" in body and "value=" not in body.split("<progress")[1].split(">")[0]
    assert "Read 9,000 rows; writing them" in body and 'hx-trigger="every 1s"' in body


def test_watchdog_requeues_dead_imports_and_prunes_old_previews(
        marketer, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.core.files.base import ContentFile
    from django.utils import timezone

    def stored(**fields) -> AudienceImport:
        audience_import = AudienceImport(created_by=marketer, kind="subscribers",
                                         original_name="a.csv", size=len(GOOD), **fields)
        audience_import.file.save("a.csv", ContentFile(GOOD), save=True)
        return audience_import

    long_ago = timezone.now() - timedelta(days=2)
    dead = stored(status=ImportStatus.RUNNING, started_at=long_ago)
    old_preview = stored(status=ImportStatus.DONE, dry_run=True, created_at=long_ago)
    new_preview = stored(status=ImportStatus.DONE, dry_run=True)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.audience_import_watchdog() == {"requeued": 1, "files_deleted": 1}
    dead.refresh_from_db()  # eager: the re-queued task ran and imported the file
    assert dead.status == ImportStatus.DONE and Subscriber.objects.count() == 2
    assert dead.file.name == ""
    old_preview.refresh_from_db()
    assert old_preview.file.name == "" and old_preview.result == {}
    assert new_preview.file.storage.exists(new_preview.file.name)
