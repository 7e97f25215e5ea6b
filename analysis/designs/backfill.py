"""Backfill (issue 17): patients treated at a cleared dose level below the one the
dose finding stands at, while its cohorts go on. FDA's dosage-optimisation guidance
(Project Optimus, 2023) asks for more than one dose to be characterised; backfill
cohorts give the lower levels more patients without slowing the escalation
(BF-BOIN: Zhao, Yuan et al. 2024, JCO Precision Oncology 8:e2300483).

Pure module: no Django import.

Settings (`BackfillSettings`, the trial's `backfill_*` fields, checked by
trial.configuration.design_problems):
  enabled        backfill is used at all (off by default);
  max_per_level  backfill patients a level may receive in the whole trial (0 = none);
  levels_below   0: every cleared level below the current one takes backfill patients;
                 N >= 1: only the N cleared levels nearest below the current one.

Which levels take backfill patients (`backfill_slots`):
  - the dose finding has started (a current level exists) and has not ended (no final
    decision: MTD declared or stop; after the MTD the trial's expansion at the MTD,
    `expansion_cohort_size`, is what treats further patients);
  - the level is below the current level: the design has escalated past it (every design
    climbs one level at a time from level 1). The current level is the lower of the level
    in effect (signed) and the level the rule now recommends: a level the rule would
    de-escalate to is no longer below the dose finding, and a level the rule would escalate
    past is not cleared until that escalation is signed;
  - the level is not closed by its own data (`closed_levels`): eliminated, or in the
    design's de-escalation zone (BF-BOIN: a backfill dose closes once its observed DLT rate
    reaches the de-escalation boundary), or for the CRM above the target by the model's
    estimate, or for 3+3 too toxic (>= 2 DLTs among all its patients, PROTOCOL s6);
  - within the `levels_below` window (counted among the open cleared levels);
  - it has fewer than `max_per_level` backfill patients (non-evaluable ones are replaced,
    PROTOCOL s5, so they do not use a place).

A backfill patient's DLT counts for his or her level in every design (the service
passes the per-level counts, backfill included, to the design), so it can de-escalate
the dose finding or eliminate levels; the maximum sample size counts the dose-finding
cohorts only (`LevelOutcome.backfill`), and a backfill patient still in the DLT window
does not hold the dose-finding decision.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from analysis.designs.common import LevelOutcome, counts, plural
from analysis.designs.interval import Zone

# PROTOCOL s6: ">= 2 DLT (of 3 or 6)" makes a 3+3 level too toxic (trial.escalation).
THREE_PLUS_THREE_TOXIC_DLTS = 2


@dataclass(frozen=True)
class BackfillSettings:
    enabled: bool = False
    max_per_level: int = 3
    levels_below: int = 0  # 0 = every cleared level below the current one

    def __post_init__(self) -> None:
        if self.max_per_level < 0:
            raise ValueError("max_per_level: cannot be negative")
        if self.levels_below < 0:
            raise ValueError("levels_below: cannot be negative (0 = every cleared level)")


@dataclass(frozen=True)
class BackfillSlot:
    """One dose level's backfill: places open now, backfill patients counted, and why."""

    dose_level: int
    slots: int
    enrolled: int
    reason: str


def closed_levels(
    outcomes: Sequence[LevelOutcome],
    eliminated: Sequence[int] = (),
    *,
    zone: Callable[[int, int], Zone] | None = None,
    estimates: Sequence[float | None] = (),
    target: float | None = None,
    toxic_dlts: int | None = None,
) -> dict[int, str]:
    """The levels closed to backfill by their own data, with the reason in words.

    ``eliminated``: the design's eliminated levels. ``zone``: an interval design's rule
    (BOIN, i3+3, mTPI-2): the level's data in its de-escalation zone close it.
    ``estimates`` with ``target``: the CRM's DLT estimates, a level estimated above the
    target is closed. ``toxic_dlts``: 3+3, a level with this many DLTs is too toxic.
    """
    closed: dict[int, str] = {}
    for level, o in enumerate(outcomes, start=1):
        if level in eliminated:
            closed[level] = f"Level {level} is eliminated (too toxic): no backfill."
        elif toxic_dlts is not None and o.dlts >= toxic_dlts:
            closed[level] = (
                f"Level {level}: {counts(o)}: too toxic (>= {toxic_dlts} DLTs among its patients): no backfill."
            )
        elif zone is not None and o.evaluable and zone(o.evaluable, o.dlts) is Zone.DE_ESCALATE:
            closed[level] = f"Level {level}: {counts(o)}: in the design's de-escalation zone: no more backfill."
        elif target is not None and level <= len(estimates):
            estimate = estimates[level - 1]
            if estimate is not None and o.evaluable and estimate > target:
                closed[level] = (
                    f"Level {level}: estimated DLT rate {estimate:.3f} above the target {target:g}: no more backfill."
                )
    return closed


def backfill_slots(
    settings: BackfillSettings,
    n_levels: int,
    enrolled: Sequence[int],
    current_level: int | None,
    closed: Mapping[int, str],
    ended: str | None = None,
) -> tuple[BackfillSlot, ...]:
    """One `BackfillSlot` per dose level (1..n_levels): the backfill places open now.

    ``enrolled``: backfill patients per level who hold a place (non-evaluable ones left
    out). ``current_level``: where the dose finding stands (see the module doc; None
    before anyone is treated). ``closed``: `closed_levels`. ``ended``: the final decision
    in words when the dose finding has ended (no backfill then), else None.
    """
    if len(enrolled) != n_levels:
        raise ValueError(f"enrolled: one count per dose level is needed ({n_levels}), got {len(enrolled)}")
    if current_level is not None and not 1 <= current_level <= n_levels:
        raise ValueError(f"current_level: {current_level} is not a dose level (1 to {n_levels})")
    cap = settings.max_per_level
    reasons: dict[int, str] = {}
    if not settings.enabled or cap == 0:
        why = "Backfill is off in this trial." if not settings.enabled else "Backfill allows 0 patients per level."
        reasons = dict.fromkeys(range(1, n_levels + 1), why)
    elif ended is not None:
        reasons = dict.fromkeys(range(1, n_levels + 1), f"The dose finding has ended ({ended}): no backfill.")
    elif current_level is None:
        reasons = dict.fromkeys(range(1, n_levels + 1), "Nobody treated yet: no level is cleared for backfill.")
    else:
        window: list[int] = []  # open cleared levels, nearest the current one first
        for level in range(n_levels, 0, -1):
            if level == current_level:
                reasons[level] = f"Level {level} is where the dose finding stands: its cohorts, not backfill."
            elif level > current_level:
                reasons[level] = f"Level {level} is above the current level {current_level}: not cleared."
            elif level in closed:
                reasons[level] = closed[level]
            elif settings.levels_below and len(window) >= settings.levels_below:
                reasons[level] = (
                    f"Only the {plural(settings.levels_below, 'cleared level')} nearest below the current level "
                    f"{current_level} take backfill patients."
                )
            else:
                window.append(level)
    out = []
    for level in range(1, n_levels + 1):
        taken = enrolled[level - 1]
        if level in reasons:
            out.append(BackfillSlot(level, 0, taken, reasons[level]))
            continue
        slots = max(0, cap - taken)
        cleared = f"Level {level} is cleared (below the current level {current_level})"
        if slots:
            why = f"{cleared}: {slots} of {plural(cap, 'backfill place')} open ({taken} taken)."
        else:
            why = f"{cleared}: all {plural(cap, 'backfill place')} taken."
        out.append(BackfillSlot(level, slots, taken, why))
    return tuple(out)


def backfill_current_level(in_effect: int | None, recommended: int | None) -> int | None:
    """The level the dose finding stands at for backfill: the lower of the level in effect
    and the rule's recommended level (None when nobody was treated yet)."""
    if in_effect is None:
        return None
    return in_effect if recommended is None else min(in_effect, recommended)
