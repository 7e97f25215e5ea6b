"""patients.clinical_dates: the one rule for every clinical date, as worked examples."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from patients.clinical_dates import DateBounds, birth_year_problems, date_problems, not_before
from safety.adverse_events import sae_report_problems

TODAY = date(2026, 3, 11)
BOUNDS = DateBounds(today=TODAY, birth_year=1975, zone="Pacific/Auckland")
FUTURE = "The AE onset {} is in the future: enter a date up to today (2026-03-11, Pacific/Auckland)."
BEFORE_BIRTH = "The AE onset {} is before the patient's birth year (1975)."


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ()),  # an empty optional date (an ongoing AE) is not checked
        (TODAY, ()),  # today counts as the past
        (date(2026, 3, 12), (FUTURE.format("2026-03-12"),)),  # tomorrow
        (date(9999, 12, 31), (FUTURE.format("9999-12-31"),)),  # a typing slip far ahead
        (date(1975, 1, 1), ()),  # the floor: 1 January of the birth year
        (date(1974, 12, 31), (BEFORE_BIRTH.format("1974-12-31"),)),  # the day before it
        (date(1, 1, 1), (BEFORE_BIRTH.format("0001-01-01"),)),  # the date picker's minimum
    ],
)
def test_date_problems(value: date | None, expected: tuple[str, ...]) -> None:
    assert date_problems("AE onset", value, BOUNDS) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (date(1, 1, 1), ()),  # no birth year on file: only the future is refused
        (TODAY, ()),
        (date(2026, 3, 12), ("The lab date 2026-03-12 is in the future: enter a date up to today (2026-03-11, UTC).",)),
    ],
)
def test_date_problems_without_a_birth_year(value: date, expected: tuple[str, ...]) -> None:
    assert date_problems("lab date", value, DateBounds(today=TODAY, birth_year=None)) == expected


def test_the_future_is_named_before_the_floor() -> None:
    """A date cannot be both; the check order is stable (one message per date)."""
    bounds = DateBounds(today=date(1970, 6, 1), birth_year=1975)
    assert date_problems("HCT date", date(1970, 6, 2), bounds) == (
        "The HCT date 1970-06-02 is in the future: enter a date up to today (1970-06-01, UTC).",
    )


@pytest.mark.parametrize(
    ("value", "anchor", "expected"),
    [
        (date(2024, 1, 9), date(2024, 1, 10), ("The GVHD onset 2024-01-09 is before the HCT date (2024-01-10).",)),
        (date(2024, 1, 10), date(2024, 1, 10), ()),  # the same day is in order
        (date(2024, 1, 11), date(2024, 1, 10), ()),
        (None, date(2024, 1, 10), ()),  # nothing to order
        (date(2024, 1, 9), None, ()),  # no anchor on file (yet)
    ],
)
def test_not_before(value: date | None, anchor: date | None, expected: tuple[str, ...]) -> None:
    assert not_before("GVHD onset", value, "HCT date", anchor) == expected


EARLIEST = ("lab date", date(1999, 5, 2), "lab panel #7")


@pytest.mark.parametrize(
    ("birth_year", "earliest", "expected"),
    [
        (1999, EARLIEST, ()),  # the same year: the floor is 1 January
        (1960, EARLIEST, ()),
        (
            2000,
            EARLIEST,
            (
                "The birth year 2000 is after the lab date 1999-05-02 (lab panel #7): "
                "correct that record first, or keep the birth year.",
            ),
        ),
        (2000, None, ()),  # no clinical date on file yet
        (None, EARLIEST, ()),
    ],
)
def test_birth_year_problems(
    birth_year: int | None, earliest: tuple[str, date, str] | None, expected: tuple[str, ...]
) -> None:
    assert birth_year_problems(birth_year, earliest) == expected


# --- the SAE report time (safety.adverse_events.sae_report_problems) ---------------------

AUCKLAND = ZoneInfo("Pacific/Auckland")
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # 2026-03-11 01:00 in Auckland


@pytest.mark.parametrize(
    ("reported_at", "onset", "expected"),
    [
        (None, date(2026, 3, 1), ()),
        (NOW, date(2026, 3, 11), ()),  # now, on the onset day (Auckland's date)
        (NOW - timedelta(days=3), None, ()),
        (
            NOW + timedelta(minutes=1),
            date(2026, 3, 1),
            (
                "The SAE report time 2026-03-11 01:01 (Pacific/Auckland) is in the future: "
                "enter a time up to now (2026-03-11 01:00, Pacific/Auckland).",
            ),
        ),
        (
            datetime(2026, 3, 10, 10, 0, tzinfo=UTC),  # 2026-03-10 23:00 in Auckland
            date(2026, 3, 11),
            ("The SAE report time 2026-03-10 23:00 (Pacific/Auckland) is before the AE onset (2026-03-11).",),
        ),
    ],
)
def test_sae_report_problems(reported_at: datetime | None, onset: date | None, expected: tuple[str, ...]) -> None:
    problems = sae_report_problems(reported_at, onset=onset, now=NOW, zone=AUCKLAND, zone_name="Pacific/Auckland")
    assert problems == expected
