"""Worked examples for cycles, the DLT window and the visit calendar (dosing/schedule.py)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from dosing.schedule import (
    Consent,
    DoneAssessment,
    FollowUpFacts,
    PastCycle,
    ScheduleParams,
    cycle_timing,
    dlt_window,
    follow_up_over,
    given_cycle_dates,
    max_cycles_on,
    next_cycle,
    validate_cycles,
    visit_calendar,
)

HCT = date(2017, 5, 10)
C1D1 = date(2017, 8, 2)  # day +84
V1 = Consent("1", date(2017, 7, 31))


def d(days: int, start: date = HCT) -> date:
    return start + timedelta(days=days)


def cycles_every_28_days(count: int, start: date = C1D1) -> tuple[PastCycle, ...]:
    return tuple(PastCycle(n, d(28 * (n - 1), start)) for n in range(1, count + 1))


# --- next cycle and timing (PROTOCOL 3) ---------------------------------------------


def test_first_cycle_window_is_day_40_to_100_after_hct() -> None:
    c1 = next_cycle(HCT, 4, ())
    assert (c1.number, c1.due, c1.window_start) == (1, d(40), d(40))
    assert (c1.on_time_until, c1.window_end) == (d(100), d(100))
    assert not c1.max_reached


@pytest.mark.parametrize(
    ("day", "status", "delay"),
    [
        (39, "too_early", -1),
        (40, "on_time", 0),
        (100, "on_time", 0),
        (101, "deviation", 1),
    ],
)
def test_c1d1_against_the_day_window(day: int, status: str, delay: int) -> None:
    timing = cycle_timing(d(day), next_cycle(HCT, 4, ()))
    assert (timing.status, timing.delay_days) == (status, delay)
    assert f"C1D1 on day +{day} after HCT; the window is +40 to +100" in timing.message


# Issue 19 (19): one clear rule per date, shown with its reason.
@pytest.mark.parametrize(
    ("enrolled", "due", "window_start", "reason"),
    [
        (None, d(40), d(40), "due 2017-06-19: C1D1 window day +40..+100 after HCT (2017-06-19 to 2017-08-18)"),
        # Enrolled inside the window: C1 is never due before enrolment.
        (
            d(84),
            d(84),
            d(84),
            "due 2017-08-02: C1D1 window day +40..+100 after HCT (2017-06-19 to 2017-08-18), "
            "from enrolment on 2017-08-02",
        ),
        # Enrolled before the window opens: the window rules.
        (d(30), d(40), d(40), "due 2017-06-19: C1D1 window day +40..+100 after HCT (2017-06-19 to 2017-08-18)"),
        (
            d(101),
            d(101),
            d(101),
            "due 2017-08-19: C1D1 window day +40..+100 after HCT (2017-06-19 to 2017-08-18), "
            "from enrolment on 2017-08-19: after the window, so any C1D1 is a protocol deviation",
        ),
    ],
)
def test_c1_is_due_at_the_window_or_at_enrolment_with_the_reason(
    enrolled: date | None, due: date, window_start: date, reason: str
) -> None:
    c1 = next_cycle(HCT, 4, (), enrolled_on=enrolled)
    assert (c1.due, c1.window_start, c1.window_end) == (due, window_start, d(100))
    assert c1.reason == reason


@pytest.mark.parametrize(
    ("enrolled", "day1", "status"),
    [(d(84), d(83), "too_early"), (d(84), d(84), "on_time"), (d(101), d(101), "deviation")],
)
def test_c1d1_before_enrolment_is_too_early(enrolled: date, day1: date, status: str) -> None:
    assert cycle_timing(day1, next_cycle(HCT, 4, (), enrolled_on=enrolled)).status == status


def test_given_cycles_show_due_window_delay_and_reason() -> None:
    # C1 on day +84 (due at the window's first day, +40: delay 0, and the reason says so);
    # C2 five days late; C3 on time after the delay moved it.
    cycles = (PastCycle(1, C1D1), PastCycle(2, d(33, C1D1)), PastCycle(3, d(61, C1D1)))
    rows = given_cycle_dates(HCT, cycles)
    assert [(r.number, r.due, r.timing.delay_days, r.timing.status) for r in rows] == [
        (1, d(40), 0, "on_time"),
        (2, d(28, C1D1), 5, "within_allowance"),
        (3, d(61, C1D1), 0, "on_time"),
    ]
    assert rows[0].reason == (
        "due 2017-06-19: C1D1 window day +40..+100 after HCT (2017-06-19 to 2017-08-18); "
        "given: C1D1 on day +84 after HCT; the window is +40 to +100, so no delay"
    )
    assert rows[1].reason.startswith("due 2017-08-30: C1D1 2017-08-02 + 28 days; a delay of up to 7 days")
    assert rows[1].reason.endswith(
        "given: C2D1 5 days after the due date 2017-08-30; a delay of up to 7 days is allowed; record the reason for the delay"
    )


def test_next_cycle_is_due_28_days_after_the_previous_day_1() -> None:
    c2 = next_cycle(HCT, 4, cycles_every_28_days(1))
    assert (c2.number, c2.due, c2.window_end) == (2, d(28, C1D1), d(35, C1D1))


def test_a_delay_moves_every_later_due_date() -> None:
    delayed = (PastCycle(1, C1D1), PastCycle(2, d(33, C1D1)))  # C2 5 days late
    assert next_cycle(HCT, 4, delayed).due == d(33 + 28, C1D1)


@pytest.mark.parametrize(
    ("days_after_due", "status", "delay", "message"),
    [
        (-1, "too_early", -1, "too early: C2D1 1 day before the due date 2017-08-30"),
        (0, "on_time", 0, "C2D1 on the due date 2017-08-30"),
        (1, "within_allowance", 1, "C2D1 1 day after the due date 2017-08-30"),
        (7, "within_allowance", 7, "C2D1 7 days after the due date 2017-08-30"),
        (
            8,
            "deviation",
            8,
            "protocol deviation: C2D1 8 days after the due date 2017-08-30",
        ),
    ],
)
def test_delay_allowance_of_7_days(days_after_due: int, status: str, delay: int, message: str) -> None:
    c2 = next_cycle(HCT, 4, cycles_every_28_days(1))
    timing = cycle_timing(d(days_after_due, c2.due), c2)
    assert (timing.status, timing.delay_days) == (status, delay)
    assert timing.message.startswith(message)


def test_another_trial_needs_only_other_params() -> None:
    params = ScheduleParams(cycle_length_days=21, c1d1_day_min=30, c1d1_day_max=60, delay_allowance_days=3)
    assert cycle_timing(d(61), next_cycle(HCT, 6, (), params)).status == "deviation"
    c2 = next_cycle(HCT, 6, cycles_every_28_days(1), params)
    assert c2.due == d(21, C1D1)
    assert cycle_timing(d(24, C1D1), c2).status == "within_allowance"
    assert cycle_timing(d(25, C1D1), c2).status == "deviation"


@pytest.mark.parametrize(
    ("given", "max_cycles", "number", "reached"),
    [
        (3, 4, 4, False),
        (4, 4, 5, True),
        (4, 12, 5, False),
        (11, 12, 12, False),
        (12, 12, 13, True),
    ],
)
def test_protocol_maximum(given: int, max_cycles: int, number: int, reached: bool) -> None:
    nxt = next_cycle(HCT, max_cycles, cycles_every_28_days(given))
    assert (nxt.number, nxt.max_cycles, nxt.max_reached) == (
        number,
        max_cycles,
        reached,
    )


V2 = Consent("2", date(2018, 1, 15))


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        (date(2017, 7, 30), None),  # before any consent
        (date(2017, 7, 31), 4),
        (date(2018, 1, 14), 4),
        (date(2018, 1, 15), 12),  # re-consent to v2 raises the maximum from its date on
    ],
)
def test_max_cycles_follow_the_version_last_consented_to(on: date, expected: int | None) -> None:
    assert max_cycles_on([V2, V1], on) == expected


# --- validation of a sequence of cycles --------------------------------------------


def test_a_regular_sequence_has_no_problems() -> None:
    assert validate_cycles(cycles_every_28_days(4), [V1]) == ()


@pytest.mark.parametrize(
    ("cycles", "consents", "expected"),
    [
        (
            (PastCycle(1, C1D1), PastCycle(2, d(-1, C1D1))),
            [V1],
            ["cycles[1].day1: cycle 2 day 1 (2017-08-01) is not after cycle 1 day 1 (2017-08-02)"],
        ),
        (
            (PastCycle(1, C1D1), PastCycle(2, C1D1)),
            [V1],
            ["cycles[1].day1: cycle 2 day 1 (2017-08-02) is not after cycle 1 day 1 (2017-08-02)"],
        ),
        (
            (PastCycle(1, C1D1), PastCycle(2, d(28, C1D1)), PastCycle(2, d(56, C1D1))),
            [V1],
            ["cycles[2].number: cycle 2 is already given as cycles[1]"],
        ),
        (
            (PastCycle(1, C1D1), PastCycle(3, d(56, C1D1))),
            [V1],
            ["cycles[1].number: cycle 3 without cycle 2"],
        ),
        (
            (PastCycle(0, C1D1),),
            [V1],
            ["cycles[0].number: cycle number 0 must be 1 or more"],
        ),
        (
            cycles_every_28_days(5),
            [V1],
            [
                (
                    "cycles[4].number: cycle 5 is beyond the maximum of 4 cycles of protocol "
                    "version 1 (consented 2017-07-31)"
                )
            ],
        ),
        (
            (PastCycle(1, date(2017, 7, 30)),),
            [V1],
            ["cycles[0].day1: no consent on or before cycle 1 day 1 (2017-07-30)"],
        ),
        (
            cycles_every_28_days(1),
            [Consent("3", V1.date)],
            ["consents[0].protocol_version: unknown protocol version '3'"],
        ),
    ],
)
def test_cycle_sequence_problems_name_the_field(
    cycles: tuple[PastCycle, ...], consents: list[Consent], expected: list[str]
) -> None:
    assert [str(p) for p in validate_cycles(cycles, consents)] == expected


def test_re_consent_to_v2_between_cycles_4_and_5_allows_up_to_12() -> None:
    cycles = cycles_every_28_days(12)  # cycle 5 on 2017-11-22, cycle 12 on 2018-06-06
    reconsent = Consent("2", cycles[4].day1)
    assert validate_cycles(cycles, [V1, reconsent]) == ()
    maximum = max_cycles_on([V1, reconsent], cycles[11].day1)
    assert maximum == 12
    assert next_cycle(HCT, maximum, cycles).max_reached

    # Re-consent one day after cycle 5: cycle 5 was given under v1.
    late = Consent("2", d(1, cycles[4].day1))
    assert [p.field for p in validate_cycles(cycles, [V1, late])] == ["cycles[4].number"]

    # A 13th cycle is beyond v2's maximum too.
    thirteen = cycles_every_28_days(13)
    problems = validate_cycles(thirteen, [V1, reconsent])
    assert [p.field for p in problems] == ["cycles[12].number"]
    assert "maximum of 12 cycles of protocol version 2" in problems[0].message


# --- DLT window (PROTOCOL 5) -------------------------------------------------------


@pytest.mark.parametrize(
    ("cycles", "end", "rule", "closed"),
    [
        (cycles_every_28_days(3), d(55, C1D1), "the day before C3D1", True),
        # C3 delayed by 5 days: the window stretches to the day before it.
        (
            (*cycles_every_28_days(2), PastCycle(3, d(61, C1D1))),
            d(60, C1D1),
            "the day before C3D1",
            True,
        ),
        (
            (PastCycle(1, C1D1), PastCycle(2, d(30, C1D1))),
            d(57, C1D1),
            "C2D1 + 27 days",
            False,
        ),
        (cycles_every_28_days(1), d(55, C1D1), "C1D1 + 55 days", False),
    ],
)
def test_dlt_window(cycles: tuple[PastCycle, ...], end: date, rule: str, closed: bool) -> None:
    window = dlt_window(cycles)
    assert window is not None
    assert (window.start, window.end, window.end_rule, window.closed_by_next_cycle) == (
        C1D1,
        end,
        rule,
        closed,
    )
    assert window.contains(end) and not window.contains(d(1, end)) and not window.contains(d(-1, C1D1))


def test_no_dlt_window_before_c1() -> None:
    assert dlt_window(()) is None


@pytest.mark.parametrize(
    ("count", "end"),
    [
        (1, 20),
        (2, 27),
    ],  # one 21-day cycle: C1D1 + 20; with C2 (28 days on): the day before
)
def test_dlt_window_generalises_by_cycle_length_and_count(count: int, end: int) -> None:
    params = ScheduleParams(cycle_length_days=21, dlt_window_cycles=1)
    window = dlt_window(cycles_every_28_days(count), params)
    assert window is not None and window.end == d(end, C1D1)


# --- visit calendar (PROTOCOL 7) ---------------------------------------------------


def follow_up(
    cycles: int = 4,
    eot: date | None = None,
    death: date | None = None,
    withdrawal: date | None = None,
    done: tuple[DoneAssessment, ...] = (),
) -> FollowUpFacts:
    return FollowUpFacts(HCT, cycles_every_28_days(cycles), eot, death, withdrawal, done)


def calendar(facts: FollowUpFacts, today: date) -> dict[str, tuple[date, date, date, str]]:
    return {p.key: (p.due, p.window_start, p.window_end, p.status) for p in visit_calendar(facts, today)}


def test_calendar_before_eot_lists_hct_and_c1d1_anchored_assessments() -> None:
    got = calendar(follow_up(), today=d(85))
    assert got == {
        "mrd_pre_c1d1": (C1D1, d(-14, C1D1), C1D1, "overdue"),
        "mrd_hct_3m": (d(91), d(77), d(105), "due"),
        "mrd_hct_6m": (d(182), d(168), d(196), "upcoming"),
        "mrd_hct_9m": (d(273), d(259), d(287), "upcoming"),
        "marrow_c1d1_3m": (d(91, C1D1), d(77, C1D1), d(105, C1D1), "upcoming"),
        "marrow_c1d1_6m": (d(182, C1D1), d(168, C1D1), d(196, C1D1), "upcoming"),
        "marrow_c1d1_9m": (d(273, C1D1), d(259, C1D1), d(287, C1D1), "upcoming"),
    }


def test_calendar_is_sorted_by_due_date() -> None:
    planned = visit_calendar(follow_up(eot=d(120, C1D1)), d(0))
    assert [p.due for p in planned] == sorted(p.due for p in planned)


def test_no_calendar_entry_without_its_anchor() -> None:
    keys = {p.key for p in visit_calendar(follow_up(cycles=0), d(50))}
    assert keys == {"mrd_hct_3m", "mrd_hct_6m", "mrd_hct_9m"}


@pytest.mark.parametrize(
    ("mrd_day", "status"),
    [(76, "overdue"), (77, "done"), (91, "done"), (105, "done"), (106, "overdue")],
)
def test_an_assessment_counts_only_inside_its_window(mrd_day: int, status: str) -> None:
    facts = follow_up(done=(DoneAssessment("mrd", d(mrd_day)),))
    (mrd_3m,) = [p for p in visit_calendar(facts, d(200)) if p.key == "mrd_hct_3m"]
    assert mrd_3m.status == status
    assert mrd_3m.done_on == (d(mrd_day) if status == "done" else None)


def test_pre_treatment_mrd_window_is_the_14_days_before_c1d1() -> None:
    def status(day: int) -> str:
        facts = follow_up(done=(DoneAssessment("mrd", d(day, C1D1)),))
        return next(p.status for p in visit_calendar(facts, C1D1) if p.key == "mrd_pre_c1d1")

    # Issue 19 (19): on C1D1 the dose is recorded, so a missing pre-dose MRD is missed
    # ("overdue"), never "due" after the dose.
    assert [status(n) for n in (-15, -14, 0, 1)] == ["overdue", "done", "done", "overdue"]


@pytest.mark.parametrize(
    ("today", "mrd_day", "status", "reason_end"),
    [
        # Today is before, on and after C1D1; C1 is recorded on C1D1 in every row.
        (d(0, C1D1), None, "overdue", "missed: none recorded before the dose"),
        (d(30, C1D1), None, "overdue", "missed: none recorded before the dose"),
        (d(30, C1D1), -3, "done", "done on 2017-07-30"),
    ],
)
def test_pre_dose_mrd_after_the_dose_is_done_or_missed_with_its_reason(
    today: date, mrd_day: int | None, status: str, reason_end: str
) -> None:
    done = () if mrd_day is None else (DoneAssessment("mrd", d(mrd_day, C1D1)),)
    entry = next(p for p in visit_calendar(follow_up(done=done), today) if p.key == "mrd_pre_c1d1")
    assert entry.status == status
    assert entry.reason.startswith("due 2017-08-02: on C1D1 2017-08-02, window -14..+0 days")
    assert entry.reason.endswith(reason_end)


def test_calendar_entries_say_why_they_are_due() -> None:
    entry = next(p for p in visit_calendar(follow_up(), d(0)) if p.key == "mrd_hct_3m")
    assert entry.reason == "due 2017-08-09: 91 days after HCT 2017-05-10, window -14..+14 days"


def test_the_kind_must_match() -> None:
    facts = follow_up(done=(DoneAssessment("bone_marrow", d(91)),))
    assert next(p.status for p in visit_calendar(facts, d(91)) if p.key == "mrd_hct_3m") == "due"


def test_eot_and_last_dose_entries_once_eot_is_recorded() -> None:
    eot = d(100, C1D1)
    last_dose = d(84, C1D1)  # C4D1
    got = calendar(follow_up(eot=eot), today=eot)
    assert got["marrow_eot"] == (eot, d(-14, eot), d(14, eot), "due")
    assert got["mrd_eot_30d"] == (d(30, eot), d(16, eot), d(44, eot), "upcoming")
    assert got["marrow_last_dose_1y"] == (
        d(365, last_dose),
        d(351, last_dose),
        d(379, last_dose),
        "upcoming",
    )


@pytest.mark.parametrize(
    ("death_day", "status"),
    [
        (50, "not_applicable"),  # died before the window opened
        (100, "not_applicable"),  # died while it was open, not yet done
        (105, "not_applicable"),  # died on its last day
        (106, "overdue"),  # the window closed, missed, before death
    ],
)
def test_death_makes_later_assessments_not_applicable(death_day: int, status: str) -> None:
    planned = visit_calendar(follow_up(death=d(death_day)), today=d(400))
    assert next(p.status for p in planned if p.key == "mrd_hct_3m") == status
    assert next(p.status for p in planned if p.key == "mrd_hct_9m") == "not_applicable"


def test_withdrawal_works_like_death_and_done_stays_done() -> None:
    facts = follow_up(withdrawal=d(100), done=(DoneAssessment("mrd", d(90)),))
    got = calendar(facts, today=d(400))
    assert got["mrd_hct_3m"][3] == "done"
    assert got["mrd_hct_6m"][3] == "not_applicable"


# --- end of follow-up (PROTOCOL 7: "until 3 years after the last dose") ---------------

LAST_DOSE = d(84, C1D1)  # C4D1 of follow_up()'s four cycles


@pytest.mark.parametrize(
    ("facts", "today", "over"),
    [
        (follow_up(eot=d(100, C1D1)), d(3 * 365, LAST_DOSE), False),  # the last day of follow-up
        (follow_up(eot=d(100, C1D1)), d(3 * 365 + 1, LAST_DOSE), True),
        (follow_up(), d(5000), False),  # no EOT: the last dose is not known to be last
        (follow_up(cycles=0, eot=d(60)), d(5000), False),  # never dosed: nothing to count from
        (follow_up(death=d(150)), d(149), False),
        (follow_up(death=d(150)), d(150), True),
        (follow_up(withdrawal=d(150)), d(151), True),
    ],
)
def test_follow_up_ends_3_years_after_the_last_dose_or_at_death_or_withdrawal(
    facts: FollowUpFacts, today: date, over: bool
) -> None:
    assert follow_up_over(facts, today) is over


def test_follow_up_length_is_a_parameter() -> None:
    facts = follow_up(eot=d(100, C1D1))
    assert follow_up_over(facts, d(366, LAST_DOSE), ScheduleParams(follow_up_days=365))
    assert not follow_up_over(facts, d(366, LAST_DOSE))
