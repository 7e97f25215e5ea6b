"""Adverse-event rules other than CTCAE grading (PROTOCOL section 4).

Pure module: no Django import. Dates of an AE against its patient's record, the
cycle an AE occurred in, the SAE reporting clock, and the paper's Table 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo


@dataclass(frozen=True, slots=True)
class AeDates:
    onset: date
    resolved: date | None  # None = ongoing
    first_consent: date | None  # None = no consent recorded


def check_dates(dates: AeDates) -> dict[str, str]:
    """Field -> message for AE dates that cannot be right; empty when acceptable.

    An AE is recorded from consent on (the patient is on study from then); a
    resolution date is the first day the AE is no longer present, so it is on or
    after the onset.
    """
    errors: dict[str, str] = {}
    if dates.resolved is not None and dates.resolved < dates.onset:
        errors["resolved"] = f"The resolution date {dates.resolved} is before the onset {dates.onset}."
    if dates.first_consent is not None and dates.onset < dates.first_consent:
        errors["onset"] = (
            f"The onset {dates.onset} is before the patient's consent on {dates.first_consent}: "
            "AEs are recorded from consent on."
        )
    return errors


def cycle_of(onset: date, cycle_day1s: Sequence[tuple[int, date]]) -> int | None:
    """The number of the cycle an AE started in: the last cycle whose day 1 is on or
    before the onset. None before C1D1 (a pre-treatment event)."""
    found: int | None = None
    for number, day1 in sorted(cycle_day1s, key=lambda c: c[1]):
        if day1 <= onset:
            found = number
    return found


@dataclass(frozen=True, slots=True)
class SaeClock:
    due: datetime
    late: bool
    reported: bool

    @property
    def status(self) -> str:
        if self.reported:
            return "reported late" if self.late else "reported on time"
        return "overdue" if self.late else "due"


def sae_clock(known_at: datetime, report_hours: int, reported_at: datetime | None, now: datetime) -> SaeClock:
    """The SAE reporting deadline: `report_hours` after the SAE became known.

    Late when not reported by the deadline, or reported after it. Aware datetimes in.
    """
    due = known_at + timedelta(hours=report_hours)
    if reported_at is not None:
        return SaeClock(due=due, late=reported_at > due, reported=True)
    return SaeClock(due=due, late=now > due, reported=False)


def sae_report_problems(
    reported_at: datetime | None, *, onset: date | None, now: datetime, zone: tzinfo, zone_name: str
) -> tuple[str, ...]:
    """Messages for an SAE report time that cannot be right (issue 16); empty when acceptable.

    A report is sent once the AE has started and before it is recorded: not after ``now``
    and not on a day before the AE onset, the day being taken in the trial's time zone
    (``zone``, named ``zone_name`` in the message). Aware datetimes in.
    """
    if reported_at is None:
        return ()
    local = reported_at.astimezone(zone)
    shown = f"{local:%Y-%m-%d %H:%M} ({zone_name})"
    if reported_at > now:
        return (
            f"The SAE report time {shown} is in the future: enter a time up to now "
            f"({now.astimezone(zone):%Y-%m-%d %H:%M}, {zone_name}).",
        )
    if onset is not None and local.date() < onset:
        return (f"The SAE report time {shown} is before the AE onset ({onset.isoformat()}).",)
    return ()


@dataclass(frozen=True, slots=True)
class SummaryEvent:
    patient_id: int
    term: str
    grade: int


@dataclass(frozen=True, slots=True)
class SummaryRow:
    term: str
    grade_1_2: int  # patients whose worst grade of this term is 1 or 2
    grade_3_4: int  # ... 3 or 4
    grade_5: int  # ... 5
    any_grade: int


@dataclass(frozen=True, slots=True)
class AeSummary:
    patients: int  # patients in the group (the denominator)
    patients_with_event: int  # patients with >= 1 AE
    rows: tuple[SummaryRow, ...]


def ae_summary(patient_ids: Iterable[int], events: Iterable[SummaryEvent]) -> AeSummary:
    """The paper's Table 2: per patient the worst grade of each term, counted as
    patients with grade 1/2 and 3/4 (PROTOCOL section 4, last bullet).

    Rows are ordered by the number of patients with the term, then by term.
    Events of patients outside `patient_ids` are ignored.
    """
    group = set(patient_ids)
    worst: dict[tuple[str, int], int] = {}
    for e in events:
        if e.patient_id not in group:
            continue
        key = (e.term, e.patient_id)
        worst[key] = max(worst.get(key, 0), e.grade)
    per_term: dict[str, list[int]] = {}
    for (term, _), grade in worst.items():
        per_term.setdefault(term, []).append(grade)
    rows = [
        SummaryRow(
            term=term,
            grade_1_2=sum(1 for g in grades if g <= 2),
            grade_3_4=sum(1 for g in grades if g in (3, 4)),
            grade_5=sum(1 for g in grades if g == 5),
            any_grade=len(grades),
        )
        for term, grades in per_term.items()
    ]
    rows.sort(key=lambda r: (-r.any_grade, r.term))
    with_event = {pid for (_, pid) in worst}
    return AeSummary(patients=len(group), patients_with_event=len(with_event), rows=tuple(rows))
