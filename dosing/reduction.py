"""Dose reduction carry-over (PROTOCOL section 3), as a pure rule.

A reduction carries over to later cycles until an investigator documents a return
to full dose. The documentation is a flag on a cycle (``full_dose_restored``): the
cycles *after* it are given at full dose again, until a new reduction. There is one
reduction step only: a reduced cycle is never reduced further.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CycleReduction:
    number: int
    reduced: bool
    reason: str
    full_dose_restored: bool


@dataclass(frozen=True)
class ReductionInForce:
    reduced: bool
    reason: str  # the reason of the reduction that carries over; "" when none
    since_cycle: int | None  # the cycle whose reduction carries over


NO_REDUCTION = ReductionInForce(False, "", None)


def reduction_in_force(previous: Sequence[CycleReduction]) -> ReductionInForce:
    """Whether the next cycle must be reduced because an earlier reduction carries over."""
    state = NO_REDUCTION
    for cycle in sorted(previous, key=lambda c: c.number):
        if cycle.reduced and not state.reduced:
            state = ReductionInForce(True, cycle.reason, cycle.number)
        if cycle.full_dose_restored:
            state = NO_REDUCTION
    return state
