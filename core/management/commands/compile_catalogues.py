from django.core.management.base import BaseCommand

from core.catalogues import compile_all


class Command(BaseCommand):
    help = "Build the .mo files from locale/*/LC_MESSAGES/*.po (no gettext install needed)."

    def handle(self, *args, **options):
        written = compile_all()
        if options["verbosity"]:
            self.stdout.write(f"{written} catalogue(s) compiled.")
