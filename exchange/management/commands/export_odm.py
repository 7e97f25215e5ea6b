"""``manage.py export_odm CODE FILE``: the trial's casebooks as one CDISC ODM 1.3.2 XML
document, with every record's audit trail and signatures (docs/exports.md, "ODM").
Every site of the trial: an operator's command. ``-`` writes to standard output."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from exchange.odm.selectors import odm_write
from trial.models import Trial


class Command(BaseCommand):
    help = "Write a trial's casebooks with their audit trail as a CDISC ODM 1.3.2 XML file."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("code", help="the trial's code, e.g. INO-POST-HCT")
        parser.add_argument("file", help="the XML file to write (- for standard output)")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        trial = Trial.objects.filter(code=options["code"]).first()
        if trial is None:
            raise CommandError(f"No trial with code {options['code']!r}.")
        site_ids = list(trial.sites.values_list("pk", flat=True))
        if options["file"] == "-":
            odm_write(trial, site_ids, sys.stdout.buffer)
            return
        path = Path(options["file"])
        if path.is_dir() or not path.parent.is_dir():
            raise CommandError(f"file: {path} is a folder or its folder does not exist.")
        # Written beside and renamed: a failed export leaves no half-written file.
        partial = path.with_name(path.name + ".partial")
        try:
            with partial.open("wb") as out:
                size = odm_write(trial, site_ids, out)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        self.stdout.write(f"{path}: {size:,} bytes")
