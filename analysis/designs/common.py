"""The one interface every dose-finding design answers (issue 17).

Pure module: no Django import.

Input: the design (a frozen dataclass holding the dose levels and the design's
parameters), the per-level outcomes (`LevelOutcome`: evaluable patients, DLTs among
them, patients still in the DLT window) and the level the last cohort was treated at
(`current_level`; None before anyone is treated).

Output: `DesignResult`, close to analysis.escalation.EscalationState's rule view:
`decision`, `recommended_dose_level`, `open_slots` ((level, places), ...),
`eliminated_levels`, `reasons` in words and, once the trial ends, `mtd_dose_level`.

The decision vocabulary is analysis.escalation.Decision's (docs/api.md) plus `stay`
(the interval designs and the CRM may keep the current level; 3+3 has `expand`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class DesignDecision(StrEnum):
    ENROLL = "enroll"  # nobody treated yet: the first cohort at the starting level
    WAIT = "wait"  # patients still in the DLT window
    ESCALATE = "escalate"
    STAY = "stay"  # treat the next cohort at the current level
    EXPAND = "expand"  # 3+3 only
    DE_ESCALATE = "de_escalate"
    MTD_DECLARED = "mtd_declared"
    STOP_NO_MTD = "stop_no_mtd"


FINAL_DECISIONS: frozenset[DesignDecision] = frozenset({DesignDecision.MTD_DECLARED, DesignDecision.STOP_NO_MTD})


@dataclass(frozen=True)
class LevelOutcome:
    """One dose level's data: evaluable patients (DLT window complete), their DLTs, and
    patients still in the DLT window. Non-evaluable (replaced) patients are left out."""

    evaluable: int
    dlts: int
    pending: int = 0
    # Of the evaluable patients, how many were backfill patients (analysis.designs.backfill):
    # their DLTs count, but the maximum sample size counts the dose-finding cohorts only.
    backfill: int = 0

    def __post_init__(self) -> None:
        if self.evaluable < 0 or self.pending < 0:
            raise ValueError("evaluable: patient counts cannot be negative")
        if not 0 <= self.dlts <= self.evaluable:
            raise ValueError(f"dlts: {self.dlts} DLTs among {self.evaluable} evaluable patients is impossible")
        if not 0 <= self.backfill <= self.evaluable:
            raise ValueError(f"backfill: {self.backfill} backfill patients among {self.evaluable} evaluable")

    @property
    def cohort_patients(self) -> int:
        """Evaluable patients of the dose-finding cohorts (backfill left out)."""
        return self.evaluable - self.backfill


@dataclass(frozen=True)
class DesignResult:
    design: str
    decision: DesignDecision
    recommended_dose_level: int | None  # None only for stop_no_mtd
    open_slots: tuple[tuple[int, int], ...]  # (dose level, places)
    eliminated_levels: tuple[int, ...]
    reasons: tuple[str, ...]
    mtd_dose_level: int | None = None  # set with mtd_declared
    # Per level, the design's estimate of the DLT probability (None where it has none).
    estimates: tuple[float | None, ...] = ()

    @property
    def finished(self) -> bool:
        return self.decision in FINAL_DECISIONS


class Design(Protocol):
    """What pathways.py and simulation.py need of a design."""

    @property
    def name(self) -> str: ...

    @property
    def n_levels(self) -> int: ...

    @property
    def target(self) -> float | None: ...

    def decide(self, outcomes: Sequence[LevelOutcome], current_level: int | None) -> DesignResult: ...


def check_outcomes(n_levels: int, outcomes: Sequence[LevelOutcome], current_level: int | None) -> None:
    """Refuse inputs that cannot describe a trial, naming the field and the rule."""
    if len(outcomes) != n_levels:
        raise ValueError(f"outcomes: one entry per dose level is needed ({n_levels}), got {len(outcomes)}")
    treated = any(o.evaluable or o.pending for o in outcomes)
    if current_level is None:
        if treated:
            raise ValueError("current_level: patients have been treated, so the current level must be given")
        return
    if not 1 <= current_level <= n_levels:
        raise ValueError(f"current_level: {current_level} is not a dose level (1 to {n_levels})")
    if not treated:
        raise ValueError("current_level: nobody has been treated yet, so there is no current level (give None)")


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def counts(o: LevelOutcome) -> str:
    text = f"{o.dlts} DLT{'' if o.dlts == 1 else 's'} in {o.evaluable} evaluable"
    if o.pending:
        text += f", {o.pending} pending"
    return text
