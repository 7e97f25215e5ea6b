"""Operating characteristics of the 3+3 engine (PROTOCOL section 6), exact and simulated.

Pure module: no Django import. For true DLT probabilities per dose level, gives
the probability that each level is declared MTD, that the trial stops with no
MTD, and the expected numbers of patients and DLTs (in all and per level).

A trial is played cohort by cohort: three patients are enrolled together at the
level the rule names, their DLTs are drawn, and so on until an MTD is declared
or the trial stops. All three patients of a cohort count in the number of
patients, also when the second DLT decided the cohort before the third
patient's window ended (section 6): that patient was enrolled. In either
variant a level receives at most two cohorts (places 1-3 and 4-6).

- `exact_operating_characteristics`: exhaustive enumeration of the binomial
  outcomes of every cohort, as a recursion over the section 6 table with shared
  sub-results; milliseconds even for a dozen levels.
- `engine_operating_characteristics`: the same enumeration, but every step is
  asked of `analysis.escalation.escalation_state` itself (every decision taken as
  signed). It proves that the fast recursion describes the engine the trial
  runs (the tests compare the two to 1e-12); its cost grows about fourfold per
  level, so it is a check, not the everyday tool.
- `simulate_operating_characteristics`: seeded Monte Carlo through the engine.
  The DLT counts are drawn up front with numpy's `default_rng(seed)` and trials
  in the same state advance together, so the engine is asked once per distinct
  state. Each estimate comes with its standard error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import comb, sqrt

import numpy as np
import numpy.typing as npt

from analysis.escalation import (
    COHORT_SIZE,
    TOO_TOXIC_DLTS,
    Decision,
    DltStatus,
    EscalationDesign,
    PatientOutcome,
    Variant,
    escalation_state,
)

# Per level, the DLT counts of the cohorts treated there (0, 1 or 2 cohorts).
_State = tuple[tuple[int, ...], ...]
_MAX_COHORTS_PER_LEVEL = 2


@dataclass(frozen=True)
class OperatingCharacteristics:
    variant: Variant
    true_dlt_probabilities: tuple[float, ...]
    prob_no_mtd: float
    prob_mtd: tuple[float, ...]  # prob_mtd[i] = P(level i+1 declared MTD)
    expected_patients: float
    expected_dlts: float
    expected_patients_per_level: tuple[float, ...]


@dataclass(frozen=True)
class SimulatedCharacteristics:
    variant: Variant
    true_dlt_probabilities: tuple[float, ...]
    n_trials: int
    seed: int
    prob_no_mtd: float
    prob_mtd: tuple[float, ...]
    expected_patients: float
    expected_dlts: float
    se_prob_no_mtd: float
    se_prob_mtd: tuple[float, ...]
    se_expected_patients: float
    se_expected_dlts: float


@dataclass(frozen=True)
class _Action:
    """What the engine says in a state: treat a cohort at `level`, or end."""

    level: int  # the level to treat, or the MTD (0 = stopped, no MTD)
    finished: bool


class _EngineDriver:
    """Asks the engine what to do in each state, once per state."""

    def __init__(self, n_levels: int, variant: Variant) -> None:
        # The doses play no part in the rule; only the number of levels does.
        self.design = EscalationDesign(tuple(float(i) for i in range(1, n_levels + 1)), variant)
        self.n_levels = n_levels
        self._actions: dict[_State, _Action] = {}

    def initial_state(self) -> _State:
        return tuple(() for _ in range(self.n_levels))

    def action(self, state: _State) -> _Action:
        cached = self._actions.get(state)
        if cached is None:
            cached = self._ask_engine(state)
            self._actions[state] = cached
        return cached

    def _ask_engine(self, state: _State) -> _Action:
        patients: list[PatientOutcome] = []
        for level, cohorts in enumerate(state, start=1):
            for dlts in cohorts:
                for k in range(COHORT_SIZE):
                    status = DltStatus.DLT if k < dlts else DltStatus.NO_DLT
                    n = len(patients)
                    patients.append(PatientOutcome(f"p{n}", level, n, status))
        result = escalation_state(self.design, patients)
        if result.decision is Decision.MTD_DECLARED and result.recommended_dose_level is not None:
            return _Action(result.recommended_dose_level, finished=True)
        if result.decision is Decision.STOP_NO_MTD:
            return _Action(0, finished=True)
        # With whole cohorts resolved the engine always asks for a full cohort.
        ((level, slots),) = result.recommended_slots
        if slots != COHORT_SIZE or len(state[level - 1]) >= _MAX_COHORTS_PER_LEVEL:
            raise RuntimeError(f"unexpected engine request {result.recommended_slots}")
        return _Action(level, finished=False)


def _with_cohort(state: _State, level: int, dlts: int) -> _State:
    return tuple(cohorts + (dlts,) if lv == level else cohorts for lv, cohorts in enumerate(state, start=1))


def _binomial(n: int, k: int, p: float) -> float:
    return comb(n, k) * p**k * (1.0 - p) ** (n - k)


def _check_probabilities(probabilities: Sequence[float]) -> tuple[float, ...]:
    ps = tuple(float(p) for p in probabilities)
    if not ps:
        raise ValueError("at least one dose level is needed")
    if any(not 0.0 <= p <= 1.0 for p in ps):
        raise ValueError(f"DLT probabilities must lie in [0, 1]: {ps}")
    return ps


# Expectations from a state to the end of the trial:
# (P(no MTD), P(MTD = level) per level, E[patients per level], E[DLTs]).
_Totals = tuple[float, tuple[float, ...], tuple[float, ...], float]


def _totals_result(variant: Variant, ps: tuple[float, ...], totals: _Totals) -> OperatingCharacteristics:
    no_mtd, mtd, per_level, dlts = totals
    return OperatingCharacteristics(
        variant=variant,
        true_dlt_probabilities=ps,
        prob_no_mtd=no_mtd,
        prob_mtd=mtd,
        expected_patients=sum(per_level),
        expected_dlts=dlts,
        expected_patients_per_level=per_level,
    )


class _Accumulator:
    """Probability-weighted sum of the futures of a state's branches."""

    def __init__(self, n_levels: int) -> None:
        self.no_mtd = 0.0
        self.mtd = [0.0] * n_levels
        self.per_level = [0.0] * n_levels
        self.dlts = 0.0

    def add(self, weight: float, future: _Totals, level: int = 0, n: int = 0, dlts: int = 0) -> None:
        """Add a branch of probability `weight`: `n` patients with `dlts` DLTs
        treated at `level` now, then `future`."""
        no_mtd, mtd, per_level, future_dlts = future
        self.no_mtd += weight * no_mtd
        self.dlts += weight * (dlts + future_dlts)
        for i, (m, q) in enumerate(zip(mtd, per_level, strict=True)):
            self.mtd[i] += weight * m
            self.per_level[i] += weight * q
        if level:
            self.per_level[level - 1] += weight * n

    def totals(self) -> _Totals:
        return (self.no_mtd, tuple(self.mtd), tuple(self.per_level), self.dlts)


def exact_operating_characteristics(
    true_dlt_probabilities: Sequence[float], variant: Variant = Variant.STORER_A
) -> OperatingCharacteristics:
    """Exact operating characteristics: the section 6 table over whole cohorts.

    Exhaustive enumeration of the binomial outcomes of every cohort, organised
    as a recursion whose sub-results are shared: climbing to level d, the only
    history that matters later is, for each level passed, whether it passed
    with 3 patients (0 of 3) or 6 (1 of 6), because six_at_mtd may come back
    down and expand a level that has only 3. storer_a never does (MTD = d-1
    as it stands, the reading the reference numbers confirm), so for it the
    recursion is linear in the number of levels; for six_at_mtd it grows as
    2^levels with a small constant (12 levels: well under a second).
    """
    ps = _check_probabilities(true_dlt_probabilities)
    variant = Variant(variant)
    six = variant is Variant.SIX_AT_MTD
    top = len(ps)
    empty: _Totals = (0.0, (0.0,) * top, (0.0,) * top, 0.0)

    def end(mtd_level: int) -> _Totals:
        mtd = tuple(float(mtd_level == lv) for lv in range(1, top + 1))
        return (float(mtd_level == 0), mtd, empty[2], 0.0)

    cohort = [[_binomial(COHORT_SIZE, x, p) for x in range(COHORT_SIZE + 1)] for p in ps]
    climbs: dict[tuple[int, tuple[bool, ...]], _Totals] = {}
    descents: dict[tuple[int, tuple[bool, ...]], _Totals] = {}

    def too_toxic(level: int, six_passed: tuple[bool, ...]) -> _Totals:
        # storer_a: MTD = d-1 as it stands; six_at_mtd: d-1 needs 6 evaluable.
        if not six:
            return end(level - 1)
        return descend(level - 1, six_passed)

    def climb(level: int, six_passed: tuple[bool, ...]) -> _Totals:
        """Future of a trial that has just opened `level` (levels below passed;
        six_passed[i]: level i+1 passed with 6 patients)."""
        key = (level, six_passed)
        if key in climbs:
            return climbs[key]
        needs_six = six and level == top

        def passed(with_six: bool) -> _Totals:
            if level == top:
                return end(top)
            # Only six_at_mtd comes back down, so only it needs the shapes.
            return climb(level + 1, (*six_passed, with_six) if six else ())

        acc = _Accumulator(top)
        for x1, w1 in enumerate(cohort[level - 1]):
            if x1 >= TOO_TOXIC_DLTS:
                acc.add(w1, too_toxic(level, six_passed), level, COHORT_SIZE, x1)
            elif x1 == 0 and not needs_six:
                acc.add(w1, passed(False), level, COHORT_SIZE, x1)
            else:  # 1 of 3, or 0 of 3 where six are needed: expand to 6
                for x2, w2 in enumerate(cohort[level - 1]):
                    x = x1 + x2
                    future = too_toxic(level, six_passed) if x >= TOO_TOXIC_DLTS else passed(True)
                    acc.add(w1 * w2, future, level, 2 * COHORT_SIZE, x)
        climbs[key] = result = acc.totals()
        return result

    def descend(level: int, six_passed: tuple[bool, ...]) -> _Totals:
        """six_at_mtd: the level above `level` is too toxic."""
        if level == 0:
            return end(0)
        key = (level, six_passed[:level])
        if key in descents:
            return descents[key]
        if six_passed[level - 1]:
            result = end(level)  # already 1 of 6
        else:  # 0 of 3: expand to 6
            acc = _Accumulator(top)
            for x, w in enumerate(cohort[level - 1]):
                future = descend(level - 1, six_passed) if x >= TOO_TOXIC_DLTS else end(level)
                acc.add(w, future, level, COHORT_SIZE, x)
            result = acc.totals()
        descents[key] = result
        return result

    return _totals_result(variant, ps, climb(1, ()))


def engine_operating_characteristics(
    true_dlt_probabilities: Sequence[float], variant: Variant = Variant.STORER_A
) -> OperatingCharacteristics:
    """Exact operating characteristics by exhaustive enumeration through the engine.

    Every cohort outcome is played through `escalation_state`, with the states
    memoised. This is the engine's own behaviour, but its cost grows about
    fourfold per dose level (six_at_mtd, 6 levels: about a second): use it to
    check `exact_operating_characteristics`, which gives the same numbers fast.
    """
    ps = _check_probabilities(true_dlt_probabilities)
    driver = _EngineDriver(len(ps), Variant(variant))
    top = len(ps)
    memo: dict[_State, _Totals] = {}

    def future(state: _State) -> _Totals:
        known = memo.get(state)
        if known is not None:
            return known
        action = driver.action(state)
        if action.finished:
            mtd = tuple(float(action.level == lv) for lv in range(1, top + 1))
            result: _Totals = (float(action.level == 0), mtd, (0.0,) * top, 0.0)
        else:
            acc = _Accumulator(top)
            p = ps[action.level - 1]
            for x in range(COHORT_SIZE + 1):
                w = _binomial(COHORT_SIZE, x, p)
                if w > 0.0:  # never visit impossible states (p = 0 or 1)
                    child = _with_cohort(state, action.level, x)
                    acc.add(w, future(child), action.level, COHORT_SIZE, x)
            result = acc.totals()
        memo[state] = result
        return result

    return _totals_result(driver.design.variant, ps, future(driver.initial_state()))


def simulate_operating_characteristics(
    true_dlt_probabilities: Sequence[float],
    variant: Variant = Variant.STORER_A,
    n_trials: int = 10_000,
    seed: int = 20240101,
) -> SimulatedCharacteristics:
    """Monte Carlo operating characteristics with a fixed seed (reproducible)."""
    ps = _check_probabilities(true_dlt_probabilities)
    if n_trials < 2:
        raise ValueError("at least two simulated trials are needed")
    driver = _EngineDriver(len(ps), Variant(variant))
    n_levels = len(ps)
    rng = np.random.default_rng(seed)
    # Every DLT count a trial could need, drawn up front: cohort j at level l.
    draws: npt.NDArray[np.int64] = rng.binomial(
        COHORT_SIZE,
        np.broadcast_to(np.asarray(ps)[None, :, None], (n_trials, n_levels, 2)),
    )
    outcome = np.zeros(n_trials, dtype=np.int64)  # MTD level, 0 = no MTD
    patients = np.zeros(n_trials, dtype=np.int64)
    dlts = np.zeros(n_trials, dtype=np.int64)

    # Trials sharing a state move together.
    frontier: dict[_State, npt.NDArray[np.int64]] = {driver.initial_state(): np.arange(n_trials, dtype=np.int64)}
    while frontier:
        # Two states of one round may lead to the same state: gather, then join.
        arriving: dict[_State, list[npt.NDArray[np.int64]]] = {}
        for state, trials in frontier.items():
            action = driver.action(state)
            if action.finished:
                outcome[trials] = action.level
                patients[trials] = COHORT_SIZE * sum(len(c) for c in state)
                dlts[trials] = sum(sum(c) for c in state)
                continue
            cohort = len(state[action.level - 1])
            drawn = draws[trials, action.level - 1, cohort]
            for x in range(COHORT_SIZE + 1):
                chosen = trials[drawn == x]
                if chosen.size:
                    child = _with_cohort(state, action.level, x)
                    arriving.setdefault(child, []).append(chosen)
        frontier = {state: np.concatenate(parts) for state, parts in arriving.items()}

    def mean_and_se(values: npt.NDArray[np.float64]) -> tuple[float, float]:
        return float(values.mean()), float(values.std(ddof=1) / sqrt(n_trials))

    no_mtd, se_no_mtd = mean_and_se((outcome == 0).astype(np.float64))
    by_level = [mean_and_se((outcome == lv).astype(np.float64)) for lv in range(1, n_levels + 1)]
    mean_n, se_n = mean_and_se(patients.astype(np.float64))
    mean_dlts, se_dlts = mean_and_se(dlts.astype(np.float64))
    return SimulatedCharacteristics(
        variant=driver.design.variant,
        true_dlt_probabilities=ps,
        n_trials=n_trials,
        seed=seed,
        prob_no_mtd=no_mtd,
        prob_mtd=tuple(m for m, _ in by_level),
        expected_patients=mean_n,
        expected_dlts=mean_dlts,
        se_prob_no_mtd=se_no_mtd,
        se_prob_mtd=tuple(se for _, se in by_level),
        se_expected_patients=se_n,
        se_expected_dlts=se_dlts,
    )
