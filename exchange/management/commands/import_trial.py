"""``manage.py import_trial bundle.json``: create a trial from its bundle, or refuse it
whole, listing every problem by JSON path (nothing is written then)."""

from django.core.management.base import BaseCommand, CommandError

from core.json_limits import json_loads_limited
from exchange.bundle import BundleInvalid, bundle_import


class Command(BaseCommand):
    help = "Import a trial-bundle/1 JSON document (docs/bundle.md); '-' reads standard input."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("path", help="the bundle file, or - for standard input")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        import sys

        try:
            if options["path"] == "-":
                data = json_loads_limited(sys.stdin.read())
            else:
                with open(options["path"], encoding="utf-8") as fh:
                    data = json_loads_limited(fh.read())
        except OSError as exc:
            raise CommandError(f"Cannot read {options['path']}: {exc}") from exc
        except ValueError as exc:  # not JSON, or nested deeper than core.json_limits allows
            raise CommandError(f"{options['path']} is not JSON: {exc}") from exc
        try:
            trial = bundle_import(data)
        except BundleInvalid as exc:
            for problem in exc.problems:
                self.stderr.write(problem)
            raise CommandError(f"Refused: {len(exc.problems)} problem(s); nothing was written.") from exc
        patients = trial.patients.count()
        self.stdout.write(self.style.SUCCESS(f"Imported {trial.code}: {patients} patient(s)."))
