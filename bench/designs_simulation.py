"""Simulating BOIN trials through the designs' interface vs a bare loop (issue 17: <= 2x).

Usage: .venv/bin/python bench/designs_simulation.py [N_TRIALS] [REPEATS]
Runs analysis.designs.simulation.simulate on BOIN (target 0.3, cohorts of 3, 30
patients, five levels) for 10,000 trials by default, then the same trials with two
bare loops written by hand: R BOIN's get.oc transcribed to Python/numpy (one trial at
a time, boundary table precomputed, the same uniforms per place drawn the same way,
select.mtd at the end), and the same decisions vectorised over all trials. Checks
that all three give the same trials, and prints the CPU times (best of REPEATS, 5 by
default) and the ratios, measured in this run.
"""

import sys
import time
from collections.abc import Callable
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


def bare_vectorised(n_trials: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same decisions with every trial advancing at once (numpy arrays, table
    lookups), select.mtd per trial at the end."""
    target, cohort, npts, ndose = 0.3, 3, 30, len(TRUE)
    table = Boin(tuple(range(ndose)), IntervalSettings(target)).boundary_table(npts)
    b_e = np.array([0] + [c.escalate_at_most for c in table])
    b_d = np.array([0] + [c.deescalate_at_least for c in table])
    b_elim = np.array([10**6] + [c.eliminate_at_least or 10**6 for c in table])
    rng = np.random.default_rng(SEED)
    rounds = npts // cohort + 1
    uniforms = [rng.random((n_trials, cohort)) for _ in range(rounds)]
    p = np.asarray(TRUE)
    n = np.zeros((n_trials, ndose), dtype=np.int64)
    y = np.zeros((n_trials, ndose), dtype=np.int64)
    elim = np.zeros((n_trials, ndose), dtype=bool)
    d = np.zeros(n_trials, dtype=np.int64)
    live = np.ones(n_trials, dtype=bool)
    stopped = np.zeros(n_trials, dtype=bool)
    rows = np.arange(n_trials)
    for r in range(rounds):
        live &= n.sum(axis=1) < npts
        t = rows[live]
        if t.size == 0:
            break
        dt = d[t]
        y[t, dt] += (uniforms[r][t] < p[dt][:, None]).sum(axis=1)
        n[t, dt] += cohort
        go = n[t].sum(axis=1) < npts
        t, dt = t[go], dt[go]
        nd, yd = n[t, dt], y[t, dt]
        hit = yd >= b_elim[nd]
        elim[t[hit]] |= np.arange(ndose)[None, :] >= dt[hit][:, None]
        low = hit & (dt == 0)
        stopped[t[low]] = True
        live[t[low]] = False
        keep = ~low
        t, dt, nd, yd = t[keep], dt[keep], nd[keep], yd[keep]
        up = (yd <= b_e[nd]) & (dt != ndose - 1)
        up &= ~elim[t, np.minimum(dt + 1, ndose - 1)]
        down = ~((yd <= b_e[nd]) & (dt != ndose - 1)) & (yd >= b_d[nd]) & (dt != 0)
        d[t] = dt + up - down
    selected = np.zeros(n_trials, dtype=np.int64)
    for trial in rows[~stopped]:
        selected[trial] = select_mtd(target, n[trial].tolist(), y[trial].tolist()).mtd or 0
    return n, y, selected


def best_of(repeats: int, run: Callable[[], object]) -> float:
    """The least CPU time of `repeats` runs (the machine is shared: the minimum is the
    run least disturbed by other work)."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    n_trials = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    design = Boin(tuple(range(len(TRUE))), IntervalSettings(0.3, cohort_size=3, max_sample_size=30))
    result = simulate(design, TRUE, n_trials, SEED)
    big_n, big_y, selected = bare_loop(n_trials)
    vec = bare_vectorised(n_trials)
    t_design = best_of(repeats, lambda: simulate(design, TRUE, n_trials, SEED))
    t_bare = best_of(repeats, lambda: bare_loop(n_trials))
    t_vec = best_of(repeats, lambda: bare_vectorised(n_trials))

    def agrees(big_n: np.ndarray, big_y: np.ndarray, selected: np.ndarray) -> bool:
        return bool(
            np.allclose(result.prob_select, [(selected == k).mean() for k in range(1, len(TRUE) + 1)], atol=0)
            and np.allclose(result.patients_per_level, big_n.mean(axis=0), atol=1e-12)
            and np.allclose(result.dlts_per_level, big_y.mean(axis=0), atol=1e-12)
        )

    same = agrees(big_n, big_y, selected) and agrees(*vec)
    print(f"{n_trials} BOIN trials, true DLT probabilities {TRUE}, seed {SEED}")
    print(f"  P(select): {', '.join(f'{v:.4f}' for v in result.prob_select)}; P(no MTD) {result.prob_no_mtd:.4f}")
    print(f"  same trials in all three: {same}")
    calls = result.design_calls
    print(f"  simulate (designs interface): {t_design:.3f} s CPU (best of {repeats}), {calls} distinct states asked")
    print(f"  bare loop (get.oc by hand):   {t_bare:.3f} s CPU")
    print(f"  bare vectorised (all trials at once, select.mtd per trial): {t_vec:.3f} s CPU")
    print(f"  ratio simulate / bare loop: {t_design / t_bare:.2f}")
    print(f"  ratio simulate / bare vectorised: {t_design / t_vec:.2f} (target <= 2)")
    if not same:
        raise SystemExit("the loops disagree")


if __name__ == "__main__":
    main()
