"""What the interval designs (BOIN, i3+3, Keyboard/mTPI-2) share.

Pure module: no Django import. Each interval design only says, for n evaluable
patients with y DLTs at the current level, whether the data call for escalation
(E), staying (S) or de-escalation (D); the walk below is the one of R BOIN's
get.oc (BOIN 2.7.2), which Keyboard's get.oc.kb and the i3+3 paper follow:

1. Elimination (Liu & Yuan 2015, section 2.3): a level with n >= 3 and
   P(p > target | Beta(1 + y, 1 + n - y)) > cutoff_eli (0.95) is eliminated, and
   every level above it. The lowest level eliminated: stop, no MTD. Optional extra
   safety: stop when level 1 has n >= 3 and that probability > cutoff_eli - offset.
2. The maximum sample size reached: stop and select the MTD.
3. At the current level d: E escalates to d + 1 unless d is the top level or d + 1
   is eliminated (then stay); D (and an eliminated d) de-escalates to d - 1 unless d
   is level 1 (then stay); S stays.
4. Early stop (n.earlystop): when the current level already has n_earlystop
   patients and the next cohort would stay there, stop and select the MTD.
5. The MTD: `select_mtd`, R BOIN's select.mtd (also Keyboard's select.mtd.kb):
   isotonic regression (PAVA, weights 1/variance of the Beta(0.05, 0.05) posterior)
   of the treated, non-eliminated levels; the level closest to the target, ties
   broken by adding i * 1e-10 to the i-th estimate (so the higher level wins below
   the target and the lower level above it).

A decision is taken once the current cohort is complete: patients still in the DLT
window mean `wait`. The last cohort is cut to the places left under the maximum
sample size (as get.oc does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from scipy.special import betainc

from analysis.designs.common import (
    DesignDecision,
    DesignResult,
    LevelOutcome,
    check_outcomes,
    counts,
    plural,
)


class Zone(StrEnum):
    ESCALATE = "E"
    STAY = "S"
    DE_ESCALATE = "D"


@dataclass(frozen=True)
class IntervalSettings:
    """The parameters every interval design has (R BOIN's names in brackets)."""

    target: float  # [target] the target DLT probability phi
    cohort_size: int = 3  # [cohortsize]
    max_sample_size: int = 30  # [ncohort * cohortsize]
    n_earlystop: int = 100  # [n.earlystop]; 100 = off
    start_level: int = 1  # [startdose]
    cutoff_eli: float = 0.95  # [cutoff.eli]
    extrasafe: bool = False  # [extrasafe]
    offset: float = 0.05  # [offset]

    def __post_init__(self) -> None:
        if not 0.05 <= self.target <= 0.6:
            raise ValueError(f"target: {self.target} is outside 0.05 to 0.6 (R BOIN's range)")
        if self.cohort_size < 1:
            raise ValueError("cohort_size: must be at least 1")
        if self.max_sample_size < self.cohort_size:
            raise ValueError("max_sample_size: must be at least one cohort")
        if self.n_earlystop < 1:
            raise ValueError("n_earlystop: must be at least 1")
        if self.start_level < 1:
            raise ValueError("start_level: dose levels are numbered from 1")
        if not 0.5 < self.cutoff_eli < 1:
            raise ValueError("cutoff_eli: must be between 0.5 and 1")
        if not 0 <= self.offset < 0.5:
            raise ValueError("offset: must be at least 0 and below 0.5")


@lru_cache(maxsize=65536)
def prob_above(target: float, n: int, y: int, a: float = 1.0, b: float = 1.0) -> float:
    """P(p > target) under the Beta(a + y, b + n - y) posterior (R: 1 - pbeta(target, y + a, n - y + b))."""
    return float(1.0 - betainc(y + a, n - y + b, target))


def pava(x: Sequence[float], wt: Sequence[float]) -> list[float]:
    """Weighted pool-adjacent-violators, step for step R BOIN's select.mtd `pava`:
    the first violation is merged first and a merged block takes the weighted mean of
    its current values, so the floating-point results agree with R's."""
    values = list(x)
    n = len(values)
    block = list(range(n))  # block label of each position (R's lvlsets)
    while True:
        i = next((j for j in range(n - 1) if values[j + 1] - values[j] < 0), -1)
        if i < 0:
            return values
        lvl1, lvl2 = block[i], block[i + 1]
        members = [j for j in range(n) if block[j] == lvl1 or block[j] == lvl2]
        pooled = sum(values[j] * wt[j] for j in members) / sum(wt[j] for j in members)
        for j in members:
            values[j] = pooled
            block[j] = lvl1


@dataclass(frozen=True)
class MtdSelection:
    mtd: int | None  # None = no MTD (R's 99)
    estimates: tuple[float | None, ...]  # isotonic estimate per level (None: not treated)
    eliminated_from: int | None  # the lowest eliminated level (it and all above are)
    extrasafe_stop: bool = False  # level 1 too toxic under the extra-safety rule


def select_mtd(
    target: float,
    npts: Sequence[int],
    ntox: Sequence[int],
    cutoff_eli: float = 0.95,
    extrasafe: bool = False,
    offset: float = 0.05,
) -> MtdSelection:
    """R BOIN select.mtd (BOIN 2.7.2, boundMTD = FALSE)."""
    if len(npts) != len(ntox):
        raise ValueError("ntox: one DLT count per dose level is needed")
    elim = next(
        (
            i + 1
            for i, (n, y) in enumerate(zip(npts, ntox, strict=True))
            if n >= 3 and prob_above(target, n, y) > cutoff_eli
        ),
        None,
    )
    safe_stop = extrasafe and npts[0] >= 3 and prob_above(target, npts[0], ntox[0]) > cutoff_eli - offset
    stop = elim == 1 or safe_stop
    treated = [i for i, n in enumerate(npts) if n > 0]
    estimates: list[float | None] = [None] * len(npts)
    iso: list[float] = []
    if treated:
        raw = [(ntox[i] + 0.05) / (npts[i] + 0.1) for i in treated]
        iso = pava(raw, [1 / _var(npts[i], ntox[i]) for i in treated])
        for i, v in zip(treated, iso, strict=True):
            estimates[i] = v
    admissible = [i for i in treated if elim is None or i + 1 < elim]
    if stop or not admissible:
        return MtdSelection(None, tuple(estimates), elim, safe_stop)
    if len(admissible) < len(treated):
        raw = [(ntox[i] + 0.05) / (npts[i] + 0.1) for i in admissible]
        iso = pava(raw, [1 / _var(npts[i], ntox[i]) for i in admissible])
    phat = [v + (k + 1) * 1e-10 for k, v in enumerate(iso)]
    distances = [abs(v - target) for v in phat]
    best = distances.index(min(distances))
    return MtdSelection(admissible[best] + 1, tuple(estimates), elim, safe_stop)


def _var(n: int, y: int) -> float:
    return (y + 0.05) * (n - y + 0.05) / ((n + 0.1) ** 2 * (n + 0.1 + 1))


def interval_decide(
    name: str,
    n_levels: int,
    s: IntervalSettings,
    zone: Callable[[int, int], Zone],
    rule: Callable[[int, int, Zone], str],
    outcomes: Sequence[LevelOutcome],
    current_level: int | None,
) -> DesignResult:
    """The walk of the module doc. `zone(n, y)` is the design's rule, `rule(n, y, zone)`
    says it in words."""
    k = n_levels
    check_outcomes(k, outcomes, current_level)
    if s.start_level > k:
        raise ValueError(f"start_level: {s.start_level} is above the top level {k}")
    reasons: list[str] = []
    npts = [o.evaluable for o in outcomes]
    ntox = [o.dlts for o in outcomes]
    selection = select_mtd(s.target, npts, ntox, s.cutoff_eli, s.extrasafe, s.offset)
    estimates = selection.estimates
    elim = selection.eliminated_from
    eliminated = tuple(range(elim, k + 1)) if elim is not None else ()
    if elim is not None:
        o = outcomes[elim - 1]
        reasons.append(
            f"Level {elim}: {counts(o)}: P(DLT rate > {s.target:g}) = "
            f"{prob_above(s.target, o.evaluable, o.dlts):.3f} > {s.cutoff_eli:g}, so level {elim}"
            f"{' and above are' if elim < k else ' is'} eliminated."
        )

    def result(decision: DesignDecision, level: int | None, slots: int = 0, mtd: int | None = None) -> DesignResult:
        open_slots = ((level, slots),) if level is not None and slots > 0 else ()
        return DesignResult(name, decision, level, open_slots, eliminated, tuple(reasons), mtd, estimates)

    if elim == 1:
        reasons.append("The lowest level is eliminated: stop the trial, no MTD.")
        return result(DesignDecision.STOP_NO_MTD, None)
    if selection.extrasafe_stop:
        o = outcomes[0]
        reasons.append(
            f"Level 1: {counts(o)}: P(DLT rate > {s.target:g}) = {prob_above(s.target, o.evaluable, o.dlts):.3f}"
            f" > {s.cutoff_eli - s.offset:g} (extra safety): stop the trial, no MTD."
        )
        return result(DesignDecision.STOP_NO_MTD, None)
    pending = [(lv, o.pending) for lv, o in enumerate(outcomes, start=1) if o.pending]
    if pending:
        where = ", ".join(f"{plural(p, 'patient')} at level {lv}" for lv, p in pending)
        reasons.append(f"Wait: {where} still in the DLT window; the next decision needs the cohort complete.")
        return result(DesignDecision.WAIT, current_level)
    total = sum(o.cohort_patients for o in outcomes)  # backfill patients come on top
    if current_level is None:
        slots = min(s.cohort_size, s.max_sample_size)
        reasons.append(f"Nobody treated yet: the first cohort ({plural(slots, 'patient')}) at level {s.start_level}.")
        return result(DesignDecision.ENROLL, s.start_level, slots)

    def finish(why: str) -> DesignResult:
        sel = selection
        reasons.append(why)
        if sel.mtd is None:
            reasons.append("No treated level is left that is not eliminated: no MTD.")
            return result(DesignDecision.STOP_NO_MTD, None)
        est = sel.estimates[sel.mtd - 1]
        reasons.append(
            f"MTD: level {sel.mtd}, whose isotonic estimate of the DLT rate ({est:.3f}) is the closest to "
            f"the target {s.target:g} among the treated levels not eliminated."
        )
        return result(DesignDecision.MTD_DECLARED, sel.mtd, mtd=sel.mtd)

    if total >= s.max_sample_size:
        return finish(f"The maximum sample size ({s.max_sample_size}) is reached: the trial ends.")
    d = current_level
    o = outcomes[d - 1]
    if o.evaluable == 0:
        raise ValueError(f"current_level: level {d} has no evaluable patient to decide on")
    z = zone(o.evaluable, o.dlts)
    reasons.append(f"Level {d}: {counts(o)}: {rule(o.evaluable, o.dlts, z)}.")
    if elim is not None and d >= elim:
        z = Zone.DE_ESCALATE
    nxt = d
    if z is Zone.ESCALATE:
        if d == k:
            reasons.append(f"Level {d} is the top level: stay.")
        elif elim is not None and d + 1 >= elim:
            reasons.append(f"Level {d + 1} is eliminated: stay at level {d}.")
        else:
            nxt = d + 1
    elif z is Zone.DE_ESCALATE:
        if d == 1:
            reasons.append("Level 1 is the lowest level: stay.")
        elif elim is not None and elim < d:
            # Only backfill data can eliminate a level below the current one: go below it.
            nxt = elim - 1
            reasons.append(f"Level {elim} and above are eliminated: de-escalate to level {nxt}.")
        else:
            nxt = d - 1
    if nxt == d and o.evaluable >= s.n_earlystop:
        return finish(
            f"Level {d} has {o.evaluable} patients (n.earlystop {s.n_earlystop}) and the next cohort would "
            "stay there: the trial ends."
        )
    slots = min(s.cohort_size, s.max_sample_size - total)
    decision = DesignDecision.ESCALATE if nxt > d else DesignDecision.DE_ESCALATE if nxt < d else DesignDecision.STAY
    reasons.append(f"Next cohort: {plural(slots, 'patient')} at level {nxt}.")
    return result(decision, nxt, slots)
