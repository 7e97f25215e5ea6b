"""Simulating BOIN trials through the designs' interface vs a bare loop (issue 17: <= 2x).

Usage: .venv/bin/python bench/designs_simulation.py [N_TRIALS]
Runs analysis.designs.simulation.simulate on BOIN (target 0.3, cohorts of 3, 30
patients, five levels) for 10,000 trials by default, then the same trials with a bare
loop written by hand: R BOIN's get.oc transcribed to Python/numpy (one trial at a
time, boundary table precomputed, the same uniforms per place drawn the same way,
select.mtd at the end). Checks that both give the same trials, and prints both CPU
times and their ratio, measured in this run.
"""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.designs.boin import Boin  # noqa: E402
from analysis.designs.interval import IntervalSettings, select_mtd  # noqa: E402
from analysis.designs.simulation import simulate  # noqa: E402

TRUE = (0.05, 0.15, 0.30, 0.45, 0.60)
SEED = 2026


def bare_loop(n_trials: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """get.oc's loop: per trial, cohort by cohort; returns N, Y and the selected MTD (0: none)."""
    target, cohort, npts, ndose = 0.3, 3, 30, len(TRUE)
    design = Boin(tuple(range(ndose)), IntervalSettings(target))
    table = design.boundary_table(npts)
    b_e = [0] + [c.escalate_at_most for c in table]
    b_d = [0] + [c.deescalate_at_least for c in table]
    b_elim = [None] + [c.eliminate_at_least for c in table]
    rng = np.random.default_rng(SEED)
    rounds = npts // cohort + 1
    # The simulator draws, each round, one uniform per place for every trial.
    uniforms = [rng.random((n_trials, cohort)) for _ in range(rounds)]
    p = np.asarray(TRUE)
    big_n = np.zeros((n_trials, ndose), dtype=np.int64)
    big_y = np.zeros((n_trials, ndose), dtype=np.int64)
    selected = np.zeros(n_trials, dtype=np.int64)
    for trial in range(n_trials):
        n = [0] * ndose
        y = [0] * ndose
        elim = [False] * ndose
        d = 0
        stopped = False
        for r in range(rounds):
            if sum(n) >= npts:
                break
            y[d] += int((uniforms[r][trial] < p[d]).sum())
            n[d] += cohort
            if sum(n) >= npts:
                break
            e = b_elim[n[d]]
            if e is not None and y[d] >= e:
                for j in range(d, ndose):
                    elim[j] = True
                if d == 0:
                    stopped = True
                    break
            if y[d] <= b_e[n[d]] and d != ndose - 1:
                if not elim[d + 1]:
                    d += 1
            elif y[d] >= b_d[n[d]] and d != 0:
                d -= 1
        big_n[trial] = n
        big_y[trial] = y
        if not stopped:
            selected[trial] = select_mtd(target, n, y).mtd or 0
    return big_n, big_y, selected


def main() -> None:
    n_trials = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    design = Boin(tuple(range(len(TRUE))), IntervalSettings(0.3, cohort_size=3, max_sample_size=30))
    start = time.process_time()
    result = simulate(design, TRUE, n_trials, SEED)
    t_design = time.process_time() - start
    start = time.process_time()
    big_n, big_y, selected = bare_loop(n_trials)
    t_bare = time.process_time() - start
    same = (
        np.allclose(result.prob_select, [(selected == k).mean() for k in range(1, len(TRUE) + 1)], atol=0)
        and np.allclose(result.patients_per_level, big_n.mean(axis=0), atol=1e-12)
        and np.allclose(result.dlts_per_level, big_y.mean(axis=0), atol=1e-12)
    )
    print(f"{n_trials} BOIN trials, true DLT probabilities {TRUE}, seed {SEED}")
    print(f"  P(select): {', '.join(f'{v:.4f}' for v in result.prob_select)}; P(no MTD) {result.prob_no_mtd:.4f}")
    print(f"  same trials in both: {same}")
    print(f"  simulate (designs interface): {t_design:.3f} s CPU, {result.design_calls} distinct states asked")
    print(f"  bare loop (get.oc by hand):   {t_bare:.3f} s CPU")
    print(f"  ratio simulate / bare loop: {t_design / t_bare:.2f} (target <= 2)")
    if not same:
        raise SystemExit("the two loops disagree")


if __name__ == "__main__":
    main()
