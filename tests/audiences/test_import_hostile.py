"""Files that used to end in a bare 500 (issue 12): other encodings, NUL bytes, huge fields
and lines, quotes that never close. Each gives a message naming where, never an exception,
and nothing already stored is touched when the file is refused."""

import codecs
import io
import tracemalloc

import pytest

from audiences.imports import KINDS, import_csv
from audiences.imports.engine import neutralise_cell
from audiences.models import Subscriber
from tests.audiences.factories import subscriber

pytestmark = pytest.mark.django_db


def run(data: bytes, **kwargs):
    return import_csv(kind=KINDS["subscribers"](), fileobj=io.BytesIO(data), **kwargs)


TEXT = ("Email Address,First Name,Last Name\r\n"
        "zoe@example.test,Zoë,Müller\r\nli@example.test,李,王\r\n")


@pytest.mark.parametrize(("codec", "bom", "label"), [
    ("utf-16-le", codecs.BOM_UTF16_LE, "UTF-16 LE"),
    ("utf-16-be", codecs.BOM_UTF16_BE, "UTF-16 BE"),
])
def test_utf16_with_a_bom_is_detected_and_imported(codec, bom, label):
    result = run(bom + TEXT.encode(codec))
    assert result.applied and result.encoding == label
    assert result.counts == {"created": 2, "updated": 0, "unchanged": 0}
    assert dict(Subscriber.objects.values_list("email", "name")) == {
        "zoe@example.test": "Zoë Müller", "li@example.test": "李 王"}


def test_utf16_without_a_bom_is_refused_with_a_hint():
    subscriber("kept@example.test")
    result = run(TEXT.encode("utf-16-le"))
    assert result.rejected
    assert result.file_problem == (
        "Line 1: every other byte is NUL, as in UTF-16 without a byte-order mark. Save the "
        "file as UTF-8 (or as UTF-16 with a byte-order mark).")
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["kept@example.test"]


def test_nul_bytes_in_the_header_refuse_the_file():
    result = run(b"email,na\x00me\nann@example.test,Ann\n")
    assert result.file_problem.startswith("Line 1: the header contains NUL bytes.")


def test_invalid_bytes_name_the_line_and_the_byte():
    data = b"email,name\nann@example.test,Ann\n" + b"bob@example.test,B\xffb\n"
    result = run(data)
    assert result.rejected and not Subscriber.objects.exists()
    assert result.file_problem.startswith(
        "Line 3: byte 0xff (byte 51 of the file) is not valid UTF-8.")


def test_an_invalid_byte_far_into_the_file_names_its_line():
    rows = b"".join(b"p%d@example.test,P\n" % i for i in range(20_000))
    result = run(b"email,name\n" + rows + b"late@example.test,L\xe9\n")
    assert result.file_problem.startswith("Line 20002: byte 0xe9 (byte ")


def test_nul_bytes_are_a_row_error_not_a_500():
    data = b"email,name\nann@example.test,A\x00nn\nbob@example.test,Bob\n"
    refused = run(data)
    assert refused.rejected and not Subscriber.objects.exists()
    assert refused.messages() == [
        "Line 2, column “name”: contains a NUL character (byte 0x00), which cannot be "
        "stored; remove it."]
    skipped = run(data, skip_bad_rows=True)
    assert skipped.applied and skipped.bad_rows == 1
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["bob@example.test"]


def test_very_long_fields_are_row_errors_with_their_length():
    kept = "x" * 2000
    huge = "y" * 200_000
    data = (f"email,name,notes\nann@example.test,Ann,{kept}\nbob@example.test,{huge},\n"
            f"cat@example.test,Cat,short\n").encode()
    result = run(data, skip_bad_rows=True)
    assert result.messages() == [
        "Line 2, column “notes”: 2,000 characters long; at most 1,000 are accepted.",
        "Line 3: a field is longer than 131,072 characters; the row was skipped."]
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["cat@example.test"]
    assert len(result.errors[0].problem) < 100  # the value is not echoed back


def test_a_huge_line_is_skipped_while_read_with_flat_memory():
    row = b"bob@example.test," + b"z" * 8_000_000 + b"\n"
    data = b"email,name\n" + row + b"cat@example.test,Cat\n"
    tracemalloc.start()
    try:
        result = run(data, skip_bad_rows=True)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.messages() == [
        "Line 2: the line is longer than 1,048,576 characters; it was skipped."]
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["cat@example.test"]
    assert peak < 4 * 1024 * 1024, peak  # the 8 MB line never sits in memory


def test_a_file_that_is_one_huge_line_is_refused_as_a_whole():
    result = run(b"email," + b"q" * 5_000_000)
    assert result.file_problem == ("Line 1: the header line is longer than 1,048,576 "
                                   "characters; is this a CSV file?")


def test_an_unclosed_quote_is_reported_on_its_line_and_the_next_rows_survive():
    data = (b'email,name\n'
            b'ann@example.test,"Ann\n'
            b'bob@example.test,Bob\n'
            b'cat@example.test,"Cat"\n'
            b'dan@example.test,"Dan\n'
            b'Smith"\n')  # a real line break inside quotes stays one value
    refused = run(data)
    assert refused.rejected and refused.messages() == [
        "Line 2: a quote opens a field on line 2 and is never closed; the lines after it "
        "were read on their own."]
    result = run(data, skip_bad_rows=True)
    assert result.rows == 4 and result.bad_rows == 1
    assert dict(Subscriber.objects.values_list("email", "name")) == {
        "bob@example.test": "Bob", "cat@example.test": "Cat",
        "dan@example.test": "Dan\nSmith"}


def test_an_unclosed_quote_at_the_end_and_a_quote_followed_by_text():
    data = b'email,name\nann@example.test,"A"nn\nbob@example.test,Bob\ncat@example.test,"Cat\n'
    result = run(data, skip_bad_rows=True)
    assert result.messages() == [
        "Line 2: a quote closes a field and more text follows it; write a quote inside a "
        "quoted field as two quotes (\"\").",
        "Line 4: a quote opens a field on line 4 and is never closed; the lines after it "
        "were read on their own."]
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["bob@example.test"]


def test_an_unclosed_quote_does_not_swallow_a_large_file():
    rows = b"".join(b"p%d@example.test,P\n" % i for i in range(30_000))
    result = run(b'email,name\nann@example.test,"Ann\n' + rows, skip_bad_rows=True)
    assert result.bad_rows == 1 and result.errors[0].line == 2
    assert Subscriber.objects.count() == 30_000


def test_old_mac_line_endings_are_lines():
    result = run(b"email,name\rann@example.test,Ann\rbob@example.test,Bob\r")
    assert result.applied and result.counts["created"] == 2


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"])
def test_report_cells_that_would_be_formulas_are_quoted(value):
    assert neutralise_cell(value) == "'" + value
    assert neutralise_cell("ann@example.test") == "ann@example.test"
    assert neutralise_cell(12) == 12
