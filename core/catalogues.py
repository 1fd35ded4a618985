"""Translation catalogues: extract, check for completeness, compile.

The `.po` files under `locale/` are the source of truth and are committed; `.mo` files are
built from them (by `bin/test` and `bin/demo`) with polib, so no gettext install is needed
to run the product. Extraction (makemessages) does need GNU gettext's xgettext.
"""

import re
from pathlib import Path

import polib
from django.conf import settings
from django.core.management import call_command

LOCALE_DIR = Path(settings.BASE_DIR) / "locale"
LANGUAGES = [code for code, _name in settings.LANGUAGES]
SOURCE_LANGUAGE = "en"

# Plural rules per language (CLDR cardinal categories, as gettext expressions).
PLURAL_FORMS = {
    "en": "nplurals=2; plural=(n != 1);",
    "nl": "nplurals=2; plural=(n != 1);",
    "id": "nplurals=1; plural=0;",
    "pl": "nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<12 || n%100>14) ? 1 : 2);",
    "he": "nplurals=3; plural=(n==1 ? 0 : n==2 ? 1 : 2);",
    "ar": ("nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 "
           ": n%100>=11 ? 4 : 5);"),
}
# What xgettext must not read: the virtualenv, run-time files, tests and benchmarks.
IGNORED = [".venv/*", "var/*", "tests/*", "bench/*", "staticfiles/*", "node_modules/*"]
PLACEHOLDER = re.compile(r"%\([A-Za-z_0-9]+\)[sdifr]|%[sdifr]")
DATE_LINE = re.compile(r'^"POT-Creation-Date: .*\\n"$', re.MULTILINE)


def catalogue_path(language: str, locale_dir: Path = LOCALE_DIR) -> Path:
    return locale_dir / language / "LC_MESSAGES" / "django.po"


def extract() -> None:
    """makemessages for every language, without churning files whose strings did not change."""
    before = {lang: catalogue_path(lang).read_text() if catalogue_path(lang).exists() else ""
              for lang in LANGUAGES}
    call_command("makemessages", locale=LANGUAGES, ignore_patterns=IGNORED, no_obsolete=True,
                 add_location="file", verbosity=0)
    for lang in LANGUAGES:
        path = catalogue_path(lang)
        po = polib.pofile(str(path))
        po.metadata["Language"] = lang
        po.metadata["Plural-Forms"] = PLURAL_FORMS[lang]
        po.metadata_is_fuzzy = []
        if lang == SOURCE_LANGUAGE:
            # English is the source: an entry reads as written unless someone rewords it.
            # A fuzzy entry is msgmerge's guess from a similar old string: start it afresh.
            for entry in po:
                fuzzy = "fuzzy" in entry.flags
                if entry.msgid_plural and (fuzzy or not any(entry.msgstr_plural.values())):
                    entry.msgstr_plural = {0: entry.msgid, 1: entry.msgid_plural}
                elif not entry.msgid_plural and (fuzzy or not entry.msgstr):
                    entry.msgstr = entry.msgid
                if fuzzy:
                    entry.flags.remove("fuzzy")
                    entry.previous_msgid = entry.previous_msgid_plural = None
        po.save(str(path))
        after = path.read_text()
        if DATE_LINE.sub("", after) == DATE_LINE.sub("", before[lang]):
            path.write_text(before[lang])


def catalogue_problems(locale_dir: Path = LOCALE_DIR) -> list[str]:
    """Every untranslated, fuzzy or placeholder-breaking entry, one readable line each."""
    problems: list[str] = []
    for lang in LANGUAGES:
        path = catalogue_path(lang, locale_dir)
        where = path.relative_to(locale_dir.parent) if path.is_relative_to(locale_dir.parent) \
            else path
        if not path.exists():
            problems.append(f"{where}: missing (run manage.py check_catalogues to create it)")
            continue
        po = polib.pofile(str(path))
        nplurals = int(PLURAL_FORMS[lang].split("nplurals=")[1].split(";")[0])
        for entry in po:
            if entry.obsolete:
                continue
            line = f"{where}:{entry.linenum}"
            source = entry.msgid[:70]
            if "fuzzy" in entry.flags:
                problems.append(f"{line}: fuzzy (needs review): {source!r}")
                continue
            if entry.msgid_plural:
                forms = [entry.msgstr_plural.get(i, "") for i in range(nplurals)]
                if not all(forms):
                    problems.append(f"{line}: untranslated plural form(s): {source!r}")
                    continue
                allowed = set(PLACEHOLDER.findall(entry.msgid)) | set(
                    PLACEHOLDER.findall(entry.msgid_plural))
                if any(set(PLACEHOLDER.findall(f)) - allowed for f in forms):
                    problems.append(f"{line}: a plural form has an unknown placeholder: "
                                    f"{source!r}")
            elif not entry.msgstr:
                problems.append(f"{line}: untranslated: {source!r}")
            elif sorted(PLACEHOLDER.findall(entry.msgstr)) != sorted(
                    PLACEHOLDER.findall(entry.msgid)):
                problems.append(f"{line}: placeholders differ from the source: {source!r}")
    return problems


def compile_all(locale_dir: Path = LOCALE_DIR) -> int:
    """Build every `.mo` from its `.po`; returns how many were written."""
    written = 0
    for path in sorted(locale_dir.glob("*/LC_MESSAGES/*.po")):
        mo = path.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= path.stat().st_mtime:
            continue
        polib.pofile(str(path)).save_as_mofile(str(mo))
        written += 1
    return written
