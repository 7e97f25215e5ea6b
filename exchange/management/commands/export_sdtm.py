"""``manage.py export_sdtm CODE OUTDIR``: the trial's CDISC datasets (SDTM DM, AE, EX,
DS with SUPPAE/SUPPEX; ADaM ADSL, ADTTE) as XPT v5 and Dataset-JSON v1.1 files
(docs/exports.md, "CDISC datasets"). Every site of the trial: an operator's command."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from exchange.cdisc.package import package_write
from exchange.cdisc.writers import DatasetError
from trial.models import Trial


class Command(BaseCommand):
    help = "Write a trial's SDTM and ADaM datasets (XPT v5 and Dataset-JSON v1.1) to a folder."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("code", help="the trial's code, e.g. INO-POST-HCT")
        parser.add_argument("outdir", help="folder to write the files to (created if missing)")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        trial = Trial.objects.filter(code=options["code"]).first()
        if trial is None:
            raise CommandError(f"No trial with code {options['code']!r}.")
        outdir = Path(options["outdir"])
        if outdir.exists() and not outdir.is_dir():
            raise CommandError(f"outdir: {outdir} exists and is not a folder.")
        try:
            counts = package_write(trial, list(trial.sites.values_list("pk", flat=True)), outdir)
        except DatasetError as exc:
            raise CommandError(f"Nothing written: {exc}") from exc
        for name, n in counts.items():
            self.stdout.write(f"{name.lower()}.xpt, {name.lower()}.json: {n} records")
