"""Imports through a real Celery worker process: the request stores the file and queues
the task; the worker reads the stored file and the page follows until the result."""

import codecs

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audiences.models import AudienceImport, ImportStatus, Subscriber
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def cleanup():
    """The worker shares MEDIA_ROOT with this process (var/media): remove what we stored."""
    yield
    for audience_import in AudienceImport.objects.all():
        if audience_import.file and audience_import.file.storage.exists(
                audience_import.file.name):
            audience_import.file.storage.delete(audience_import.file.name)


def post(client, content: bytes, **extra):
    return client.post("/audiences/imports/", {
        "kind": "subscribers", "encoding": "auto", "action": "import",
        "file": SimpleUploadedFile("export.csv", content, content_type="text/csv"), **extra})


def finished(pk: int) -> AudienceImport | None:
    audience_import = AudienceImport.objects.get(pk=pk)
    return audience_import if audience_import.finished else None


def test_worker_imports_an_uploaded_utf16_file_and_the_page_shows_it(
        celery_worker, client, marketer, cleanup):
    rows = "".join(f"person{i}@worker.test,Person {i},ü\r\n" for i in range(3000))
    content = codecs.BOM_UTF16_LE + ("Email Address,Name,Note\r\n" + rows).encode("utf-16-le")
    client.force_login(marketer)
    response = post(client, content)
    audience_import = AudienceImport.objects.get()
    assert response["Location"] == f"/audiences/imports/{audience_import.pk}/"

    stored_name = audience_import.file.name
    done = wait_for(lambda: finished(audience_import.pk), timeout=60)
    assert done.status == ImportStatus.DONE, done.failure
    assert Subscriber.objects.count() == 3000
    assert not done.file.storage.exists(stored_name) and done.file.name == ""  # removed
    page = client.get(response["Location"]).content.decode()
    assert "Imported" in page and "Read as <bdi>UTF-16 LE</bdi>; 3,000 rows." in page
    assert "hx-trigger" not in page.split('id="import-status"')[1]


def test_worker_refuses_a_hostile_file_cleanly_and_keeps_what_is_stored(
        celery_worker, client, marketer, cleanup):
    Subscriber.objects.create(email="kept@worker.test", name="Kept")
    content = (b'email,name\nann@worker.test,A\x00nn\nbob@worker.test,"Bob\n'
               b'cat@worker.test,Cat\n')
    client.force_login(marketer)
    response = post(client, content)
    done = wait_for(lambda: finished(AudienceImport.objects.get().pk), timeout=60)
    assert done.status == ImportStatus.DONE and done.result["error_count"] == 2
    page = client.get(response["Location"]).content.decode()
    assert "Nothing was imported" in page
    assert "Line 2, column “name”: contains a NUL character" in page
    assert "Line 3: a quote opens a field on line 3 and is never closed" in page
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["kept@worker.test"]
