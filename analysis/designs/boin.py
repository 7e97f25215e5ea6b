"""BOIN, the Bayesian optimal interval design (Liu & Yuan 2015, JRSS C 64:507-523;
Yuan et al. 2016, Clin Cancer Res 22:4291-4301), as R BOIN 2.7.2 implements it.

Pure module: no Django import.

Boundaries (R `get.boundary`), p.saf = 0.6 phi and p.tox = 1.4 phi by default:
  lambda_e = log((1 - p.saf) / (1 - phi)) / log(phi (1 - p.saf) / (p.saf (1 - phi)))
  lambda_d = log((1 - phi) / (1 - p.tox)) / log(p.tox (1 - phi) / (phi (1 - p.tox)))
With n evaluable patients at the current level: escalate if y <= floor(lambda_e n),
de-escalate if y >= the de-escalation boundary (ceiling(lambda_d n), or
lambda_d n + 1 when lambda_d n is a whole number: R de-escalates only above lambda_d),
never above the elimination boundary; otherwise stay. Elimination, extra safety,
n.earlystop, the maximum sample size and the MTD (select.mtd) are in interval.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

from analysis.designs.common import DesignResult, LevelOutcome
from analysis.designs.interval import IntervalSettings, Zone, interval_decide, prob_above

_TOL = 1e-12  # R get.boundary's tolerance for "lambda_d * n is a whole number"


@dataclass(frozen=True)
class BoundaryColumn:
    """One column of R get.boundary's table (None where R prints NA)."""

    n: int
    escalate_at_most: int
    deescalate_at_least: int
    eliminate_at_least: int | None


@dataclass(frozen=True)
class Boin:
    dose_levels: tuple[float, ...]
    settings: IntervalSettings
    p_saf: float | None = None  # default 0.6 * target
    p_tox: float | None = None  # default 1.4 * target

    name = "boin"

    def __post_init__(self) -> None:
        if not self.dose_levels:
            raise ValueError("dose_levels: a design needs at least one dose level")
        phi = self.settings.target
        # _TOL: exactly 10% (0.3 and 0.27) passes despite floating point (0.3 - 0.27 < 0.03).
        if phi - self.phi_saf < 0.1 * phi - _TOL:
            raise ValueError("p_saf: must be below the target by at least 10% of it (R BOIN's rule)")
        if self.phi_tox - phi < 0.1 * phi - _TOL:
            raise ValueError("p_tox: must be above the target by at least 10% of it (R BOIN's rule)")

    @property
    def n_levels(self) -> int:
        return len(self.dose_levels)

    @property
    def target(self) -> float:
        return self.settings.target

    @property
    def phi_saf(self) -> float:
        return 0.6 * self.settings.target if self.p_saf is None else self.p_saf

    @property
    def phi_tox(self) -> float:
        return 1.4 * self.settings.target if self.p_tox is None else self.p_tox

    @cached_property
    def lambda_e(self) -> float:
        phi, p1 = self.settings.target, self.phi_saf
        return math.log((1 - p1) / (1 - phi)) / math.log(phi * (1 - p1) / (p1 * (1 - phi)))

    @cached_property
    def lambda_d(self) -> float:
        phi, p2 = self.settings.target, self.phi_tox
        return math.log((1 - phi) / (1 - p2)) / math.log(p2 * (1 - phi) / (phi * (1 - p2)))

    def boundary(self, n: int) -> BoundaryColumn:
        """R get.boundary's column for n patients."""
        if n < 1:
            raise ValueError("n: the boundary table starts at 1 patient")
        return _column(self.lambda_e, self.lambda_d, self.settings.target, self.settings.cutoff_eli, n)

    def boundary_table(self, n_max: int | None = None) -> tuple[BoundaryColumn, ...]:
        """R get.boundary's full_boundary_tab: 1 to min(max sample size, n_earlystop)
        patients, or to n_max."""
        s = self.settings
        top = min(s.max_sample_size, s.n_earlystop) if n_max is None else n_max
        return tuple(self.boundary(n) for n in range(1, top + 1))

    def printed_boundary_table(self) -> tuple[BoundaryColumn, ...]:
        """R get.boundary's boundary_tab, the table it prints: one column per cohort."""
        size = self.settings.cohort_size
        return tuple(c for c in self.boundary_table() if c.n % size == 0)

    def stop_boundary(self, n: int) -> int | None:
        """The extra-safety stopping boundary at level 1 (R get.boundary's stop_boundary)."""
        if n < 3:
            return None
        cut = self.settings.cutoff_eli - self.settings.offset
        return next((t for t in range(1, n + 1) if prob_above(self.settings.target, n, t) > cut), None)

    def zone(self, n: int, y: int) -> Zone:
        col = self.boundary(n)
        if y <= col.escalate_at_most:
            return Zone.ESCALATE
        if y >= col.deescalate_at_least:
            return Zone.DE_ESCALATE
        return Zone.STAY

    def _rule(self, n: int, y: int, z: Zone) -> str:
        col = self.boundary(n)
        bounds = f"escalate if DLTs <= {col.escalate_at_most}, de-escalate if >= {col.deescalate_at_least}"
        word = {Zone.ESCALATE: "escalate", Zone.STAY: "stay", Zone.DE_ESCALATE: "de-escalate"}[z]
        return f"BOIN boundaries for {n} patients: {bounds}: {word}"

    def decide(self, outcomes: Sequence[LevelOutcome], current_level: int | None) -> DesignResult:
        return interval_decide(self.name, self.n_levels, self.settings, self.zone, self._rule, outcomes, current_level)


@lru_cache(maxsize=4096)
def _column(lambda_e: float, lambda_d: float, target: float, cutoff_eli: float, n: int) -> BoundaryColumn:
    esc = math.floor(lambda_e * n)
    x = lambda_d * n
    deesc = round(x) + 1 if abs(round(x) - x) < _TOL else math.ceil(x)
    elim: int | None = None
    if n >= 3:
        elim = next((t for t in range(1, n + 1) if prob_above(target, n, t) > cutoff_eli), None)
    if elim is not None and deesc > elim:
        deesc = elim
    return BoundaryColumn(n, esc, deesc, elim)
