import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audiences.models import Subscriber

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


def test_url_name():
    assert reverse("audiences:import-upload") == URL


def test_marketer_previews_then_imports(client, marketer):
    client.force_login(marketer)
    assert client.get(URL).status_code == 200
    preview = upload(client, GOOD, action="preview")
    body = preview.content.decode()
    assert "Preview: nothing has changed yet" in body and "“Email Address” → Email" in body
    assert not Subscriber.objects.exists()
    done = upload(client, GOOD)
    assert "Imported" in done.content.decode()
    assert Subscriber.objects.count() == 2


def test_bad_file_is_refused_with_messages_and_a_report_for_its_uploader(
        client, marketer, deliverability_lead):
    client.force_login(marketer)
    refused = upload(client, BAD, headers={"HX-Request": "true"})
    body = refused.content.decode()
    assert "<html" not in body and "Nothing was imported" in body
    assert "Line 3, column “Email Address”: “not-an-email” is not an email address." in body
    assert not Subscriber.objects.exists()
    skipped = upload(client, BAD, skip_bad_rows="on")
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["ann@example.test"]
    link = next(part.split('"')[0] for part in
                skipped.content.decode().split('href="')[1:] if "/reports/" in part)
    report = client.get(link)
    assert report.status_code == 200
    assert b"not-an-email" in b"".join(report.streaming_content)
    client.force_login(deliverability_lead)
    assert client.get(link).status_code == 404  # someone else's report


def test_read_only_and_anonymous_and_wrong_method(client, manager):
    assert client.get(URL).status_code == 302  # to the login page
    client.force_login(manager)
    assert client.get(URL).status_code == 403
    assert upload(client, GOOD).status_code == 403
    assert not Subscriber.objects.exists()


def test_wrong_method_is_405(client, marketer):
    client.force_login(marketer)
    assert client.put(URL).status_code == 405
    assert client.post("/audiences/imports/reports/1-" + "0" * 32 + ".csv").status_code == 405
