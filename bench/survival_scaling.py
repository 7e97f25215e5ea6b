"""Survival recomputation at 100, 1k, 10k (and 100k) patients, as a ratio to the bare
numerical routine on prepared arrays, so the cost of loading from the database shows.

Usage: .venv/bin/python bench/survival_scaling.py [MAX_PATIENTS]   (DATABASE_URL or SQLite)
Three timings per size, measured in the same run:
  bare     analysis.survival.kaplan_meier + cumulative_incidence on ready-made arrays
  summary  analysis.survival_summary.survival_summary (every curve, CI, subgroup, test)
  full     the Celery task's service: read the database, build inputs, summary
Synthetic patients are bulk-inserted inside a transaction that is rolled back.
"""

import datetime
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

from analysis.endpoints import PatientOutcome as SurvivalOutcome  # noqa: E402
from analysis.endpoints import endpoint_data  # noqa: E402
from analysis.services import _survival  # noqa: E402
from analysis.survival import cumulative_incidence, kaplan_meier  # noqa: E402
from analysis.survival_summary import SurvivalSubject, survival_summary  # noqa: E402
from dosing.models import Cycle  # noqa: E402
from dosing.selectors import first_dose_dates  # noqa: E402
from patients.models import Patient, PatientEvent, Transplant  # noqa: E402
from patients.selectors import outcome_rows  # noqa: E402
from trial.models import DoseLevel, Site, Trial  # noqa: E402


class Rollback(Exception):
    pass


def timed(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def build(n: int, rng: random.Random) -> Trial:
    trial = Trial.objects.create(code=f"BENCH-SURV-{n}", title="bench")
    site = Site.objects.create(trial=trial, code="BS", name="Bench site")
    level = DoseLevel.objects.create(trial=trial, level=1, dose_mg_m2=1)
    hct = datetime.date(2020, 1, 1)
    patients = Patient.objects.bulk_create(
        [
            Patient(
                trial=trial,
                site=site,
                subject_id=f"BS-{i:06d}",
                sex="male",
                birth_year=1970,
                dose_level=level,
                enrolled_on=hct + datetime.timedelta(days=60),
            )
            for i in range(n)
        ],  # fmt: skip
        batch_size=5000,
    )
    Transplant.objects.bulk_create(
        [
            Transplant(
                patient=p,
                date=hct,
                disease_status="cr1",
                conditioning=rng.choice(["mac", "ric"]),
                mrd_before=rng.random() < 0.3,
                mrd_after=False,
            )
            for p in patients
        ],  # fmt: skip
        batch_size=5000,
    )
    Cycle.objects.bulk_create(
        [
            Cycle(patient=p, number=1, due_date=hct, day1=hct + datetime.timedelta(days=70), dose_level=level)
            for p in patients
        ],
        batch_size=5000,
    )
    events = []
    for p in patients:
        follow = rng.randint(160, 1500)
        if rng.random() < 0.15:  # relapses after the first dose (day 70)
            relapse = hct + datetime.timedelta(days=max(80, follow // 2))
            events.append(PatientEvent(patient=p, kind="relapse", date=relapse))
        if rng.random() < 0.2:
            death = hct + datetime.timedelta(days=follow)
            events.append(PatientEvent(patient=p, kind="death", date=death, cause="other"))
        events.append(PatientEvent(patient=p, kind="last_contact", date=hct + datetime.timedelta(days=follow - 1)))
    PatientEvent.objects.bulk_create(events, batch_size=5000)
    return trial


def inputs(trial: Trial) -> list[SurvivalSubject]:
    """What the service builds from the database (timed separately as part of "full")."""
    first = first_dose_dates(trial)
    return [
        SurvivalSubject(
            SurvivalOutcome(
                r["subject_id"], r["hct_date"], first.get(r["patient_id"]), r["relapse_date"], r["death_date"],
                r["last_contact_date"],
            ),
            {"mrd": "positive" if r["mrd_positive"] else "negative", "conditioning": r["conditioning"]},
        )
        for r in outcome_rows(trial)
    ]  # fmt: skip


def arrays(subjects: list[SurvivalSubject]) -> tuple[list[int], list[int], list[int], list[int]]:
    os_ = endpoint_data([s.outcome for s in subjects], "os")
    nrm = endpoint_data([s.outcome for s in subjects], "nrm")
    return list(os_.times_days), list(os_.statuses), list(nrm.times_days), list(nrm.statuses)


def main(max_n: int) -> None:
    rng = random.Random(20261126)
    sizes = [n for n in (100, 1000, 10000, 100000) if n <= max_n]
    print(f"database={connection.vendor}")
    header = ("patients", "bare ms", "summary ms", "full ms", "summary/bare", "full/bare", "full/summary")
    print("{:>9} {:>9} {:>11} {:>9} {:>13} {:>10} {:>13}".format(*header))
    for n in sizes:
        try:
            with transaction.atomic():
                trial = build(n, rng)
                subjects = inputs(trial)
                times, events, nrm_times, nrm_status = arrays(subjects)
                repeats = 5 if n <= 10000 else 1

                def bare(times=times, events=events, nrm_times=nrm_times, nrm_status=nrm_status) -> None:  # type: ignore[no-untyped-def]
                    kaplan_meier(times, events)  # OS
                    kaplan_meier(times, events)  # PFS: same size
                    cumulative_incidence(nrm_times, nrm_status)  # NRM

                t_bare = timed(bare, repeats)
                t_summary = timed(lambda: survival_summary(subjects), repeats)  # noqa: B023
                t_full = timed(lambda: _survival(trial), repeats)  # noqa: B023
                print(
                    f"{n:>9} {t_bare * 1000:>9.1f} {t_summary * 1000:>11.1f} {t_full * 1000:>9.1f} "
                    f"{t_summary / t_bare:>13.1f} {t_full / t_bare:>10.1f} {t_full / t_summary:>13.2f}"
                )
                raise Rollback
        except Rollback:
            pass


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000)
