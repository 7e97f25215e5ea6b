"""One rule for every clinical date (issue 16): when can a fact about a patient be dated?

Pure module: no Django import. Every service that stores a clinical date (AE onset and
resolution, GVHD episodes, lab panels, cycle day 1, screening and its labs, consent,
transplant, enrolment, assessments, outcome events, deviations, concomitant drugs,
DLT decisions) asks ``date_problems`` for it, so the form, the API and the bundle
import refuse the same dates with the same message.

The rule, for each date:
- not in the future: a fact is recorded once it happened, so no date after today,
  "today" being the date where the trial runs (``Trial.time_zone``, else the server's);
- not before the patient's birth year (1 January of it: only the year is stored).
  That is also the floor that stops 0001-01-01 and other typing slips.

The order between two facts the protocol ties together (screening and HCT, AE and
consent, outcome events and HCT, ...) stays with the service that knows both dates;
``not_before`` words those refusals the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class DateBounds:
    """What a clinical date of one patient is checked against."""

    today: date  # today in the trial's time zone
    birth_year: int | None  # None: not recorded (every registered patient has one)
    zone: str = "UTC"  # the zone "today" is taken in, for the message


def date_problems(label: str, value: date | None, bounds: DateBounds) -> tuple[str, ...]:
    """Messages for a clinical date that cannot be right; empty when acceptable (or None).

    ``label`` names the date in the message ("AE onset", "lab date"...).
    """
    if value is None:
        return ()
    if value > bounds.today:
        return (
            f"The {label} {value.isoformat()} is in the future: enter a date up to today "
            f"({bounds.today.isoformat()}, {bounds.zone}).",
        )
    if bounds.birth_year is not None and value.year < bounds.birth_year:
        return (f"The {label} {value.isoformat()} is before the patient's birth year ({bounds.birth_year}).",)
    return ()


def not_before(label: str, value: date | None, anchor_label: str, anchor: date | None) -> tuple[str, ...]:
    """A date the protocol orders after another one (e.g. a GVHD episode after the HCT)."""
    if value is None or anchor is None or value >= anchor:
        return ()
    return (f"The {label} {value.isoformat()} is before the {anchor_label} ({anchor.isoformat()}).",)


def birth_year_problems(birth_year: int | None, earliest: tuple[str, date, str] | None) -> tuple[str, ...]:
    """A birth year edited after the records exist: the patient's earliest clinical date
    (``label``, ``value``, the record it is on) must not fall before it."""
    if birth_year is None or earliest is None:
        return ()
    label, value, record = earliest
    if value.year >= birth_year:
        return ()
    return (
        f"The birth year {birth_year} is after the {label} {value.isoformat()} ({record}): "
        "correct that record first, or keep the birth year.",
    )
