"""safety.adverse_events (pure): worked examples, no database."""

import datetime as dt

import pytest

from safety.adverse_events import AeDates, SummaryEvent, ae_summary, check_dates, cycle_of, sae_clock

D = dt.date
UTC = dt.UTC


@pytest.mark.parametrize(
    ("onset", "resolved", "consent", "errors"),
    [
        (D(2024, 4, 10), None, D(2024, 3, 20), set()),
        (D(2024, 4, 10), D(2024, 4, 10), D(2024, 3, 20), set()),  # resolved the same day
        (D(2024, 4, 10), D(2024, 4, 9), D(2024, 3, 20), {"resolved"}),
        (D(2024, 3, 19), None, D(2024, 3, 20), {"onset"}),
        (D(2024, 3, 20), None, D(2024, 3, 20), set()),  # on the consent day
        (D(2024, 3, 1), D(2024, 2, 1), D(2024, 3, 20), {"onset", "resolved"}),
        (D(2024, 3, 1), None, None, set()),  # no consent recorded: nothing to compare
    ],
)
def test_check_dates(onset, resolved, consent, errors):  # type: ignore[no-untyped-def]
    assert set(check_dates(AeDates(onset, resolved, consent))) == errors


CYCLES = [(1, D(2024, 4, 1)), (2, D(2024, 4, 29)), (3, D(2024, 5, 30))]


@pytest.mark.parametrize(
    ("onset", "cycle"),
    [
        (D(2024, 3, 31), None),
        (D(2024, 4, 1), 1),
        (D(2024, 4, 28), 1),
        (D(2024, 4, 29), 2),
        (D(2024, 5, 29), 2),
        (D(2024, 12, 1), 3),
    ],
)
def test_cycle_of(onset, cycle):  # type: ignore[no-untyped-def]
    assert cycle_of(onset, CYCLES) == cycle
    assert cycle_of(onset, list(reversed(CYCLES))) == cycle


KNOWN = dt.datetime(2024, 4, 10, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("reported", "now_hours", "late", "status"),
    [
        (None, 23, False, "due"),
        (None, 24, False, "due"),  # exactly at the deadline: not yet late
        (None, 25, True, "overdue"),
        (KNOWN + dt.timedelta(hours=24), 100, False, "reported on time"),
        (KNOWN + dt.timedelta(hours=24, seconds=1), 100, True, "reported late"),
    ],
)
def test_sae_clock(reported, now_hours, late, status):  # type: ignore[no-untyped-def]
    clock = sae_clock(KNOWN, 24, reported, KNOWN + dt.timedelta(hours=now_hours))
    assert clock.due == KNOWN + dt.timedelta(hours=24)
    assert (clock.late, clock.status) == (late, status)


def test_table_2_worst_grade_per_patient_and_term():  # type: ignore[no-untyped-def]
    events = [
        SummaryEvent(1, "Platelet count decreased", 1),
        SummaryEvent(1, "Platelet count decreased", 4),  # patient 1 counts once, at 4
        SummaryEvent(2, "Platelet count decreased", 2),
        SummaryEvent(2, "Nausea", 1),
        SummaryEvent(9, "Nausea", 3),  # not in the group
    ]
    summary = ae_summary([1, 2, 3], events)
    assert (summary.patients, summary.patients_with_event) == (3, 2)
    plt, nausea = summary.rows
    assert (plt.term, plt.grade_1_2, plt.grade_3_4, plt.any_grade) == ("Platelet count decreased", 1, 1, 2)
    assert (nausea.term, nausea.grade_1_2, nausea.grade_3_4, nausea.any_grade) == ("Nausea", 1, 0, 1)
    assert ae_summary([], events).rows == ()
