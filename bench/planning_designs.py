"""The planning page's simulations (issue 17): what one run costs per design, and what the
progress callback (the worker's progress report and cancel check) adds.

Usage: .venv/bin/python bench/planning_designs.py [N_TRIALS] [REPEATS]
For true DLT probabilities 0.05, 0.12, 0.25, 0.40 (four levels), each design of the page
(3+3, BOIN, i3+3, mTPI-2 with target 0.3, cohorts of 3, N 30; CRM with the skeleton equal
to the truth) is simulated through analysis.designs.comparison.comparison_run, 10,000
trials by default: CPU time per design (best of REPEATS, 3 by default), then the whole
comparison with and without a progress callback (ratio: the callback's cost), and the
3+3 column's agreement with the exact values. Pure: no database (the worker's progress
write is a conditional UPDATE at most every 0.25 s, PROGRESS_WRITE_SECONDS).
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.designs.comparison import DesignChoice, comparison_run  # noqa: E402
from trial.configuration import DesignSpec  # noqa: E402

TRUE = (0.05, 0.12, 0.25, 0.40)
CHOICES = [
    DesignChoice(DesignSpec("3+3")),
    DesignChoice(DesignSpec("boin")),
    DesignChoice(DesignSpec("i3+3")),
    DesignChoice(DesignSpec("mtpi2")),
    DesignChoice(DesignSpec("crm", crm_skeleton=list(TRUE))),
]


def best(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    n_trials = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    print(f"{n_trials:,} trials per design, best of {repeats} (CPU seconds)")
    for choice in CHOICES:
        seconds = best(lambda c=choice: comparison_run(TRUE, [c], n_trials, 17, 0.3), repeats)
        print(f"  {choice.label:<45} {seconds:7.3f} s")
    interval = CHOICES[:4]  # without the CRM, which dominates
    plain = best(lambda: comparison_run(TRUE, interval, n_trials, 17, 0.3), repeats)
    reports: list[float] = []
    followed = best(lambda: comparison_run(TRUE, interval, n_trials, 17, 0.3, reports.append), repeats)
    print(f"3+3, BOIN, i3+3, mTPI-2 together: {plain:.3f} s; with the progress callback {followed:.3f} s: "
          f"ratio {followed / plain:.3f} ({len(reports) // repeats} reports per run)")  # fmt: skip
    exact = comparison_run(TRUE, CHOICES[:1], n_trials, 17, 0.3)[0]["exact"]
    worst = max(r["z"] or 0.0 for r in [*exact["prob_select"], exact["prob_no_mtd"], exact["mean_patients"]])
    print(f"3+3 simulated vs exact: all within 4 SE: {exact['all_agree']} (largest |z| {worst:.2f})")


if __name__ == "__main__":
    main()
