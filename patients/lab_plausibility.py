"""Plausible lab values: one table for the refusal on entry and the automatic queries.

Pure module: no Django import. Every service that takes a lab value (the pre-dose labs of
a cycle, a lab panel, the screening counts) refuses with ``entry_problems`` what cannot be
a patient's value, naming the field, the unit expected and the likely slip; the periodic
sweep (``cleaning.rules.lab_plausibility``) asks about every value outside the same
ranges, in data entered before this check or let through on purpose.

What is refused on entry and what is only asked (issue 16): a platelet count of 50000
x10^9/L, an ANC of 1500 x10^9/L or a haemoglobin of 9.5 g/L is no patient's value: it is
the unit slip of a count per uL or a g/dL, and a pre-dose check that reads it as "above
50" would dose on a number nobody measured. Those are refused (``refused_on_entry``).
An extreme bilirubin or transaminase is possible (liver failure, hepatic necrosis), so
a coordinator with that value at source must be able to enter it: it is only asked.
Negative values are always slips and always refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

Number = Decimal | int | float | str


@dataclass(frozen=True, slots=True)
class PlausibleRange:
    """Inclusive bounds in the unit the record stores (SI, docs/api.md)."""

    label: str
    unit: str
    low: Decimal
    high: Decimal
    why: str  # which slip a value outside it usually is
    # Refused on entry (not only queried): a value outside is not a patient's value at all.
    refused_on_entry: bool = False
    # The usual unit slip as a factor to the value meant (0.001: a count per uL typed
    # where x10^9/L is asked), and its wording; None when the slip is an extra digit.
    slip_factor: Decimal | None = None
    slip: str = ""


# The bounds are far outside anything a patient after HCT shows, so a value outside is
# nearly always a unit slip or an extra digit. The usual slips, by the SI conversion
# factors: a count per microlitre typed where x10^9/L is asked (150 000/uL is 150
# x10^9/L: 1000 times too large); haemoglobin in g/dL where g/L is asked (10 times too
# small); bilirubin or creatinine in mg/dL where umol/L is asked (1 mg/dL = 17.1 umol/L
# of bilirubin, 88.4 umol/L of creatinine). Negative values are always slips.
PLAUSIBLE_RANGES: Mapping[str, PlausibleRange] = MappingProxyType(
    {
        "platelets": PlausibleRange(
            "Platelets",
            "x10^9/L",
            Decimal("0"),
            Decimal("2000"),
            "above 2000 x10^9/L is beyond even extreme thrombocytosis; a count per uL "
            "(e.g. 150000) typed as x10^9/L is the usual slip",
            refused_on_entry=True,
            slip_factor=Decimal("0.001"),
            slip="a count per uL (cells/uL) typed where x10^9/L is asked is 1000 times too large",
        ),
        "anc": PlausibleRange(
            "ANC",
            "x10^9/L",
            Decimal("0"),
            Decimal("100"),
            "above 100 x10^9/L neutrophils is beyond a leukaemoid reaction; a count per uL "
            "(e.g. 1500) typed as x10^9/L is the usual slip",
            refused_on_entry=True,
            slip_factor=Decimal("0.001"),
            slip="a count per uL (cells/uL) typed where x10^9/L is asked is 1000 times too large",
        ),
        "hemoglobin": PlausibleRange(
            "Haemoglobin",
            "g/L",
            Decimal("20"),
            Decimal("250"),
            "a value in g/dL (e.g. 9.5) typed as g/L falls below 20 g/L, a level not "
            "compatible with life; above 250 g/L is beyond polycythaemia",
            refused_on_entry=True,
            slip_factor=Decimal("10"),
            slip="a value in g/dL typed where g/L is asked is 10 times too small",
        ),
        "bilirubin": PlausibleRange(
            "Bilirubin",
            "umol/L",
            Decimal("0"),
            Decimal("1000"),
            "above 1000 umol/L (58 mg/dL) is beyond the deepest jaundice of liver failure; "
            "an extra digit is the usual slip",
        ),
        "alt": PlausibleRange(
            "ALT",
            "U/L",
            Decimal("0"),
            Decimal("10000"),
            "above 10000 U/L (about 250 x ULN) is seen only in massive hepatic necrosis; "
            "an extra digit is the usual slip",
        ),
        "ast": PlausibleRange(
            "AST",
            "U/L",
            Decimal("0"),
            Decimal("10000"),
            "above 10000 U/L (about 250 x ULN) is seen only in massive hepatic necrosis; "
            "an extra digit is the usual slip",
        ),
        # Not on the lab panel yet (a renal panel would bring it); the range is ready.
        "creatinine": PlausibleRange(
            "Creatinine",
            "umol/L",
            Decimal("10"),
            Decimal("3000"),
            "a value in mg/dL (e.g. 1.1) typed as umol/L falls below 10 umol/L, which no "
            "adult has; above 3000 umol/L is beyond untreated renal failure",
        ),
    }
)


def _decimal(value: Number) -> Decimal | None:
    """Decimal through the shortest repr; None if not a finite number."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = repr(value)
    try:
        result = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def entry_problems(
    analyte: str, value: Number | None, ranges: Mapping[str, PlausibleRange] = PLAUSIBLE_RANGES
) -> tuple[str, ...]:
    """Messages refusing a lab value on entry; empty when it may be stored (or is None,
    or the analyte has no range). The message names the analyte, the unit expected and,
    when the value converts into the range, the value probably meant."""
    bounds = ranges.get(analyte)
    if value is None or bounds is None:
        return ()
    number = _decimal(value)
    if number is None:
        return (f"{bounds.label} must be a number (in {bounds.unit}).",)
    if number < 0:
        return (f"{bounds.label} cannot be negative (in {bounds.unit}).",)
    if not bounds.refused_on_entry or bounds.low <= number <= bounds.high:
        return ()
    problem = (
        f"{bounds.label} {_plain(number)} {bounds.unit} is not plausible "
        f"(expected {_plain(bounds.low)} to {_plain(bounds.high)} {bounds.unit})"
    )
    if bounds.slip_factor is not None:
        meant = number * bounds.slip_factor
        if bounds.low <= meant <= bounds.high:
            return (f"{problem}: {bounds.slip}; did you mean {_plain(meant)} {bounds.unit}?",)
    return (f"{problem}: {bounds.why}.",)


def with_ceiling(analyte: str, high: Number, ranges: Mapping[str, PlausibleRange] = PLAUSIBLE_RANGES) -> PlausibleRange:
    """The analyte's range with another upper bound (a trial's own ceiling, e.g. the
    screening's ``EligibilityParams.platelets_plausible_max``)."""
    return replace(ranges[analyte], high=Decimal(repr(high) if isinstance(high, float) else high))
