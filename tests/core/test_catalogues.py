"""The translation catalogues: complete in every language, and the check that says so."""

import shutil

import polib
import pytest
from django.core.management import CommandError, call_command

from core.catalogues import LOCALE_DIR, catalogue_path, catalogue_problems, compile_all


def test_every_catalogue_is_complete_after_extracting_every_string():
    """makemessages, then no untranslated, fuzzy or placeholder-breaking entry anywhere."""
    call_command("check_catalogues")


@pytest.fixture
def locale_copy(tmp_path):
    copy = tmp_path / "locale"
    shutil.copytree(LOCALE_DIR, copy, ignore=shutil.ignore_patterns("*.mo"))
    return copy


def _first_singular(po):
    return next(e for e in po if not e.msgid_plural and e.msgstr and not e.obsolete)


def test_one_untranslated_string_fails_the_check_and_is_named(locale_copy):
    path = catalogue_path("pl", locale_copy)
    po = polib.pofile(str(path))
    entry = _first_singular(po)
    entry.msgstr = ""
    po.save(str(path))

    problems = catalogue_problems(locale_copy)

    assert len(problems) == 1
    assert "locale/pl/LC_MESSAGES/django.po" in problems[0]
    assert "untranslated" in problems[0] and entry.msgid[:40] in problems[0]


def test_fuzzy_entries_and_broken_placeholders_fail_too(locale_copy):
    path = catalogue_path("nl", locale_copy)
    po = polib.pofile(str(path))
    fuzzy = _first_singular(po)
    fuzzy.flags.append("fuzzy")
    broken = next(e for e in po if "%(" in e.msgid and not e.msgid_plural and e.msgstr)
    broken.msgstr = broken.msgstr.replace("%(", "%(x")
    po.save(str(path))

    problems = catalogue_problems(locale_copy)

    assert any("fuzzy" in p and fuzzy.msgid[:40] in p for p in problems)
    assert any("placeholders differ" in p and broken.msgid[:40] in p for p in problems)


def test_the_check_command_fails_with_every_problem_listed(locale_copy):
    path = catalogue_path("ar", locale_copy)
    po = polib.pofile(str(path))
    _first_singular(po).msgstr = ""
    po.save(str(path))
    with pytest.raises(CommandError, match="1 catalogue entries need work"):
        call_command("check_catalogues", locale_dir=locale_copy)


def test_compiled_catalogues_are_built_from_the_po_files(locale_copy):
    assert compile_all(locale_copy) == 6
    assert (locale_copy / "ar" / "LC_MESSAGES" / "django.mo").stat().st_size > 0
    assert compile_all(locale_copy) == 0  # up to date: nothing rebuilt
