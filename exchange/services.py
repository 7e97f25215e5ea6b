"""Writes of the exchange app: the CDISC package jobs (issue 18, docs/exports.md "CDISC packages").

``cdisc_package_request`` records who asked (audited) and enqueues the build on commit;
``cdisc_package_build`` (the Celery task's body) builds the zip. One open job (queued or
running) per trial: a second request while one is open gets that job back rather than a
second build of the same data (a double click or a client's retry builds once); the
database's partial unique constraint holds the rule against races.

The build is safe to run twice: a worker claims the job with a conditional UPDATE that
writes a new claim token; every later write (progress, outcome) is conditional on that
token, so a redelivered task (acks late: its first worker died) takes the job over and
an older worker that is still running stops at its next step. A failure leaves the job
"failed" with the message and no file; the zip is written under a temporary name and
moved in only when complete.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import logging
import os
import shutil
import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from core.audit import record_create
from exchange.cdisc import conformance, package_report
from exchange.cdisc.package import package_write
from exchange.models import CdiscPackage
from trial import access
from trial.models import Site, Trial

logger = logging.getLogger(__name__)

# A job that has not moved for this long (no progress written) is taken to be lost (its
# message lost with a broker outage, its worker killed): a new request sends it again.
STUCK_AFTER = datetime.timedelta(minutes=15)
CHUNK = 1024 * 1024


class Superseded(Exception):
    """Another worker claimed the job (a redelivery): this one stops, writing nothing."""


def package_root() -> Path:
    return Path(settings.CDISC_PACKAGE_ROOT)


def _requester_role(user: Any, trial: Trial) -> str:
    roles = access.roles_in(user, trial)
    exporting = sorted(r for r in roles if "export" in access.CAPABILITIES[r])
    return exporting[0] if exporting else ""


def cdisc_package_request(trial: Trial, user: Any) -> tuple[CdiscPackage, bool]:
    """Ask for a new package of ``trial``: returns (the job, True) once it is queued, or
    (the open job, False) when one is queued or running already. Capability "export"."""
    if not access.can(user, "export", trial):
        raise PermissionDenied("Building a CDISC package needs the export capability in this trial.")
    with transaction.atomic():
        # The trial's row serialises the requests of one trial (numbering, one open job).
        Trial.objects.select_for_update().only("pk").get(pk=trial.pk)
        current = CdiscPackage.objects.filter(trial=trial, status__in=CdiscPackage.OPEN).first()
        if current is not None:
            if timezone.now() - current.updated_at > STUCK_AFTER:
                transaction.on_commit(lambda: _enqueue(current.pk))
            return current, False
        number = (CdiscPackage.objects.filter(trial=trial).aggregate(n=Max("number"))["n"] or 0) + 1
        package = CdiscPackage(
            trial=trial, number=number, requested_by=user, requested_by_role=_requester_role(user, trial),
            step="queued",
        )  # fmt: skip
        try:
            with transaction.atomic():
                record_create(package, user=user, reason="CDISC package requested")
        except IntegrityError:  # the constraint caught a race the row lock did not (another path)
            return CdiscPackage.objects.get(trial=trial, status__in=CdiscPackage.OPEN), False
        transaction.on_commit(lambda: _enqueue(package.pk))
    return package, True


def _enqueue(package_id: int) -> None:
    """Send the build. With the broker unreachable the job stays queued; a new request
    after STUCK_AFTER sends it again (the request itself succeeded)."""
    from kombu.exceptions import OperationalError

    from exchange.tasks import cdisc_package_build_task

    try:
        cdisc_package_build_task.delay(package_id)
    except OperationalError as exc:
        logger.warning("broker unreachable, CDISC package %s left queued: %s", package_id, exc)


# --- the build (Celery task body) ----------------------------------------------------------


def _claim(package_id: int) -> str | None:
    """Take the job (queued, or running under a worker presumed dead); None when it is
    finished already (a redelivery after the outcome was written: nothing to do)."""
    token = uuid.uuid4().hex
    now = timezone.now()
    taken = CdiscPackage.objects.filter(pk=package_id, status__in=CdiscPackage.OPEN).update(
        status=CdiscPackage.Status.RUNNING, claim=token, started_at=now, updated_at=now,
        progress=0.0, step="starting", error="",
    )  # fmt: skip
    return token if taken else None


def _progress(package_id: int, token: str, step: str, done: float) -> None:
    moved = CdiscPackage.objects.filter(pk=package_id, claim=token).update(
        progress=max(0.0, min(1.0, done)), step=step[:200], updated_at=timezone.now()
    )
    if not moved:
        raise Superseded(package_id)


def _finish(package_id: int, token: str, reason: str, **values: Any) -> bool:
    """Write the outcome, audited (a history row with the reason), if the claim still holds."""
    with transaction.atomic():
        package = CdiscPackage.objects.select_for_update().filter(pk=package_id, claim=token).first()
        if package is None:
            return False
        for name, value in values.items():
            setattr(package, name, value)
        package.finished_at = timezone.now()
        package._change_reason = reason  # type: ignore[attr-defined]
        package.save()
    return True


def _xpt_records(path: Path) -> int:
    """Rows in an XPT file, read back by pyreadstat one column at a time in chunks (XPT v5 has
    no record count in its header: the rows are counted, never held)."""
    import pyreadstat

    _, meta = pyreadstat.read_xport(str(path), metadataonly=True)
    first = meta.column_names[:1]
    chunks = pyreadstat.read_file_in_chunks(pyreadstat.read_xport, str(path), chunksize=100_000, usecols=first)
    return sum(len(frame) for frame, _ in chunks)


def define_xsd() -> Path | None:
    """The Define-XML 2.1 schema that ships with odmlib (CDISC's ODM library), if installed."""
    import importlib.util

    spec = importlib.util.find_spec("odmlib")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "schemas" / "define" / "2.1" / "define2-1-0.xsd"


def conformance_check(folder: Path, counts: dict[str, int], package: str) -> dict[str, Any]:
    """The conformance report of the datasets written to ``folder``: read back from their
    Dataset-JSON files, the SDTMIG checks of exchange.cdisc.conformance over them, and the
    file checks of exchange.cdisc.package_report (record counts, define.xml's schema)."""
    read = [
        package_report.dataset_open(name, folder / f"{name.lower()}.json", _xpt_records(folder / f"{name.lower()}.xpt"))
        for name in counts
    ]
    define = package_report.define_problems(folder / "define.xml", define_xsd())
    # Streamed: the findings are counted into the report's groups as they come, never held.
    findings = itertools.chain(
        conformance.findings({d.name: d.records for d in read}),
        (f for d in read for f in d.count_findings()),  # after the checks: each dataset has been read once
        package_report.define_findings(define or []),
    )
    return package_report.report(
        package_report.RowsRead(read),
        findings,
        define_checked=define is not None,
        package=package,
        created=timezone.now().astimezone(datetime.UTC),
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cdisc_package_build(package_id: int) -> str:
    """Build the job's zip; returns its outcome ("done", "failed", "superseded" or
    "nothing to do"). Never raises for a build error: the job says "failed" with why."""
    token = _claim(package_id)
    if token is None:
        return "nothing to do"
    package = CdiscPackage.objects.select_related("trial").get(pk=package_id)
    trial = package.trial
    # The package holds every site of the trial: "export" is trial-wide (sponsor, investigator).
    site_ids = list(Site.objects.filter(trial=trial).values_list("pk", flat=True))
    root = package_root()
    folder = root / f"trial-{trial.pk}"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{trial.code}-cdisc-v{package.number}-{token[:8]}.zip"
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".build-"))
    try:

        def progress(step: str, done: float) -> None:
            _progress(package_id, token, step, 0.8 * done)

        counts = package_write(trial, site_ids, staging / "datasets", progress=progress)
        _progress(package_id, token, "checking conformance", 0.8)
        report = conformance_check(staging / "datasets", counts, package.download_name)
        (staging / "datasets" / "conformance.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
        (staging / "datasets" / "conformance.txt").write_text(package_report.report_text(report), encoding="utf-8")
        _progress(package_id, token, "zipping", 0.9)
        partial = staging / "package.zip"
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path in sorted((staging / "datasets").iterdir()):
                zf.write(path, arcname=path.name)  # read and deflated in chunks, never whole in memory
        os.replace(partial, final)
        summary = {k: report[k] for k in ("errors", "warnings", "datasets", "checks", "core")}
        summary["findings"] = report["findings"][:20]
        done = _finish(
            package_id, token, "CDISC package built",
            status=CdiscPackage.Status.DONE, progress=1.0, step="done",
            file_name=str(final.relative_to(root)), size=final.stat().st_size, sha256=_sha256(final),
            dataset_counts=counts, conformance=summary,
        )  # fmt: skip
        if not done:
            final.unlink(missing_ok=True)
            return "superseded"
        return "done"
    except Superseded:
        final.unlink(missing_ok=True)
        return "superseded"
    except Exception as exc:  # any build error: the job says failed, with the message; nothing kept
        logger.exception("CDISC package %s failed", package_id)
        final.unlink(missing_ok=True)
        message = f"{type(exc).__name__}: {exc}"[:2000]
        _finish(package_id, token, "CDISC package build failed", status=CdiscPackage.Status.FAILED, error=message)
        return "failed"
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def cdisc_package_path(package: CdiscPackage) -> Path | None:
    """The built zip of ``package`` on disk, or None (not built, or the file is gone)."""
    if package.status != CdiscPackage.Status.DONE or not package.file_name:
        return None
    path = (package_root() / package.file_name).resolve()
    if package_root().resolve() not in path.parents or not path.is_file():
        return None
    return path
