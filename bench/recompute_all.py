"""Benchmark 4 (issue 11): escalation + survival recomputation of every trial, and its growth.

Usage (after bench/generate.py):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/recompute_all.py

Marks both results of every generated trial stale (the outbox counter, as a data change
does) and runs ``analysis.services.computation_run`` for each: the function the Celery task
``trial_recompute`` calls, here in one process, one trial after the other. Prints the
total, the time per trial by size band, and the growth: the exponent b of time ~ n^b
fitted over all trials (1 = linear in the trial's patients), with the time ratio of the
largest to the smallest trial next to their size ratio. Leaves fresh stored results (the
dashboards of bench/latency.py read them).
"""

import argparse
import math
import time

from common import DEFAULT_DB, database_prepare, django_setup, percentile


def _fit_exponent(sizes: list[int], seconds: list[float]) -> float:
    xs = [math.log(n) for n in sizes]
    ys = [math.log(s) for s in seconds]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=DEFAULT_DB)
    parser.add_argument("--limit", type=int, default=0, help="only the first N trials (0: all)")
    args = parser.parse_args()
    database_prepare(args.db)  # migrations added since the data were generated
    django_setup(args.db)
    from django.db.models import Count, F

    from analysis.services import computation_run
    from safety.models import AdverseEvent
    from trial.models import Trial, TrialComputation

    kinds = [TrialComputation.Kind.ESCALATION, TrialComputation.Kind.SURVIVAL]
    trials = list(Trial.objects.filter(code__startswith="BENCH-T").annotate(n=Count("patients")).order_by("code"))
    if not trials:
        raise SystemExit("No generated trials: run bench/generate.py first.")
    if args.limit:
        trials = trials[: args.limit]
    ae_counts = dict(
        AdverseEvent.objects.filter(patient__trial__in=trials)
        .values_list("patient__trial_id")
        .annotate(n=Count("id"))
        .values_list("patient__trial_id", "n")
    )
    for trial in trials:
        for kind in kinds:
            TrialComputation.objects.get_or_create(trial=trial, kind=kind)
    TrialComputation.objects.filter(trial__in=trials, kind__in=kinds).update(request_seq=F("computed_seq") + 1)
    rows = []  # (patients, escalation s, survival s)
    started = time.perf_counter()
    for trial in trials:
        timing = []
        for kind in kinds:
            t0 = time.perf_counter()
            done = computation_run(trial.pk, kind)
            timing.append(time.perf_counter() - t0)
            assert not done.stale, (trial.code, kind)
        rows.append((trial.n, ae_counts.get(trial.pk, 0), *timing))
    total = time.perf_counter() - started
    sizes = [r[0] for r in rows]
    per_trial = [r[2] + r[3] for r in rows]
    print(f"{len(trials)} trials, {sum(sizes):,} patients, {sum(r[1] for r in rows):,} AEs")
    print(
        f"total {total:.1f} s: escalation {sum(r[2] for r in rows):.1f} s + survival {sum(r[3] for r in rows):.1f} s; "
        f"per trial p50 {percentile(per_trial, 50) * 1000:.0f} ms, max {max(per_trial) * 1000:.0f} ms"
    )
    print(
        f"{'patients':>14s} {'trials':>6s} {'AEs/trial':>9s} {'escalation ms':>13s} {'survival ms':>11s} "
        f"{'ms/patient':>10s}"
    )
    bands = [(0, 30), (30, 50), (50, 100), (100, 200), (200, 10**9)]
    for lo, hi in bands:
        band = [r for r in rows if lo <= r[0] < hi]
        if not band:
            continue
        esc = sum(r[2] for r in band) / len(band) * 1000
        surv = sum(r[3] for r in band) / len(band) * 1000
        per_patient = sum(r[2] + r[3] for r in band) / sum(r[0] for r in band) * 1000
        label = f"{lo}-{hi - 1}" if hi < 10**9 else f">= {lo}"
        print(
            f"{label:>14s} {len(band):6d} {sum(r[1] for r in band) // len(band):9,d} {esc:13.1f} {surv:11.1f} "
            f"{per_patient:10.2f}"
        )
    small = min(rows, key=lambda r: r[0])
    big = max(rows, key=lambda r: r[0])
    esc_b, surv_b = _fit_exponent(sizes, [r[2] for r in rows]), _fit_exponent(sizes, [r[3] for r in rows])
    print(
        f"growth: time ~ n^{_fit_exponent(sizes, per_trial):.2f} (escalation n^{esc_b:.2f}, "
        f"survival n^{surv_b:.2f}); largest/smallest trial: "
        f"size x{big[0] / small[0]:.1f}, time x{(big[2] + big[3]) / (small[2] + small[3]):.1f}"
    )


if __name__ == "__main__":
    main()
