"""The escalation engine's cost for BOIN and the CRM against 3+3, at up to 10,000 patients (issue 17).

Usage:
    .venv/bin/python bench/designs_engine.py [--repeats R]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/designs_engine.py \\
        --db trialdesk_bench_designs [--repeats R]

1. The engine in process (no database), as bench/escalation_scaling.py measures 3+3: the same
   patient history (cohorts of 3 climbing four levels, a long run at the top level, the last
   cohort in its DLT window) of 100, 1,000 and 10,000 patients through
   ``analysis.escalation.escalation_state`` (3+3) and through ``analysis.services.design_state`` (what
   the recomputation runs for any other design after reading the rows: per-level counts,
   the design's decision, cohorts, slots) with design BOIN and CRM. Least CPU time of R
   runs each; the ratio to 3+3 at the same size, and each design's growth from 100 to 10,000.
2. With ``--db``: the whole recomputation (``analysis.services.computation_run``, what the Celery
   task calls: the database reads of patient_dlt_outcomes and the engine) on the largest
   trial of a bench database made by bench/generate.py (``--trials 1 --patients 10000`` makes
   one trial of 10,000 patients), run as 3+3, then BOIN, then CRM (the trial's design
   switched in place; set back to 3+3 at the end). Wall and CPU time of this process, the
   least of R runs each, ratio to 3+3 (the database's own CPU is not in the CPU figure).
"""

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LEVELS = (0.3, 0.4, 0.5, 0.6)
SKELETON = [0.05, 0.12, 0.25, 0.4]
SIZES = (100, 1000, 10_000)


def history(n: int) -> list[tuple[int, str]]:
    """(dose level, DLT status) per patient in enrolment order: escalation_scaling.py's history."""
    out = []
    for i in range(n):
        level = min(4, i // 3 + 1)
        status = "dlt" if (level == 4 and i % 17 == 0 and i > 40) else "no_dlt"
        if i >= n - 3:
            status = "pending"
        out.append((level, status))
    return out


def best_cpu_seconds(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    """The least CPU time of ``repeats`` runs: the host is shared (load 5-10 on 2 cores), and
    wall time would measure the other processes."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def design_settings(design: str, n: int) -> SimpleNamespace:
    """The trial fields design_state reads; the maximum sample size above n, so the trial is
    still running at its last patient (the decision is taken, not the final MTD)."""
    return SimpleNamespace(
        design=design, target_dlt_rate=0.3 if design == "boin" else 0.25, cohort_size=3, max_sample_size=n + 3,
        boin_p_saf=None, boin_p_tox=None, boin_n_earlystop=100_000, crm_skeleton=SKELETON, crm_model="empiric",
        crm_prior_sd=1.1575836902790226,
    )  # fmt: skip


def in_process(repeats: int) -> None:
    from analysis.escalation import DltStatus, EscalationDesign, PatientOutcome, escalation_state
    from analysis.services import design_state

    three = EscalationDesign(LEVELS)
    measured: dict[tuple[str, int], float] = {}
    for n in SIZES:
        patients = history(n)
        outcomes = [PatientOutcome(f"P{i}", lv, i, DltStatus(st)) for i, (lv, st) in enumerate(patients)]
        rows = [
            {"patient_id": i, "subject_id": f"P{i}", "dose_level": lv, "enrolment_order": (i, i),
             "status": DltStatus(st)}
            for i, (lv, st) in enumerate(patients)
        ]  # fmt: skip
        # One signed decision per complete cohort, as an investigator would have signed them.
        signed = [("escalate", min(4, k + 2)) for k in range(n // 3 - 1)]
        measured[("3+3", n)] = best_cpu_seconds(lambda outcomes=outcomes: escalation_state(three, outcomes), repeats)
        for design in ("boin", "crm"):
            trial = design_settings(design, n)
            state = design_state(trial, LEVELS, rows, signed)  # type: ignore[arg-type]
            assert state["decision"] == "wait", state["decision"]  # the last cohort is in its window
            measured[(design, n)] = best_cpu_seconds(
                lambda trial=trial, rows=rows, signed=signed: design_state(trial, LEVELS, rows, signed),  # type: ignore[arg-type]
                repeats,
            )
    print(f"1. the engine in process, least CPU time of {repeats} runs (ms; ratio to 3+3 at the same size)")
    print(f"{'patients':>9} {'3+3 ms':>9} {'BOIN ms':>9} {'BOIN/3+3':>9} {'CRM ms':>9} {'CRM/3+3':>8}")
    for n in SIZES:
        base = measured[("3+3", n)]
        boin, crm = measured[("boin", n)], measured[("crm", n)]
        print(
            f"{n:>9,} {base * 1000:>9.2f} {boin * 1000:>9.2f} {boin / base:>9.2f} {crm * 1000:>9.2f} {crm / base:>8.2f}"
        )
    for design in ("3+3", "boin", "crm"):
        growth = measured[(design, SIZES[-1])] / measured[(design, SIZES[0])]
        print(f"   {design}: {SIZES[-1] // SIZES[0]}x the patients, {growth:.1f}x the time")


def with_database(db: str, repeats: int) -> None:
    from django.db.models import Count, F

    from analysis.services import computation_run
    from trial.models import Trial, TrialComputation

    trial = Trial.objects.annotate(n=Count("patients")).order_by("-n").first()
    if trial is None:
        raise SystemExit(f"No trial in {db}: run bench/generate.py --db {db} --trials 1 --patients 10000 first.")
    levels = trial.dose_levels.count()
    skeleton = [round(0.05 + 0.4 * k / max(1, levels - 1), 3) for k in range(levels)]
    TrialComputation.objects.get_or_create(trial=trial, kind=TrialComputation.Kind.ESCALATION)
    print(f"2. computation_run (database reads + engine) on {trial.code}: {trial.n:,} patients, {levels} levels;")
    print(f"   least of {repeats} runs after one warm-up (wall ms / CPU ms of this process)")
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    try:
        for design in ("3+3", "boin", "crm"):
            # The trial as generated (3+3), then the same patients under BOIN and the CRM; the
            # maximum sample size at the model's limit (1,000): the designs end at the MTD.
            Trial.objects.filter(pk=trial.pk).update(
                design=design, crm_skeleton=skeleton, target_dlt_rate=0.25 if design == "crm" else 0.3,
                max_sample_size=1000,
            )  # fmt: skip
            runs = []
            for k in range(repeats + 1):
                TrialComputation.objects.filter(trial=trial, kind="escalation").update(
                    request_seq=F("computed_seq") + 1
                )
                w, c = time.perf_counter(), time.process_time()
                done = computation_run(trial.pk, TrialComputation.Kind.ESCALATION)
                if k:  # the first run warms the caches
                    runs.append((time.perf_counter() - w, time.process_time() - c))
                assert not done.stale and done.data["design"] == design
            wall[design], cpu[design] = min(r[0] for r in runs), min(r[1] for r in runs)
            print(
                f"   {design:>5}: {wall[design] * 1000:7.0f} / {cpu[design] * 1000:7.0f} ms "
                f"(decision {done.data['decision']}, level {done.data['recommended_dose_level']})"
            )
    finally:
        Trial.objects.filter(pk=trial.pk).update(design="3+3", crm_skeleton=[], target_dlt_rate=0.3, max_sample_size=30)
    for design in ("boin", "crm"):
        print(f"   {design}/3+3: wall {wall[design] / wall['3+3']:.2f}, CPU {cpu[design] / cpu['3+3']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="", help="a bench database made by bench/generate.py (part 2)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    from common import database_prepare, django_setup

    if args.db:
        database_prepare(args.db)  # migrations added since the data were generated
    django_setup(args.db or "trialdesk_bench_unused")  # part 1 opens no connection
    in_process(args.repeats)
    if args.db:
        with_database(args.db, max(1, args.repeats // 2))


if __name__ == "__main__":
    main()
