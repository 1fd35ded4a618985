from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.catalogues import LOCALE_DIR, catalogue_problems, compile_all, extract


class Command(BaseCommand):
    help = ("Extract every translatable string (makemessages), then fail on any entry left "
            "untranslated, fuzzy or with broken placeholders in any language; then compile.")

    def add_arguments(self, parser):
        parser.add_argument("--no-extract", action="store_true",
                            help="Check the catalogues as they are, without makemessages.")
        parser.add_argument("--locale-dir", type=Path, default=LOCALE_DIR,
                            help="Check another copy of locale/ (implies --no-extract).")

    def handle(self, *args, no_extract=False, locale_dir=LOCALE_DIR, **options):
        if not no_extract and locale_dir == LOCALE_DIR:
            extract()
        problems = catalogue_problems(locale_dir)
        if problems:
            shown = "\n".join(problems[:50])
            more = f"\n… and {len(problems) - 50} more" if len(problems) > 50 else ""
            raise CommandError(f"{len(problems)} catalogue entries need work:\n{shown}{more}")
        compile_all(locale_dir)
        self.stdout.write("Catalogues complete in every language.")
