"""An import in the browser, read by the real worker: an empty file is named on the form,
then a preview follows its progress to the result and is imported for real in one click."""

import re

import pytest
from playwright.sync_api import Page, expect

from audiences.models import AudienceImport, Subscriber
from tests.conftest import PASSWORD

ROWS = "".join(f"reader{i}@browser.test,Reader {i}\r\n" for i in range(2000))
CSV = ("Email Address,Name\r\n" + ROWS).encode()


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_marketer_previews_then_imports_a_file_while_the_page_follows(
        page: Page, live_server, celery_worker, marketer):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(marketer.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("sign in|log in", re.I)).click()
    page.goto(f"{live_server.url}/audiences/imports/")

    file_input = page.get_by_label("CSV file")
    file_input.set_input_files({"name": "empty.csv", "mimeType": "text/csv", "buffer": b""})
    page.get_by_role("button", name="Preview (dry run)").click()
    expect(page.locator("#import-form-card")).to_contain_text("The file is empty (0 bytes)")

    try:
        page.get_by_label("CSV file").set_input_files(
            {"name": "readers.csv", "mimeType": "text/csv", "buffer": CSV})
        page.get_by_role("button", name="Preview (dry run)").click()
        expect(page).to_have_url(re.compile(r"/audiences/imports/\d+/$"))
        status = page.locator("#import-status")
        expect(status).to_contain_text("Preview: nothing has changed yet", timeout=30_000)
        expect(status).to_contain_text("Read as UTF-8; 2,000 rows.")
        assert not Subscriber.objects.exists()

        page.get_by_role("button", name="Import this file").click()
        expect(page.locator("#import-status")).to_contain_text("Imported", timeout=30_000)
        expect(page.locator("#import-status")).not_to_have_attribute("hx-trigger", "every 1s")
        assert Subscriber.objects.count() == 2000
    finally:
        for audience_import in AudienceImport.objects.exclude(file=""):
            audience_import.file.storage.delete(audience_import.file.name)
