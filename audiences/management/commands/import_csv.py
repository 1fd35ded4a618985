import shutil

from django.core.management.base import BaseCommand, CommandError

from audiences.imports import ENCODINGS, KINDS, import_csv


class Command(BaseCommand):
    help = ("Import a CSV file of subscribers, segment membership, a suppression list or a "
            "campaign recipient log. Streams the file; all-or-nothing unless "
            "--skip-bad-rows; --dry-run shows what would change and changes nothing.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("kind", choices=sorted(KINDS))
        parser.add_argument("path", help="CSV file to read")
        parser.add_argument("--encoding", choices=ENCODINGS, default="auto")
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument("--skip-bad-rows", action="store_true",
                            help="import the good rows and report the bad ones")
        parser.add_argument("--errors-out", help="write every error to this CSV file")
        parser.add_argument("--segment", help="segments: segment for rows without one")
        parser.add_argument("--list", dest="list_name", help="suppression: list name")
        parser.add_argument("--source", default="", help="suppression: where it comes from")
        parser.add_argument("--campaign", type=int,
                            help="recipients: campaign id for rows without one")

    def handle(self, *args, **opts) -> None:
        options = {k: opts[k] for k in ("segment", "list_name", "source", "campaign")
                   if opts.get(k) is not None}
        kind = KINDS[opts["kind"]](**options)
        try:
            fileobj = open(opts["path"], "rb")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise CommandError(f"{opts['path']}: {exc.strerror}") from exc
        with fileobj:
            result = import_csv(kind=kind, fileobj=fileobj, encoding=opts["encoding"],
                                dry_run=opts["dry_run"], skip_bad_rows=opts["skip_bad_rows"])
        if result.report is not None and opts.get("errors_out"):
            with open(opts["errors_out"], "w", encoding="utf-8", newline="") as out:
                shutil.copyfileobj(result.report, out)
        for message in result.messages():
            self.stderr.write(message)
        if result.error_count > len(result.errors):
            self.stderr.write(f"… and {result.error_count - len(result.errors)} more errors.")
        if result.rejected:
            raise CommandError(f"Nothing imported: {result.error_count or 1} problem(s).")
        counts = ", ".join(f"{v} {k}" for k, v in result.counts.items())
        verb = "Would import" if result.dry_run else "Imported"
        self.stdout.write(f"{verb} {result.rows} rows ({result.encoding}): {counts}; "
                          f"{result.bad_rows} bad rows skipped.")
