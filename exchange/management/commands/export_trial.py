"""``manage.py export_trial CODE > bundle.json``: the trial bundle (docs/bundle.md)."""

import json

from django.core.management.base import BaseCommand, CommandError

from exchange.bundle import bundle_export
from trial.models import Trial


class Command(BaseCommand):
    help = "Write a trial as a trial-bundle/1 JSON document to standard output."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("code", help="the trial's code, e.g. INO-POST-HCT")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        trial = Trial.objects.filter(code=options["code"]).first()
        if trial is None:
            raise CommandError(f"No trial with code {options['code']!r}.")
        self.stdout.write(json.dumps(bundle_export(trial), indent=1, ensure_ascii=False))
