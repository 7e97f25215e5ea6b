"""i3+3 (Liu M, Wang SJ, Ji Y. The i3+3 design for phase I clinical trials.
J Biopharm Stat 2020;30:294-304), as R FIND's get_decision_i3plus3 tabulates it.

Pure module: no Django import.

With the equivalence interval EI = [target - eps1, target + eps2] (0.05 each by
default) and y of n evaluable patients with a DLT at the current level:
  y/n below the EI -> escalate; y/n inside the EI -> stay;
  y/n above the EI -> stay if (y - 1)/n is below the EI, otherwise de-escalate.
The EI is closed, as the paper defines it, in exact terms: y/n on one of its ends is inside
(R compares with floating point, where 0.2 - 0.05 > 0.15, so 3/20 at target 0.2 escalates
there; no case of R FIND's tables for 3 to 12 patients is affected).
Elimination (DU: P(p > target | Beta(1 + y, 1 + n - y)) > 0.95 with n >= 3), the
maximum sample size, n.earlystop and the MTD by isotonic regression are shared with
BOIN (interval.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analysis.designs.common import DesignResult, LevelOutcome
from analysis.designs.interval import IntervalSettings, Zone, interval_decide

# The EI's ends belong to it (the paper's closed interval), whatever floating point makes of
# target -/+ eps: 0.2 - 0.05 is 0.15000000000000002, which would put 3/20 below the EI.
_TOL = 1e-9


@dataclass(frozen=True)
class I3Plus3:
    dose_levels: tuple[float, ...]
    settings: IntervalSettings
    eps1: float = 0.05  # EI lower bound = target - eps1
    eps2: float = 0.05  # EI upper bound = target + eps2

    name = "i3plus3"

    def __post_init__(self) -> None:
        if not self.dose_levels:
            raise ValueError("dose_levels: a design needs at least one dose level")
        phi = self.settings.target
        if not 0.1 * phi <= self.eps1 < phi:
            raise ValueError("eps1: the EI's lower bound must be below the target by 10% of it or more")
        if not 0.1 * phi <= self.eps2 < 1 - phi:
            raise ValueError("eps2: the EI's upper bound must be above the target by 10% of it or more")

    @property
    def n_levels(self) -> int:
        return len(self.dose_levels)

    @property
    def target(self) -> float:
        return self.settings.target

    @property
    def interval(self) -> tuple[float, float]:
        return (self.settings.target - self.eps1, self.settings.target + self.eps2)

    def _where(self, n: int, y: int) -> str:
        low, high = self.interval
        rate = y / n
        return "below" if rate < low - _TOL else "inside" if rate <= high + _TOL else "above"

    def zone(self, n: int, y: int) -> Zone:
        where = self._where(n, y)
        if where == "below":
            return Zone.ESCALATE
        if where == "inside":
            return Zone.STAY
        return Zone.STAY if self._where(n, y - 1) == "below" else Zone.DE_ESCALATE

    def _rule(self, n: int, y: int, z: Zone) -> str:
        low, high = self.interval
        where = self._where(n, y)
        text = f"DLT rate {y}/{n} is {where} the equivalence interval [{low:g}, {high:g}]"
        if where == "above":
            text += f" and ({y}-1)/{n} is {'below it' if self._where(n, y - 1) == 'below' else 'not below it'}"
        word = {Zone.ESCALATE: "escalate", Zone.STAY: "stay", Zone.DE_ESCALATE: "de-escalate"}[z]
        return f"{text}: {word}"

    def decide(self, outcomes: Sequence[LevelOutcome], current_level: int | None) -> DesignResult:
        return interval_decide(self.name, self.n_levels, self.settings, self.zone, self._rule, outcomes, current_level)
