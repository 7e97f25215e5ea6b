"""Operating characteristics of any design by seeded simulation (issue 17).

Pure module: no Django import. A trial is played cohort by cohort: the design is
asked what to do (`decide`), the places it opens are filled at the level it names,
their DLTs are drawn from the true DLT probabilities, and so on until the design
ends the trial (mtd_declared or stop_no_mtd).

Speed: all trials advance together, one cohort per round. In each round the active
trials are grouped by state (per level evaluable patients and DLTs, and the current
level) and the design is asked once per distinct state; answers are kept for the
whole run, so a design is asked far fewer times than there are cohorts. The DLTs of
a round come from one call of numpy's `default_rng(seed).random((n_trials, places))`:
one uniform per place for every trial, a DLT when it is below the true probability
(R's runif(cohortsize) < p); the same seed gives the same trials, and a hand-written
loop drawing the same way (bench/designs_simulation.py) gives the same trials too.

Estimates (each with its Monte Carlo standard error): the probability of selecting
each level and of no MTD, patients and DLTs per level, mean sample size and DLTs,
and the overdose fraction: the mean share of a trial's patients treated at a level
whose true DLT probability is above the threshold (the design's target by default).

`exact_characteristics` gives the same quantities (but the overdose fraction) exactly,
by enumerating every cohort outcome with shared sub-results: the check of the
simulation (and, for 3+3, of the adapter against analysis/operating_characteristics.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analysis.designs.common import Design, DesignDecision, LevelOutcome

IntArray = npt.NDArray[np.int64]
# Called after every round with the share of trials finished (0 to 1); it may raise
# (SimulationCancelled) to stop the run: simulate keeps no state, so nothing is left over.
ProgressCallback = Callable[[float], None]


class SimulationCancelled(Exception):
    """Raised by an `on_progress` callback to stop a run (the planning page's Cancel)."""


@dataclass(frozen=True)
class SimulationResult:
    design: str
    true_dlt_probabilities: tuple[float, ...]
    n_trials: int
    seed: int
    prob_select: tuple[float, ...]  # P(level k+1 selected as MTD)
    prob_no_mtd: float
    patients_per_level: tuple[float, ...]  # mean
    dlts_per_level: tuple[float, ...]  # mean
    mean_patients: float
    mean_dlts: float
    overdose_threshold: float | None
    overdose_fraction: float | None
    se_prob_select: tuple[float, ...]
    se_prob_no_mtd: float
    se_patients_per_level: tuple[float, ...]
    se_mean_patients: float
    se_mean_dlts: float
    design_calls: int  # distinct states the design was asked about
    se_dlts_per_level: tuple[float, ...] = ()
    se_overdose_fraction: float | None = None


@dataclass(frozen=True)
class _Action:
    finished: bool
    level: int  # the level to treat; or the MTD (0 = no MTD) when finished
    slots: int


def _se(x: npt.NDArray[np.float64]) -> float:
    n = len(x)
    return float(np.std(x, ddof=1) / np.sqrt(n)) if n > 1 else 0.0


def _unique_rows(states: IntArray) -> tuple[IntArray, IntArray]:
    """np.unique(states, axis=0, return_inverse=True), through one int64 key per row when
    the rows fit (mixed radix), which is much faster than sorting rows."""
    base = int(states.max()) + 1 if states.size else 1
    if base ** states.shape[1] < 2**62:
        weights = np.array([base**i for i in range(states.shape[1])], dtype=np.int64)
        keys = states @ weights
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        return states[first], inverse.ravel()
    uniq, inverse = np.unique(states, axis=0, return_inverse=True)
    return uniq, inverse.ravel()


def simulate(
    design: Design,
    true_dlt_probabilities: Sequence[float],
    n_trials: int = 10_000,
    seed: int = 17,
    overdose_threshold: float | None = None,
    max_rounds: int = 1_000,
    on_progress: ProgressCallback | None = None,
    max_cohorts: int | None = None,
) -> SimulationResult:
    """Operating characteristics of `design` by simulating `n_trials` trials (module doc).

    `on_progress(done_fraction)`, when given, is called after every round (cohort) with
    the share of the work done, 1.0 after the last round: the share of trials finished,
    or, when `max_cohorts` (the most cohorts a trial can have) is given and larger, the
    share of those rounds played (designs that run every trial to the maximum sample
    size finish all trials in the last round). It does not change the draws or the
    results; whatever it raises ends the run (SimulationCancelled)."""
    k = design.n_levels
    probs = np.asarray(true_dlt_probabilities, dtype=float)
    if probs.shape != (k,):
        raise ValueError(f"true_dlt_probabilities: one per dose level is needed ({k})")
    if np.any(probs < 0) or np.any(probs > 1):
        raise ValueError("true_dlt_probabilities: must lie in [0, 1]")
    if n_trials < 1:
        raise ValueError("n_trials: at least one trial")
    threshold = design.target if overdose_threshold is None else overdose_threshold
    rng = np.random.default_rng(seed)
    n = np.zeros((n_trials, k), dtype=np.int64)
    y = np.zeros((n_trials, k), dtype=np.int64)
    current = np.zeros(n_trials, dtype=np.int64)  # 0 = nobody treated yet
    selected = np.full(n_trials, -1, dtype=np.int64)  # MTD level, 0 = none
    active = np.arange(n_trials)
    cache: dict[tuple[int, ...], _Action] = {}

    def action(row: IntArray) -> _Action:
        key = tuple(row.tolist())
        hit = cache.get(key)
        if hit is None:
            outcomes = [LevelOutcome(key[i], key[k + i]) for i in range(k)]
            cur = key[2 * k] or None
            r = design.decide(outcomes, cur)
            if r.finished:
                mtd = r.mtd_dose_level if r.decision is DesignDecision.MTD_DECLARED else None
                hit = _Action(True, mtd or 0, 0)
            elif not r.open_slots:
                raise RuntimeError(f"{design.name}: no open place and no end in state {key}")
            else:
                level, slots = r.open_slots[0]
                hit = _Action(False, level, slots)
            cache[key] = hit
        return hit

    for played in range(1, max_rounds + 1):
        if active.size == 0:
            break
        states = np.column_stack([n[active], y[active], current[active]])
        uniq, inverse = _unique_rows(states)
        acts = [action(row) for row in uniq]
        fin = np.array([a.finished for a in acts])[inverse]
        lvl = np.array([a.level for a in acts], dtype=np.int64)[inverse]
        slots = np.array([a.slots for a in acts], dtype=np.int64)[inverse]
        # One uniform per place for every trial of the run (active or not), as R's
        # runif(cohortsize) < p: a patient has a DLT when his or her uniform is below p.
        width = int(slots.max()) if slots.size else 0
        u = rng.random((n_trials, width))
        done = active[fin]
        selected[done] = lvl[fin]
        go = ~fin
        trials, levels, places = active[go], lvl[go] - 1, slots[go]
        hits = (u[trials] < probs[levels][:, None]) & (np.arange(width)[None, :] < places[:, None])
        n[trials, levels] += places
        y[trials, levels] += hits.sum(axis=1)
        current[trials] = levels + 1
        active = trials
        if on_progress is not None:
            done = 1.0 - active.size / n_trials
            if max_cohorts and active.size:
                done = max(done, min(played / max_cohorts, 0.99))
            on_progress(done)
    else:
        raise RuntimeError(f"{design.name}: trials still running after {max_rounds} cohorts")

    total_n = n.sum(axis=1).astype(float)
    total_y = y.sum(axis=1).astype(float)
    pick = np.stack([(selected == lv).astype(float) for lv in range(1, k + 1)], axis=1)
    none = (selected == 0).astype(float)
    overdose: float | None = None
    se_overdose: float | None = None
    if threshold is not None:
        over = probs > threshold
        share = np.divide(n[:, over].sum(axis=1), total_n, out=np.zeros(n_trials), where=total_n > 0)
        overdose = float(share.mean())
        se_overdose = _se(share)
    return SimulationResult(
        design=design.name,
        true_dlt_probabilities=tuple(float(p) for p in probs),
        n_trials=n_trials,
        seed=seed,
        prob_select=tuple(float(v) for v in pick.mean(axis=0)),
        prob_no_mtd=float(none.mean()),
        patients_per_level=tuple(float(v) for v in n.mean(axis=0)),
        dlts_per_level=tuple(float(v) for v in y.mean(axis=0)),
        mean_patients=float(total_n.mean()),
        mean_dlts=float(total_y.mean()),
        overdose_threshold=threshold,
        overdose_fraction=overdose,
        se_prob_select=tuple(_se(pick[:, i]) for i in range(k)),
        se_prob_no_mtd=_se(none),
        se_patients_per_level=tuple(_se(n[:, i].astype(float)) for i in range(k)),
        se_mean_patients=_se(total_n),
        se_mean_dlts=_se(total_y),
        design_calls=len(cache),
        se_dlts_per_level=tuple(_se(y[:, i].astype(float)) for i in range(k)),
        se_overdose_fraction=se_overdose,
    )


@dataclass(frozen=True)
class ExactCharacteristics:
    """The same quantities as SimulationResult, without Monte Carlo error (no overdose
    fraction: a mean of ratios does not add up over the branches)."""

    design: str
    true_dlt_probabilities: tuple[float, ...]
    prob_select: tuple[float, ...]
    prob_no_mtd: float
    patients_per_level: tuple[float, ...]
    dlts_per_level: tuple[float, ...]
    mean_patients: float
    mean_dlts: float
    states: int  # distinct states visited


def exact_characteristics(
    design: Design, true_dlt_probabilities: Sequence[float], max_states: int = 200_000
) -> ExactCharacteristics:
    """Exhaustive enumeration of every cohort outcome (binomial probabilities), with the
    results of a state shared by every path reaching it. Fine while the number of
    distinct states stays moderate (BOIN, 5 levels, 30 patients: a few thousand)."""
    k = design.n_levels
    probs = [float(p) for p in true_dlt_probabilities]
    if len(probs) != k or any(not 0 <= p <= 1 for p in probs):
        raise ValueError(f"true_dlt_probabilities: one per dose level ({k}), each in [0, 1]")
    width = 2 * k + 1
    memo: dict[tuple[int, ...], tuple[float, ...]] = {}

    def value(state: tuple[int, ...]) -> tuple[float, ...]:
        # (P(select 1..k), P(no MTD), E patients 1..k, E DLTs 1..k), from this state on
        hit = memo.get(state)
        if hit is not None:
            return hit
        if len(memo) >= max_states:
            raise ValueError(f"max_states: more than {max_states} distinct states; simulate instead")
        outcomes = [LevelOutcome(state[i], state[k + i]) for i in range(k)]
        r = design.decide(outcomes, state[2 * k] or None)
        out = [0.0] * (3 * k + 1)
        if r.finished:
            if r.decision is DesignDecision.MTD_DECLARED and r.mtd_dose_level is not None:
                out[r.mtd_dose_level - 1] = 1.0
            else:
                out[k] = 1.0
        elif not r.open_slots:
            raise RuntimeError(f"{design.name}: no open place and no end in state {state}")
        else:
            level, slots = r.open_slots[0]
            p = probs[level - 1]
            out[k + 1 + level - 1] += slots
            out[2 * k + 1 + level - 1] += slots * p
            for y in range(slots + 1):
                w = math.comb(slots, y) * p**y * (1 - p) ** (slots - y)
                if w == 0:
                    continue
                nxt = list(state)
                nxt[level - 1] += slots
                nxt[k + level - 1] += y
                nxt[2 * k] = level
                sub = value(tuple(nxt))
                for i in range(3 * k + 1):
                    out[i] += w * sub[i]
        result = tuple(out)
        memo[state] = result
        return result

    v = value((0,) * width)
    return ExactCharacteristics(
        design=design.name,
        true_dlt_probabilities=tuple(probs),
        prob_select=v[:k],
        prob_no_mtd=v[k],
        patients_per_level=v[k + 1 : 2 * k + 1],
        dlts_per_level=v[2 * k + 1 :],
        mean_patients=sum(v[k + 1 : 2 * k + 1]),
        mean_dlts=sum(v[2 * k + 1 :]),
        states=len(memo),
    )
