"""Every CDISC dataset of one trial written to a folder: ``<name>.xpt`` (SAS transport
v5) and ``<name>.json`` (Dataset-JSON v1.1) for each dataset of
:data:`exchange.cdisc.metadata.DATASETS` (TS, TA, TE, TV, TI, DM, AE, EX, DS, LB, CM, MH,
RS, SUPPAE, SUPPEX, ADSL, ADAE, ADTTE), and ``define.xml`` (Define-XML 2.1) describing them all. Every dataset is
checked before the first file is written, and the files are written to a temporary
folder and moved in at the end: an error leaves nothing half-written."""

from __future__ import annotations

import datetime
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from django.utils import timezone

from exchange.cdisc import define, mapping, metadata, writers
from exchange.cdisc.selectors import casebook_subjects
from trial.models import Trial

# progress(step, fraction done 0..1): called as the build moves on (the package job's progress bar).
Progress = Callable[[str, float], None]


def _no_progress(step: str, done: float) -> None:
    return None


def package_write(
    trial: Trial,
    site_ids: Sequence[int],
    outdir: Path,
    as_of: datetime.date | None = None,
    progress: Progress = _no_progress,
) -> dict[str, int]:
    """Write the datasets to ``outdir`` (created if missing); returns records per dataset."""
    progress("reading the casebook", 0.0)
    study, subjects = casebook_subjects(trial, site_ids, as_of)
    data = mapping.datasets(study, subjects)
    for name, records in data.items():
        writers.validate(metadata.DATASETS[name], records)
    created = timezone.now().astimezone(datetime.UTC)
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=outdir, prefix=".export-") as staging:
        written: list[str] = []
        for index, (name, records) in enumerate(data.items()):
            progress(f"writing {name}", index / (len(data) + 1))
            spec = metadata.DATASETS[name]
            writers.write_xpt(spec, records, Path(staging) / f"{name.lower()}.xpt")
            with open(Path(staging) / f"{name.lower()}.json", "w", encoding="utf-8") as out:
                writers.write_dataset_json(spec, records, out, study=study.code, count=len(records), created=created)
            written += [f"{name.lower()}.xpt", f"{name.lower()}.json"]
        progress("writing define.xml", len(data) / (len(data) + 1))
        described = {name: (metadata.DATASETS[name], records) for name, records in data.items()}
        (Path(staging) / "define.xml").write_bytes(define.define_xml(study.code, described, created=created))
        written.append("define.xml")
        for filename in written:
            os.replace(Path(staging) / filename, outdir / filename)
    return {name: len(records) for name, records in data.items()}
