"""The 3+3 engine (analysis/escalation.py, PROTOCOL section 6) behind the designs' interface.

Pure module: no Django import. An adapter only: the rule is analysis.escalation's,
unchanged. The per-level counts are turned into patients, level by level, each level's
DLTs first, then its patients without a DLT, then those still in the window; with
whole cohorts that order gives the engine's decisions (a level with 6 patients and 1
DLT passes whichever cohort had it; with 2 DLTs it is too toxic either way).
`current_level` is not needed: the engine replays the history itself.

The result is the rule's view (every decision taken as signed): `decision`,
`recommended_dose_level` and `open_slots` are EscalationState's `decision`,
`recommended_dose_level` and `recommended_slots`; `mtd_dose_level` is set with
mtd_declared. 3+3 eliminates no level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analysis.designs.common import DesignDecision, DesignResult, LevelOutcome, check_outcomes
from analysis.escalation import DltStatus, EscalationDesign, PatientOutcome, Variant, escalation_state


@dataclass(frozen=True)
class ThreePlusThree:
    dose_levels: tuple[float, ...]
    variant: Variant = Variant.STORER_A
    expansion_cohort_size: int = 0

    name = "3+3"

    def __post_init__(self) -> None:
        # EscalationDesign checks the levels and the expansion size.
        EscalationDesign(self.dose_levels, self.variant, self.expansion_cohort_size)

    @property
    def n_levels(self) -> int:
        return len(self.dose_levels)

    @property
    def target(self) -> float | None:
        return None

    def decide(self, outcomes: Sequence[LevelOutcome], current_level: int | None = None) -> DesignResult:
        if len(outcomes) != self.n_levels:
            check_outcomes(self.n_levels, outcomes, None)
        patients: list[PatientOutcome] = []
        for level, o in enumerate(outcomes, start=1):
            statuses = (
                [DltStatus.DLT] * o.dlts + [DltStatus.NO_DLT] * (o.evaluable - o.dlts) + [DltStatus.PENDING] * o.pending
            )
            for status in statuses:
                k = len(patients)
                patients.append(PatientOutcome(f"p{k + 1}", level, k, status))
        design = EscalationDesign(self.dose_levels, self.variant, self.expansion_cohort_size)
        state = escalation_state(design, patients)
        decision = DesignDecision(state.decision.value)
        mtd = state.recommended_dose_level if decision is DesignDecision.MTD_DECLARED else None
        return DesignResult(
            self.name,
            decision,
            state.recommended_dose_level,
            state.recommended_slots,
            (),
            state.reasons,
            mtd,
            tuple(None for _ in outcomes),
        )
