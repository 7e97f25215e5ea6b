"""Cycle schedule, DLT window and visit calendar (PROTOCOL sections 1, 3, 5, 7).

Pure rules: frozen dataclasses in, plain values out; no Django. Every number is in
`ScheduleParams`, whose defaults are the seed trial's, so a second trial with other
numbers needs no code change. Day arithmetic is in whole calendar days; day 0 is the
stem cell infusion date (PROTOCOL 2.5).

Choices the protocol leaves open, made here:
- Cycle 1 has no delay allowance: PROTOCOL 3 puts C1D1 "between day +40 and +100",
  so the whole window is on time and a C1D1 after day +100 is a deviation. The
  7-day allowance applies to cycles 2 onwards, counted from the due date.
- A cycle is never early: the protocol gives no allowance before the due date.
- "Months" in section 7 are fixed day counts, not calendar months, so that a due
  date never depends on month lengths: 3, 6, 9 months = 91, 182, 273 days (13 weeks
  per quarter), 1 year = 365 days. The whole calendar is data
  (`ScheduleParams.assessments`), so a trial that wants other offsets or windows
  changes parameters only.
- Windows: +-14 days for every assessment except the pre-treatment MRD, which
  PROTOCOL 7 itself bounds to the 14 days before C1D1 (C1D1 itself included).
- Assessments tied to the end of treatment or the last dose enter the calendar
  only once EOT is recorded: before that, the last dose is not known to be last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from typing import Literal

TimingStatus = Literal["too_early", "on_time", "within_allowance", "deviation"]
AssessmentStatus = Literal["done", "due", "upcoming", "overdue", "not_applicable"]
Anchor = Literal["hct", "c1d1", "eot", "last_dose"]


@dataclass(frozen=True)
class Window:
    """Days accepted before and after an assessment's due date, both inclusive."""

    before_days: int
    after_days: int


@dataclass(frozen=True)
class ExpectedAssessment:
    """One entry of the visit calendar: `offset_days` after its anchor date."""

    key: str
    kind: str  # the assessment kind it is satisfied by, as recorded (docs/api.md)
    label: str
    anchor: Anchor
    offset_days: int
    window: Window


_AROUND = Window(14, 14)

# PROTOCOL 7, with months as fixed day counts (module docstring).
SEED_ASSESSMENTS: tuple[ExpectedAssessment, ...] = (
    ExpectedAssessment(
        "mrd_pre_c1d1",
        "mrd",
        "MRD within 14 days before C1D1",
        "c1d1",
        0,
        Window(14, 0),
    ),
    ExpectedAssessment("mrd_hct_3m", "mrd", "MRD 3 months after HCT", "hct", 91, _AROUND),
    ExpectedAssessment("mrd_hct_6m", "mrd", "MRD 6 months after HCT", "hct", 182, _AROUND),
    ExpectedAssessment("mrd_hct_9m", "mrd", "MRD 9 months after HCT", "hct", 273, _AROUND),
    ExpectedAssessment("mrd_eot_30d", "mrd", "MRD 30 days after EOT", "eot", 30, _AROUND),
    ExpectedAssessment(
        "marrow_c1d1_3m",
        "bone_marrow",
        "Bone marrow 3 months after C1D1",
        "c1d1",
        91,
        _AROUND,
    ),
    ExpectedAssessment(
        "marrow_c1d1_6m",
        "bone_marrow",
        "Bone marrow 6 months after C1D1",
        "c1d1",
        182,
        _AROUND,
    ),
    ExpectedAssessment(
        "marrow_c1d1_9m",
        "bone_marrow",
        "Bone marrow 9 months after C1D1",
        "c1d1",
        273,
        _AROUND,
    ),
    ExpectedAssessment("marrow_eot", "bone_marrow", "Bone marrow at EOT", "eot", 0, _AROUND),
    ExpectedAssessment(
        "marrow_last_dose_1y",
        "bone_marrow",
        "Bone marrow 1 year after the last dose",
        "last_dose",
        365,
        _AROUND,
    ),
)


@dataclass(frozen=True)
class ScheduleParams:
    """Per-trial schedule parameters; defaults are the seed trial's."""

    cycle_length_days: int = 28  # PROTOCOL 1
    c1d1_day_min: int = 40  # PROTOCOL 3: C1D1 between day +40 and +100, inclusive
    c1d1_day_max: int = 100
    delay_allowance_days: int = 7  # PROTOCOL 3
    dlt_window_cycles: int = 2  # PROTOCOL 5
    # PROTOCOL 1: protocol version -> maximum number of cycles.
    max_cycles_by_version: tuple[tuple[str, int], ...] = (("1", 4), ("2", 12))
    assessments: tuple[ExpectedAssessment, ...] = SEED_ASSESSMENTS
    # PROTOCOL 7: follow-up until 3 years after the last dose (years of 365 days).
    follow_up_days: int = 3 * 365


SEED_SCHEDULE = ScheduleParams()


@dataclass(frozen=True)
class PastCycle:
    """A given cycle. Due dates are not an input: they follow from day-1 dates."""

    number: int
    day1: date


@dataclass(frozen=True)
class Consent:
    protocol_version: str
    date: date


@dataclass(frozen=True)
class NextCycle:
    number: int
    due: date  # C1: the first day of the C1D1 window
    window_start: date  # nothing earlier is allowed
    on_time_until: date  # C1: the last day of the window; later cycles: the due date
    window_end: date  # the last day allowed without a protocol deviation
    max_cycles: int
    max_reached: bool  # this cycle would exceed the consented version's maximum
    hct_date: date
    # Why the due date is what it is, for the screens: "due 2017-08-02: C1D1 window
    # day +40..+100 after HCT (...), from enrolment on 2017-08-02".
    reason: str = ""


@dataclass(frozen=True)
class CycleTiming:
    status: TimingStatus
    # Days past `on_time_until` when late, days before `window_start` (negative)
    # when early, 0 when on time.
    delay_days: int
    message: str


@dataclass(frozen=True)
class DltWindow:
    start: date
    end: date  # inclusive
    # How the end was found, e.g. "the day before C3D1" or "C1D1 + 55 days". Until
    # the closing cycle is given, the end is provisional.
    end_rule: str
    closed_by_next_cycle: bool

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class DoneAssessment:
    kind: str
    date: date


@dataclass(frozen=True)
class FollowUpFacts:
    hct_date: date
    cycles: tuple[PastCycle, ...]
    end_of_treatment: date | None
    death: date | None
    # Withdrawal from the study (no further follow-up), not the EOT reason
    # "withdrawal", which stops treatment but not follow-up.
    withdrawal: date | None
    assessments: tuple[DoneAssessment, ...]


@dataclass(frozen=True)
class PlannedAssessment:
    key: str
    kind: str
    label: str
    due: date
    window_start: date
    window_end: date
    status: AssessmentStatus
    done_on: date | None
    # Why it is due then and why it has this status ("due 2024-05-01: 91 days after HCT
    # 2024-01-31, window -14..+14 days").
    reason: str = ""


@dataclass(frozen=True)
class GivenCycleDates:
    """A recorded cycle's due date, window and timing, recomputed from the day-1 dates
    before it (the same rule as when it was recorded), with the reason shown."""

    number: int
    due: date
    window_start: date
    window_end: date
    timing: CycleTiming
    reason: str


@dataclass(frozen=True)
class FieldMessage:
    """A validation problem, named by its path as in bundle imports (docs/api.md)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _days(n: int) -> timedelta:
    return timedelta(days=n)


# --- cycles ------------------------------------------------------------------------


def next_cycle(
    hct_date: date,
    max_cycles: int,
    past_cycles: Sequence[PastCycle],
    params: ScheduleParams = SEED_SCHEDULE,
    enrolled_on: date | None = None,
) -> NextCycle:
    """The cycle after the highest-numbered given one (validate the sequence first).

    C1 falls in the C1D1 window after HCT, and never before enrolment (PROTOCOL 3:
    the dose level is assigned at enrolment, after consent): with ``enrolled_on``
    later than the window's first day, C1 is due on the enrolment date. Cycle n+1 is
    due one cycle length after cycle n's actual day 1, so a delay moves every later
    cycle (PROTOCOL 3).
    """
    lo, hi = params.c1d1_day_min, params.c1d1_day_max
    if past_cycles:
        last = max(past_cycles, key=lambda c: c.number)
        number = last.number + 1
        due = last.day1 + _days(params.cycle_length_days)
        window_start, on_time_until = due, due
        window_end = due + _days(params.delay_allowance_days)
        reason = (
            f"due {due.isoformat()}: C{last.number}D1 {last.day1.isoformat()} + {params.cycle_length_days} days; "
            f"a delay of up to {params.delay_allowance_days} days is allowed (until {window_end.isoformat()})"
        )
    else:
        number = 1
        opens = hct_date + _days(lo)
        on_time_until = window_end = hct_date + _days(hi)
        due = opens if enrolled_on is None else max(opens, enrolled_on)
        window_start = due
        reason = (
            f"due {due.isoformat()}: C1D1 window day +{lo}..+{hi} after HCT "
            f"({opens.isoformat()} to {window_end.isoformat()})"
        )
        if enrolled_on is not None and enrolled_on > opens:
            reason += f", from enrolment on {enrolled_on.isoformat()}"
            if enrolled_on > window_end:
                reason += ": after the window, so any C1D1 is a protocol deviation"
    return NextCycle(
        number=number,
        due=due,
        window_start=window_start,
        on_time_until=on_time_until,
        window_end=window_end,
        max_cycles=max_cycles,
        # PROTOCOL 3: no cycle beyond the consented version's maximum.
        max_reached=number > max_cycles,
        hct_date=hct_date,
        reason=reason,
    )


def given_cycle_dates(
    hct_date: date,
    cycles: Sequence[PastCycle],
    params: ScheduleParams = SEED_SCHEDULE,
    enrolled_on: date | None = None,
) -> tuple[GivenCycleDates, ...]:
    """Each recorded cycle's due date and timing by the rule of `next_cycle`, with why.

    C1's "due" is the first day of its window, so a C1D1 later in the window has
    delay 0: the reason says so instead of leaving "due 11-10, delay 0" unexplained.
    """
    ordered = sorted(cycles, key=lambda c: c.number)
    out: list[GivenCycleDates] = []
    for i, cycle in enumerate(ordered):
        nxt = next_cycle(hct_date, cycle.number, ordered[:i], params, enrolled_on)
        timing = cycle_timing(cycle.day1, nxt)
        out.append(
            GivenCycleDates(
                cycle.number,
                nxt.due,
                nxt.window_start,
                nxt.window_end,
                timing,
                f"{nxt.reason}; given: {timing.message}",
            )
        )
    return tuple(out)


def cycle_timing(proposed_day1: date, cycle: NextCycle) -> CycleTiming:
    """Is a proposed day 1 too early, on time, a permitted delay, or a deviation?

    A permitted delay needs a recorded reason; a deviation is refused unless an
    investigator records it as one (PROTOCOL 3). The protocol maximum is a separate
    question: see `NextCycle.max_reached`.
    """
    if cycle.number == 1:
        day = (proposed_day1 - cycle.hct_date).days
        lo = (cycle.window_start - cycle.hct_date).days
        hi = (cycle.window_end - cycle.hct_date).days
        where = f"C1D1 on day {day:+d} after HCT; the window is +{lo} to +{hi}"
        if lo <= day <= hi:
            where += ", so no delay"
    else:
        offset = (proposed_day1 - cycle.due).days
        if offset == 0:
            when = "on the due date"
        else:
            days = f"{abs(offset)} day" + ("" if abs(offset) == 1 else "s")
            when = f"{days} {'after' if offset > 0 else 'before'} the due date"
        allowance = (cycle.window_end - cycle.due).days
        where = f"C{cycle.number}D1 {when} {cycle.due.isoformat()}; a delay of up to {allowance} days is allowed"

    if proposed_day1 < cycle.window_start:
        return CycleTiming(
            "too_early",
            (proposed_day1 - cycle.window_start).days,
            f"too early: {where}",
        )
    if proposed_day1 <= cycle.on_time_until:
        return CycleTiming("on_time", 0, where)
    delay = (proposed_day1 - cycle.on_time_until).days
    if proposed_day1 <= cycle.window_end:
        return CycleTiming("within_allowance", delay, f"{where}; record the reason for the delay")
    return CycleTiming("deviation", delay, f"protocol deviation: {where}")


def _consent_on(consents: Sequence[Consent], on: date) -> Consent | None:
    # PROTOCOL 1: bound to the version last consented to; the later of two consents
    # on the same day is the one listed later.
    current: Consent | None = None
    for consent in sorted(consents, key=lambda c: c.date):
        if consent.date <= on:
            current = consent
    return current


def max_cycles_on(consents: Sequence[Consent], on: date, params: ScheduleParams = SEED_SCHEDULE) -> int | None:
    """The maximum number of cycles of the version in force on ``on``.

    None if there is no consent by then or its version is not one of the trial's.
    """
    consent = _consent_on(consents, on)
    if consent is None:
        return None
    return dict(params.max_cycles_by_version).get(consent.protocol_version)


def validate_cycles(
    cycles: Sequence[PastCycle],
    consents: Sequence[Consent],
    params: ScheduleParams = SEED_SCHEDULE,
) -> tuple[FieldMessage, ...]:
    """Problems in a patient's cycles, each naming its field (``cycles[i].day1``).

    Timing against due dates is not checked here: a late or early cycle may be a
    recorded deviation, which `cycle_timing` classifies when it is entered.
    """
    problems: list[FieldMessage] = []
    maxima = dict(params.max_cycles_by_version)
    for i, given in enumerate(consents):
        if given.protocol_version not in maxima:
            problems.append(
                FieldMessage(
                    f"consents[{i}].protocol_version",
                    f"unknown protocol version {given.protocol_version!r}",
                )
            )

    first_index: dict[int, int] = {}
    for i, cycle in enumerate(cycles):
        field = f"cycles[{i}].number"
        if cycle.number < 1:
            problems.append(FieldMessage(field, f"cycle number {cycle.number} must be 1 or more"))
        elif cycle.number in first_index:
            problems.append(
                FieldMessage(
                    field,
                    f"cycle {cycle.number} is already given as cycles[{first_index[cycle.number]}]",
                )
            )
        else:
            first_index[cycle.number] = i

    numbers = sorted(first_index)
    for previous, number in pairwise([0, *numbers]):  # 0: before cycle 1
        i = first_index[number]
        cycle = cycles[i]
        if previous != number - 1:
            problems.append(FieldMessage(f"cycles[{i}].number", f"cycle {number} without cycle {number - 1}"))
        if previous >= 1:
            before = cycles[first_index[previous]]
            if cycle.day1 <= before.day1:
                problems.append(
                    FieldMessage(
                        f"cycles[{i}].day1",
                        f"cycle {number} day 1 ({cycle.day1.isoformat()}) is not after "
                        f"cycle {previous} day 1 ({before.day1.isoformat()})",
                    )
                )

        # PROTOCOL 1 and 3: the maximum is the one of the version consented to by the
        # cycle's day 1, so a re-consent to v2 allows cycles 5-12 from its date on.
        consent = _consent_on(consents, cycle.day1)
        if consent is None:
            problems.append(
                FieldMessage(
                    f"cycles[{i}].day1",
                    f"no consent on or before cycle {number} day 1 ({cycle.day1.isoformat()})",
                )
            )
            continue
        maximum = maxima.get(consent.protocol_version)
        if maximum is not None and number > maximum:
            problems.append(
                FieldMessage(
                    f"cycles[{i}].number",
                    f"cycle {number} is beyond the maximum of {maximum} cycles of "
                    f"protocol version {consent.protocol_version} "
                    f"(consented {consent.date.isoformat()})",
                )
            )
    return tuple(problems)


# --- DLT window --------------------------------------------------------------------


def dlt_window(cycles: Sequence[PastCycle], params: ScheduleParams = SEED_SCHEDULE) -> DltWindow | None:
    """The DLT window of PROTOCOL 5, generalised to k = `dlt_window_cycles` cycles.

    From C1D1 to the day before C(k+1)D1; without C(k+1), from the last given cycle
    j <= k, CjD1 + (k - j + 1) x cycle length - 1 (seed: C2D1 + 27, or C1D1 + 55).
    None before C1.
    """
    day1 = {c.number: c.day1 for c in cycles}
    if 1 not in day1:
        return None
    k, length = params.dlt_window_cycles, params.cycle_length_days
    closing = k + 1
    if closing in day1:
        return DltWindow(day1[1], day1[closing] - _days(1), f"the day before C{closing}D1", True)
    j = max(n for n in day1 if 1 <= n <= k)
    extra = (k - j + 1) * length - 1
    return DltWindow(day1[1], day1[j] + _days(extra), f"C{j}D1 + {extra} days", False)


# --- visit calendar ----------------------------------------------------------------


def _anchor_date(anchor: Anchor, facts: FollowUpFacts) -> date | None:
    if anchor == "hct":
        return facts.hct_date
    if anchor == "c1d1":
        return next((c.day1 for c in facts.cycles if c.number == 1), None)
    if facts.end_of_treatment is None:
        return None  # module docstring: EOT and last-dose entries wait for EOT
    if anchor == "eot":
        return facts.end_of_treatment
    # INO is given on day 1 only (PROTOCOL 1), so the last dose is the last day 1.
    return max((c.day1 for c in facts.cycles), default=None)


def visit_calendar(
    facts: FollowUpFacts, today: date, params: ScheduleParams = SEED_SCHEDULE
) -> tuple[PlannedAssessment, ...]:
    """The expected assessments of PROTOCOL 7 whose anchor date is known, by due date.

    Status: ``done`` if an assessment of the kind is dated inside the window (one
    assessment may satisfy two entries whose windows overlap); otherwise
    ``not_applicable`` if death or withdrawal came on or before the window's end;
    otherwise ``overdue`` once the window has closed, ``due`` while it is open, and
    ``upcoming`` before it opens. A window that ends on its dose (the MRD "within 14
    days before C1D1") closes when the dose is recorded: after the dose it is missed
    (``overdue``), never "due" on C1D1 itself.
    """
    stops = [d for d in (facts.death, facts.withdrawal) if d is not None]
    stop = min(stops) if stops else None
    planned: list[PlannedAssessment] = []
    for expected in params.assessments:
        anchor = _anchor_date(expected.anchor, facts)
        if anchor is None:
            continue
        due = anchor + _days(expected.offset_days)
        start = due - _days(expected.window.before_days)
        end = due + _days(expected.window.after_days)
        in_window = [a.date for a in facts.assessments if a.kind == expected.kind and start <= a.date <= end]
        done_on = min(in_window, key=lambda d: (abs((d - due).days), d)) if in_window else None
        closed_by_dose = expected.anchor in ("c1d1", "last_dose") and end == anchor
        status: AssessmentStatus
        if done_on is not None:
            status = "done"
        elif stop is not None and stop <= end:
            status = "not_applicable"
        elif today > end or closed_by_dose:
            status = "overdue"
        elif today >= start:
            status = "due"
        else:
            status = "upcoming"
        planned.append(
            PlannedAssessment(
                expected.key,
                expected.kind,
                expected.label,
                due,
                start,
                end,
                status,
                done_on,
                _assessment_reason(expected, anchor, due, status, done_on, stop, closed_by_dose),
            )
        )
    return tuple(sorted(planned, key=lambda p: (p.due, p.key)))


_ANCHOR_NAMES: dict[Anchor, str] = {"hct": "HCT", "c1d1": "C1D1", "eot": "EOT", "last_dose": "the last dose"}


def _assessment_reason(
    expected: ExpectedAssessment,
    anchor: date,
    due: date,
    status: AssessmentStatus,
    done_on: date | None,
    stop: date | None,
    closed_by_dose: bool,
) -> str:
    name = _ANCHOR_NAMES[expected.anchor]
    offset = expected.offset_days
    when = f"on {name} {anchor.isoformat()}" if offset == 0 else f"{offset} days after {name} {anchor.isoformat()}"
    w = expected.window
    window = f"window -{w.before_days}..+{w.after_days} days"
    text = f"due {due.isoformat()}: {when}, {window}"
    if status == "done" and done_on is not None:
        return f"{text}; done on {done_on.isoformat()}"
    if status == "not_applicable" and stop is not None:
        return f"{text}; not applicable: follow-up stopped on {stop.isoformat()}"
    if status == "overdue" and closed_by_dose:
        return f"{text}; missed: none recorded before the dose"
    return text


def follow_up_over(facts: FollowUpFacts, today: date, params: ScheduleParams = SEED_SCHEDULE) -> bool:
    """Has the patient's follow-up (PROTOCOL 7) ended by ``today``?

    It ends with death or withdrawal from the study, and ``follow_up_days`` after the
    last dose, which is known to be the last once EOT is recorded (as for the calendar's
    last-dose entries). The seed calendar's entries all fall before that end, so an
    ended follow-up has nothing left to schedule: its missed assessments stay "overdue"
    in the calendar and in the data-cleaning queries. The protocol's other bound
    ("1 year after the last enrolled patient's final dose, whichever is first") needs
    enrolment to be closed, which the trial does not record: not applied, so follow-up
    never ends early.
    """
    if any(stop is not None and stop <= today for stop in (facts.death, facts.withdrawal)):
        return True
    last_dose = _anchor_date("last_dose", facts)
    return last_dose is not None and today > last_dose + _days(params.follow_up_days)
