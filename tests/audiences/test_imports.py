import csv
import io
import tracemalloc
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command

from audiences.imports import KINDS, import_csv
from audiences.models import (
    Segment,
    SegmentMembership,
    Subscriber,
    SubscriberStatus,
    SuppressionEntry,
)
from messaging.models import CampaignRecipient
from tests.audiences.factories import campaign, subscriber

pytestmark = pytest.mark.django_db


def run(kind: str, text: str | bytes, *, encoding: str = "auto", **kwargs):
    options = kwargs.pop("options", {})
    data = text.encode("utf-8") if isinstance(text, str) else text
    return import_csv(kind=KINDS[kind](**options), fileobj=io.BytesIO(data),
                      encoding=encoding, **kwargs)


ESP_EXPORT = (
    "\ufeffEmail Address,First Name,Last Name,Language,Member Rating\r\n"
    "Ann@Example.test,Ann,Lee,en,5\r\n"
    "bob@example.test,Bob,,nl,\r\n"
    '"cat@example.test","Cat ""the"" Great",Smith,,2\r\n'
)


def test_esp_export_with_bom_maps_headers_and_keeps_other_columns(db):
    result = run("subscribers", ESP_EXPORT)
    assert result.applied and result.encoding == "UTF-8 (BOM)"
    assert result.counts == {"created": 3, "updated": 0, "unchanged": 0}
    assert ("Email Address", "Email") in result.mapping
    assert result.attribute_columns == ["Member Rating"]
    ann = Subscriber.objects.get(email="Ann@Example.test")
    assert ann.name == "Ann Lee" and ann.locale == "en"
    assert ann.attributes == {"Member Rating": "5"}
    assert Subscriber.objects.get(email="cat@example.test").name == 'Cat "the" Great Smith'
    assert Subscriber.objects.get(email="bob@example.test").attributes == {}


def test_running_the_same_file_again_changes_nothing(db):
    run("subscribers", ESP_EXPORT)
    before = list(Subscriber.objects.values_list("email", "name", "attributes", "updated_at"))
    result = run("subscribers", ESP_EXPORT)
    assert result.counts == {"created": 0, "updated": 0, "unchanged": 3}
    assert list(Subscriber.objects.values_list("email", "name", "attributes",
                                               "updated_at")) == before


def test_latin1_is_refused_when_detecting_and_read_when_chosen(db):
    data = "email;name\nzoe@example.test;Zoë Müller\n".encode("latin-1")
    refused = run("subscribers", data)
    assert refused.rejected and refused.file_problem.startswith(
        "Line 2: byte 0xeb (byte 31 of the file) is not valid UTF-8.")
    assert not Subscriber.objects.exists()
    result = run("subscribers", data, encoding="latin-1")
    assert result.encoding == "Latin-1"
    assert Subscriber.objects.get().name == "Zoë Müller"


def test_forcing_utf8_on_latin1_names_the_line(db):
    data = "email,name\nok@example.test,Ok\nzoe@example.test,Zoë\n".encode("latin-1")
    result = run("subscribers", data, encoding="utf-8")
    assert result.rejected and result.file_problem.startswith("Line 3: byte 0xeb")
    assert not Subscriber.objects.exists()


MIXED = (
    "E-mail,Name,Status\n"
    "good@example.test,Good,subscribed\n"
    "not-an-email,Bad,active\n"
    "other@example.test,Other,sleeping\n"
    "GOOD@example.test,Again,\n"
    "short@example.test\n"
    ",Nobody,\n"
    "fine@example.test,Fine,unsubscribed\n"
)


def test_mixed_bad_rows_reject_the_file_with_a_message_per_row(db):
    subscriber("existing@example.test")
    result = run("subscribers", MIXED)
    assert result.rejected and not result.counts
    assert result.messages() == [
        "Line 3, column “E-mail”: “not-an-email” is not an email address.",
        "Line 4, column “Status”: “sleeping” is not a status we know (active, unsubscribed, "
        "bounced, complained).",
        "Line 5, column “E-mail”: the same address as line 2.",
        "Line 6: expected 3 fields like the header, found 1 (a stray delimiter or quote?).",
        "Line 7, column “E-mail”: the email address is empty.",
    ]
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["existing@example.test"]


def test_skipping_bad_rows_imports_the_rest_and_reports_every_error_in_line_order(db):
    result = run("subscribers", MIXED, skip_bad_rows=True)
    assert result.applied
    assert set(Subscriber.objects.values_list("email", flat=True)) == {
        "good@example.test", "fine@example.test"}
    assert Subscriber.objects.get(email="fine@example.test").status == "unsubscribed"
    report = list(csv.reader(result.report))
    assert report[0] == ["line", "column", "problem"]
    assert [row[0] for row in report[1:]] == ["3", "4", "5", "6", "7"]


def test_dry_run_previews_the_counts_and_changes_nothing(db):
    subscriber("ann@example.test")
    result = run("subscribers", ESP_EXPORT, dry_run=True)
    assert not result.applied and not result.rejected
    assert result.counts == {"created": 2, "updated": 1, "unchanged": 0}
    assert result.sample[0]["Email Address"] == "Ann@Example.test"
    assert Subscriber.objects.count() == 1
    assert Subscriber.objects.get().name == ""


def test_an_import_never_resubscribes_but_records_unsubscribes(db):
    subscriber("gone@example.test", SubscriberStatus.UNSUBSCRIBED)
    subscriber("here@example.test")
    result = run("subscribers", "email,status\ngone@example.test,active\n"
                                "here@example.test,Unsubscribed\n")
    assert result.counts == {"created": 0, "updated": 1, "unchanged": 1}
    assert dict(Subscriber.objects.values_list("email", "status")) == {
        "gone@example.test": "unsubscribed", "here@example.test": "unsubscribed"}


def test_missing_email_column_is_a_clear_file_problem(db):
    result = run("subscribers", "name,city\nAnn,Oslo\n")
    assert result.rejected
    assert result.file_problem.startswith("Line 1: no column for Email")


def test_segment_membership_creates_segments_and_is_idempotent(db):
    subscriber("ann@example.test")
    subscriber("bob@example.test")
    text = "Email,Segment\nANN@example.test,VIP\nbob@example.test,VIP\nbob@example.test,Staff\n"
    result = run("segments", text)
    assert result.counts == {"segments created": 2, "created": 3, "unchanged": 0}
    again = run("segments", text)
    assert again.counts == {"segments created": 0, "created": 0, "unchanged": 3}
    assert SegmentMembership.objects.count() == 3
    assert set(Segment.objects.values_list("name", flat=True)) == {"VIP", "Staff"}


def test_segment_membership_for_unknown_people_is_refused(db):
    subscriber("ann@example.test")
    result = run("segments", "email\nann@example.test\nnew@example.test\n",
                 options={"segment": "VIP"})
    assert result.rejected
    assert result.messages() == ["Line 3, column “email”: no subscriber has this address; "
                                 "import the subscribers first."]
    assert not Segment.objects.exists()


def test_suppression_list_is_stored_lowercase_once(db):
    text = "Email,Reason\nAnn@Example.test,asked\nann@example.test,asked again\nb@x.test,\n"
    result = run("suppression", text, options={"list_name": "Old 2019", "source": "Mailchimp"})
    assert result.counts == {"created": 2, "unchanged": 1}
    assert sorted(SuppressionEntry.objects.values_list("email", flat=True)) == [
        "ann@example.test", "b@x.test"]
    assert run("suppression", text, options={"list_name": "Old 2019"}).counts["created"] == 0


def test_suppression_needs_a_list_name(db):
    result = run("suppression", "email\na@x.test\n")
    assert result.rejected and "suppression list" in result.file_problem


def test_recipient_log_links_people_to_campaigns(db):
    ann, bob = subscriber("ann@example.test"), subscriber("bob@example.test")
    spring = campaign("Spring")
    text = ("Email,Sent At,Message ID,Campaign ID\n"
            "ann@example.test,2026-03-02T09:12:00Z,m-1,spring\n"
            "bob@example.test,2026-03-02 10:12:00+01:00,m-2,spring\n")
    result = run("recipients", text)
    assert result.counts == {"created": 2, "unchanged": 0}
    row = CampaignRecipient.objects.get(subscriber=bob, campaign=spring)
    assert row.sent_at == datetime(2026, 3, 2, 9, 12, tzinfo=UTC)
    assert row.esp_message_id == "m-2"
    assert run("recipients", text).counts == {"created": 0, "unchanged": 2}
    assert CampaignRecipient.objects.filter(subscriber=ann).count() == 1


def test_recipient_log_names_bad_dates_and_unknown_campaigns(db):
    subscriber("ann@example.test")
    text = ("email,sent at,campaign\nann@example.test,yesterday,spring\n"
            "ann@example.test,2026-03-02T09:12:00Z,nope\n")
    campaign("Spring")
    result = run("recipients", text)
    assert result.messages() == [
        "Line 2, column “sent at”: “yesterday” is not a date and time (use ISO 8601, e.g. "
        "2026-03-02T09:12:00Z).",
        "Line 3, column “campaign”: no campaign has this ESP id."]


def test_management_command_dry_run_and_rejection(db, tmp_path, capsys):
    path = tmp_path / "subs.csv"
    path.write_text(ESP_EXPORT, encoding="utf-8")
    call_command("import_csv", "subscribers", str(path), "--dry-run")
    assert "Would import 3 rows" in capsys.readouterr().out
    assert not Subscriber.objects.exists()
    bad = tmp_path / "bad.csv"
    bad.write_text(MIXED)
    report = tmp_path / "errors.csv"
    with pytest.raises(CommandError):
        call_command("import_csv", "subscribers", str(bad), "--errors-out", str(report))
    assert report.read_text().count("\n") == 6
    call_command("import_csv", "subscribers", str(path))
    assert Subscriber.objects.count() == 3


# --- Streaming: memory does not grow with the file -----------------------------------------

def _write_subscribers(path, rows: int) -> None:
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["Email Address", "First Name", "Last Name", "Language", "Score"])
        for i in range(rows):
            writer.writerow([f"person{i}@stream.test", f"First{i}", f"Last{i}", "en", i % 7])


def _peak(path) -> int:
    tracemalloc.start()
    try:
        with open(path, "rb") as fileobj:
            result = import_csv(kind=KINDS["subscribers"](), fileobj=fileobj, dry_run=True)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.counts["created"] > 0
    return peak


def test_peak_memory_does_not_grow_with_file_size(db, tmp_path):
    small, large = tmp_path / "10k.csv", tmp_path / "100k.csv"
    _write_subscribers(small, 10_000)
    _write_subscribers(large, 100_000)
    _peak(small)  # warm-up: imports, translations, query compilation
    peak_small, peak_large = _peak(small), _peak(large)
    print(f"tracemalloc peak: 10k rows {peak_small} B, 100k rows {peak_large} B")
    assert peak_large < peak_small * 1.25 + 256 * 1024, (peak_small, peak_large)
