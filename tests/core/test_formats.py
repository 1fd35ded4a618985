"""Dates, times and counts as each language writes them."""

from datetime import UTC, datetime

import pytest
from django.template import Context, Template
from django.utils import formats, translation

WHEN = datetime(2026, 3, 4, 15, 7, tzinfo=UTC)


@pytest.mark.parametrize(("language", "count", "decimal"), [
    ("en", "1,234,567", "12.5"),
    ("ar", "1,234,567", "12.5"),
    ("he", "1,234,567", "12.5"),
    ("pl", "1\xa0234\xa0567", "12,5"),
    ("id", "1.234.567", "12,5"),
    ("nl", "1.234.567", "12,5"),
])
def test_counts_are_grouped_the_way_each_language_writes_them(language, count, decimal):
    with translation.override(language):
        html = Template("{% load numbers %}{{ n|grouped }} {{ x|grouped:1 }} {{ pk }}").render(
            Context({"n": 1234567, "x": 12.5, "pk": 1234567}))
    assert html == f"{count} {decimal} 1234567"  # ids stay plain digits


@pytest.mark.parametrize(("language", "expected"), [
    ("en", "4 Mar 2026, 15:07 UTC"),
    ("pl", "4 marca 2026, 15:07 UTC"),
    ("nl", "4 maart 2026, 15:07 UTC"),
    ("id", "4 Maret 2026, 15.07 UTC"),
])
def test_every_language_shows_day_month_year_24_hour_time_and_the_zone(language, expected):
    with translation.override(language):
        assert formats.date_format(WHEN, "DATETIME_FORMAT") == expected
