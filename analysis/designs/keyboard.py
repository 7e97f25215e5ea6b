"""Keyboard (Yan F, Mandrekar SJ, Yuan Y. Clin Cancer Res 2017;23:3994-4003), which is
mTPI-2 (Guo W, Wang SJ, Yang S, Lynn H, Ji Y. Contemp Clin Trials 2017;58:23-33) when
the keys are the intervals of equal width: both pick the interval (key) with the
largest unit probability mass. Matches R Keyboard 0.1.3's get.boundary.kb.

Pure module: no Django import.

The target key is [target - margin_left, target + margin_right] (0.05 each by
default, so a key is 0.1 wide); keys of the same width are laid out on either side
down to 0 and up to 1, the end keys cut at 0 and 1 and their posterior mass scaled
to a full key (R's compensation factor). With y DLTs of n evaluable patients and the
Beta(1 + y, 1 + n - y) posterior, the key of the largest mass (ties: the highest
key, as R's `max(which(...))`) below the target key -> escalate, the target key ->
stay, above -> de-escalate. Elimination, n.earlystop, the maximum sample size and
the MTD are shared with BOIN (interval.py); R get.boundary.kb marks "DU" from 1
patient on, but its get.oc.kb and select.mtd.kb eliminate from 3, as done here.
One difference from get.oc.kb: it stops at n.earlystop whatever the next decision;
here, as in BOIN 2.7.2's get.oc, only when the next cohort would stay at the level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

from scipy.special import betainc

from analysis.designs.common import DesignResult, LevelOutcome
from analysis.designs.interval import IntervalSettings, Zone, interval_decide


@dataclass(frozen=True)
class Keyboard:
    dose_levels: tuple[float, ...]
    settings: IntervalSettings
    margin_left: float = 0.05
    margin_right: float = 0.05

    name = "keyboard"

    def __post_init__(self) -> None:
        if not self.dose_levels:
            raise ValueError("dose_levels: a design needs at least one dose level")
        phi = self.settings.target
        if not 0 < self.margin_left < phi or not 0 < self.margin_right < 1 - phi:
            raise ValueError("margin_left: the target key must lie inside (0, 1) around the target")

    @property
    def n_levels(self) -> int:
        return len(self.dose_levels)

    @property
    def target(self) -> float:
        return self.settings.target

    def keys(self) -> tuple[float, ...]:
        """The key edges, built with R getkey's arithmetic (so the floats agree)."""
        return self._keys

    @cached_property
    def _keys(self) -> tuple[float, ...]:
        a1 = self.settings.target - self.margin_left
        a2 = self.settings.target + self.margin_right
        delta = a2 - a1
        left: list[float] = []
        i, cutoff = 0, 0.3
        while cutoff > 0:
            i += 1
            cutoff = a1 - i * delta
            left.insert(0, cutoff)
        right: list[float] = []
        i, cutoff = 0, 0.3
        while cutoff < 1:
            i += 1
            cutoff = a2 + i * delta
            right.append(cutoff)
        return tuple([max(v, 0.0) for v in left] + [a1, a2] + [min(v, 1.0) for v in right])

    def key_masses(self, n: int, y: int) -> tuple[float, ...]:
        keys = self.keys()
        width = self.margin_left + self.margin_right
        masses = []
        for i in range(len(keys) - 1):
            comp = width / (keys[i + 1] - keys[i]) if i in (0, len(keys) - 2) else 1.0
            mass = betainc(y + 1, n - y + 1, keys[i + 1]) - betainc(y + 1, n - y + 1, keys[i])
            masses.append(float(mass) * comp)
        return tuple(masses)

    def zone(self, n: int, y: int) -> Zone:
        return _zone(self, n, y)

    def _zone(self, n: int, y: int) -> Zone:
        masses = self.key_masses(n, y)
        top = max(masses)
        high = max(i for i, m in enumerate(masses) if m == top)
        target_key = self.keys().index(self.settings.target - self.margin_left)
        if high > target_key:
            return Zone.DE_ESCALATE
        if high == target_key:
            return Zone.STAY
        return Zone.ESCALATE

    def _rule(self, n: int, y: int, z: Zone) -> str:
        low = self.settings.target - self.margin_left
        high = self.settings.target + self.margin_right
        where = {Zone.ESCALATE: "below", Zone.STAY: "is", Zone.DE_ESCALATE: "above"}[z]
        word = {Zone.ESCALATE: "escalate", Zone.STAY: "stay", Zone.DE_ESCALATE: "de-escalate"}[z]
        key = "the target key" if z is Zone.STAY else f"{where} the target key"
        return f"the key of largest posterior mass for {y}/{n} is {key} [{low:g}, {high:g}]: {word}"

    def decide(self, outcomes: Sequence[LevelOutcome], current_level: int | None) -> DesignResult:
        return interval_decide(self.name, self.n_levels, self.settings, self.zone, self._rule, outcomes, current_level)


@lru_cache(maxsize=65536)
def _zone(design: Keyboard, n: int, y: int) -> Zone:
    """The zone depends only on the (hashable, frozen) design's target and margins and on n, y."""
    return design._zone(n, y)
