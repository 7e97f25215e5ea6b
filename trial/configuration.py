"""Pure checks of a trial's configuration (no Django): dose levels and protocol versions.

Used by the admin forms, the services and the bundle importer alike.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class DoseLevelSpec:
    level: int
    dose_mg_m2: Decimal


def dose_level_problems(levels: Sequence[DoseLevelSpec]) -> list[str]:
    """Levels are numbered 1..n without gaps and doses strictly increase with the level.

    PROTOCOL s1: "Start at L1. No level below L1." The 3+3 engine walks the levels in
    order, so a gap or a non-increasing dose would make "escalate" meaningless.
    """
    problems: list[str] = []
    ordered = sorted(levels, key=lambda spec: spec.level)
    numbers = [spec.level for spec in ordered]
    if len(set(numbers)) != len(numbers):
        problems.append("Dose level numbers must be unique.")
    if numbers and numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"Dose levels must be numbered 1 to {len(numbers)} without gaps (got {numbers}).")
    for spec in ordered:
        if spec.dose_mg_m2 <= 0:
            problems.append(f"Level {spec.level}: the dose must be greater than 0 mg/m².")
    for lower, higher in zip(ordered, ordered[1:], strict=False):
        if higher.dose_mg_m2 <= lower.dose_mg_m2:
            problems.append(
                f"Level {higher.level} ({higher.dose_mg_m2} mg/m²) must be a higher dose than "
                f"level {lower.level} ({lower.dose_mg_m2} mg/m²)."
            )
    return problems
