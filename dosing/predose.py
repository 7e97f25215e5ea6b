"""The pre-dose safety check (PROTOCOL section 3), as a pure rule.

Before each dose: platelets > 50 x10^9/L and ANC > 1.0 x10^9/L on labs drawn within
the allowed days before dosing (*param*: 14 in the seed trial, the day of dosing
included), no active grade 3-4 acute GVHD, no active liver GVHD, no SOS. Every
condition comes back with ``pass``, ``fail`` or ``missing``, so the screen shows the
whole check, not only its first problem.

Choices made here:
- Each lab value is taken from the latest panel inside the window that has it: a
  panel drawn on the day of dosing without an ANC does not hide yesterday's ANC.
- A panel dated after the dose date is ignored (labs drawn after dosing cannot
  clear a dose already given).
- The check passes only when every condition passes: a missing value is not a pass,
  because nobody verified it (dosing anyway is a deviation an investigator records).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

ConditionStatus = Literal["pass", "fail", "missing"]


@dataclass(frozen=True)
class PredoseParams:
    """Per-trial thresholds; defaults are the seed trial's (PROTOCOL 2.6, 3)."""

    min_platelets: Decimal = Decimal(50)  # must exceed, x10^9/L
    min_anc: Decimal = Decimal("1.0")  # must exceed, x10^9/L
    lab_days: int = 14  # labs drawn at most this many days before the dose
    max_acute_gvhd_grade: int = 2  # grade 3-4 acute GVHD blocks the dose


SEED_PREDOSE = PredoseParams()


@dataclass(frozen=True)
class LabValues:
    """One panel (SI units); None where not measured."""

    date: date
    platelets: Decimal | None = None
    anc: Decimal | None = None


@dataclass(frozen=True)
class GvhdSosStatus:
    """The patient's status at the visit, as the coordinator recorded it; None = not recorded."""

    acute_gvhd_grade: int | None
    liver_gvhd: bool | None
    sos: bool | None


@dataclass(frozen=True)
class Condition:
    key: str
    label: str
    status: ConditionStatus
    detail: str


@dataclass(frozen=True)
class PredoseCheck:
    dose_date: date
    conditions: tuple[Condition, ...]

    @property
    def passed(self) -> bool:
        return all(c.status == "pass" for c in self.conditions)

    @property
    def problems(self) -> tuple[Condition, ...]:
        return tuple(c for c in self.conditions if c.status != "pass")


def _plain(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _latest(
    panels: Sequence[LabValues], field: Literal["platelets", "anc"], start: date, end: date
) -> tuple[Decimal, date] | None:
    found: tuple[Decimal, date] | None = None
    for panel in panels:
        value = getattr(panel, field)
        if value is None or not start <= panel.date <= end:
            continue
        if found is None or panel.date >= found[1]:
            found = (value, panel.date)
    return found


def _lab_condition(
    key: Literal["platelets", "anc"],
    label: str,
    threshold: Decimal,
    panels: Sequence[LabValues],
    dose_date: date,
    params: PredoseParams,
) -> Condition:
    start = dose_date - timedelta(days=params.lab_days)
    rule = f"{label} > {_plain(threshold)} x10^9/L"
    latest = _latest(panels, key, start, dose_date)
    if latest is None:
        return Condition(
            key,
            rule,
            "missing",
            f"no {label} value drawn between {start.isoformat()} and {dose_date.isoformat()} "
            f"(labs must be at most {params.lab_days} days old)",
        )
    value, drawn = latest
    status: ConditionStatus = "pass" if value > threshold else "fail"
    return Condition(key, rule, status, f"{_plain(value)} x10^9/L on {drawn.isoformat()}")


def predose_check(
    panels: Sequence[LabValues],
    status: GvhdSosStatus,
    dose_date: date,
    params: PredoseParams = SEED_PREDOSE,
) -> PredoseCheck:
    """Every condition of the pre-dose safety check with pass, fail or missing."""
    conditions = [
        _lab_condition("platelets", "platelets", params.min_platelets, panels, dose_date, params),
        _lab_condition("anc", "ANC", params.min_anc, panels, dose_date, params),
    ]
    limit = params.max_acute_gvhd_grade
    grade = status.acute_gvhd_grade
    if grade is None:
        conditions.append(
            Condition("acute_gvhd", f"no active acute GVHD above grade {limit}", "missing", "not recorded")
        )
    else:
        conditions.append(
            Condition(
                "acute_gvhd",
                f"no active acute GVHD above grade {limit}",
                "pass" if grade <= limit else "fail",
                "none active" if grade == 0 else f"active grade {grade}",
            )
        )
    for key, label, value in (
        ("liver_gvhd", "no active liver GVHD", status.liver_gvhd),
        ("sos", "no SOS/VOD", status.sos),
    ):
        if value is None:
            conditions.append(Condition(key, label, "missing", "not recorded"))
        else:
            conditions.append(Condition(key, label, "fail" if value else "pass", "present" if value else "absent"))
    return PredoseCheck(dose_date, tuple(conditions))
