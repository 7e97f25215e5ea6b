"""Every CDISC dataset of one trial written to a folder: ``<name>.xpt`` (SAS transport
v5) and ``<name>.json`` (Dataset-JSON v1.1) for each dataset of
:data:`exchange.cdisc.metadata.DATASETS` (TS, TA, TE, TV, TI, DM, AE, EX, DS, LB, CM, MH,
RS, SUPPAE, SUPPEX, ADSL, ADAE, ADTTE), and ``define.xml`` (Define-XML 2.1) describing them all. Every record is
checked as it is staged, before the first file is written, and the files are written to a
temporary folder and moved in at the end: an error leaves nothing half-written."""

from __future__ import annotations

import datetime
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from django.utils import timezone

from exchange.cdisc import define, mapping, metadata, writers
from exchange.cdisc.selectors import BATCH_ROWS, casebook_batches
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
    batch_rows: int = BATCH_ROWS,
) -> dict[str, int]:
    """Write the datasets to ``outdir`` (created if missing); returns records per dataset.

    Streamed, in flat memory whatever the trial's size: the casebook is read a batch of
    patients at a time (:func:`casebook_batches`), each batch mapped one dataset at a
    time and its rows checked and appended to the dataset's staging file
    (:class:`writers.DatasetStage`), which notes what define.xml needs
    (:class:`define.DatasetUsage`); then each dataset's Dataset-JSON and XPT files are
    written from its staging file, and define.xml from the usages."""
    progress("reading the casebook", 0.0)
    study, batches = casebook_batches(trial, site_ids, as_of, batch_rows=batch_rows)
    created = timezone.now().astimezone(datetime.UTC)
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=outdir, prefix=".export-") as staging:
        folder = Path(staging)
        stages = {name: writers.DatasetStage(metadata.DATASETS[name], folder) for name in mapping.MAPPERS}
        usages = {name: define.DatasetUsage(metadata.DATASETS[name]) for name in mapping.MAPPERS}
        counted = _Counter(len(batches), progress)
        for name, records in mapping.datasets_in_batches(study, counted.batches(batches)):
            stages[name].add(records)
            usages[name].add(records)
            del records  # the batch's records of this dataset go before the next dataset's are mapped
        written: list[str] = []
        for index, (name, stage) in enumerate(stages.items()):
            progress(f"writing {name}", 0.5 + 0.5 * index / (len(stages) + 1))
            stage.finish(
                folder / f"{name.lower()}.json", folder / f"{name.lower()}.xpt", study=study.code, created=created
            )
            written += [f"{name.lower()}.xpt", f"{name.lower()}.json"]
        progress("writing define.xml", 0.5 + 0.5 * len(stages) / (len(stages) + 1))
        (folder / "define.xml").write_bytes(define.define_xml(study.code, usages, created=created))
        written.append("define.xml")
        for filename in written:
            os.replace(folder / filename, outdir / filename)
    return {name: stage.count for name, stage in stages.items()}


class _Counter:
    """Passes the batches on, reporting progress (reading and mapping: the first half)."""

    def __init__(self, total: int, progress: Progress):
        self.total, self.progress = total, progress

    def batches(self, batches: Iterable[list[mapping.Subject]]) -> Iterator[list[mapping.Subject]]:
        for index, batch in enumerate(batches):
            self.progress(
                f"reading and mapping patients (batch {index + 1} of {self.total})", 0.5 * index / max(1, self.total)
            )
            yield batch
