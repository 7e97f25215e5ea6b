"""Worked examples for the pure rules dosing.predose and dosing.reduction (no database)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from dosing.predose import SEED_PREDOSE, GvhdSosStatus, LabValues, PredoseParams, predose_check
from dosing.reduction import CycleReduction, reduction_in_force

DOSE = date(2024, 3, 1)
CLEAR = GvhdSosStatus(0, False, False)


def days_before(n: int) -> date:
    return DOSE - timedelta(days=n)


def statuses(panels, status=CLEAR, params=SEED_PREDOSE):  # type: ignore[no-untyped-def]
    check = predose_check(panels, status, DOSE, params)
    return {c.key: c.status for c in check.conditions}, check


@pytest.mark.parametrize(
    ("panels", "platelets", "anc"),
    [
        ([LabValues(days_before(1), Decimal("51"), Decimal("1.01"))], "pass", "pass"),
        ([LabValues(days_before(1), Decimal("50"), Decimal("1.0"))], "fail", "fail"),  # must EXCEED
        ([LabValues(days_before(14), Decimal("120"), Decimal("2"))], "pass", "pass"),  # day 14 is inside
        ([LabValues(days_before(15), Decimal("120"), Decimal("2"))], "missing", "missing"),  # too old
        ([LabValues(DOSE + timedelta(days=1), Decimal("120"), Decimal("2"))], "missing", "missing"),  # after dose
        ([LabValues(days_before(1), Decimal("120"), None)], "pass", "missing"),
        # the latest value counts: yesterday's low platelets beat last week's normal ones
        ([LabValues(days_before(7), Decimal("120"), Decimal("2")), LabValues(days_before(1), Decimal("30"), None)],
         "fail", "pass"),
        ([], "missing", "missing"),
    ],
)  # fmt: skip
def test_lab_conditions(panels, platelets, anc):  # type: ignore[no-untyped-def]
    got, _ = statuses(panels)
    assert (got["platelets"], got["anc"]) == (platelets, anc)


@pytest.mark.parametrize(
    ("status", "key", "expected"),
    [
        (GvhdSosStatus(2, False, False), "acute_gvhd", "pass"),
        (GvhdSosStatus(3, False, False), "acute_gvhd", "fail"),
        (GvhdSosStatus(4, False, False), "acute_gvhd", "fail"),
        (GvhdSosStatus(None, False, False), "acute_gvhd", "missing"),
        (GvhdSosStatus(0, True, False), "liver_gvhd", "fail"),
        (GvhdSosStatus(0, None, False), "liver_gvhd", "missing"),
        (GvhdSosStatus(0, False, True), "sos", "fail"),
        (GvhdSosStatus(0, False, None), "sos", "missing"),
    ],
)
def test_gvhd_and_sos_conditions(status, key, expected):  # type: ignore[no-untyped-def]
    got, check = statuses([LabValues(days_before(1), Decimal("120"), Decimal("2"))], status)
    assert got[key] == expected
    assert [c.key for c in check.problems] == ([] if expected == "pass" else [key])


def test_every_condition_reported_and_thresholds_are_parameters() -> None:
    got, check = statuses([LabValues(days_before(20), Decimal("60"), Decimal("2"))], params=PredoseParams(lab_days=30))
    assert list(got) == ["platelets", "anc", "acute_gvhd", "liver_gvhd", "sos"] and check.passed
    got, _ = statuses(
        [LabValues(days_before(1), Decimal("60"), Decimal("2"))], params=PredoseParams(min_platelets=Decimal(75))
    )
    assert got["platelets"] == "fail"
    assert check.conditions[0].detail == "60 x10^9/L on 2024-02-10"


def r(number: int, reduced: bool = False, restored: bool = False) -> CycleReduction:
    return CycleReduction(number, reduced, "cytopenia" if reduced else "", restored)


@pytest.mark.parametrize(
    ("history", "reduced", "since"),
    [
        ([], False, None),
        ([r(1)], False, None),
        ([r(1), r(2, reduced=True)], True, 2),
        ([r(1), r(2, reduced=True), r(3, reduced=True)], True, 2),  # carried over: one step only
        ([r(1), r(2, reduced=True), r(3, reduced=True, restored=True)], False, None),
        ([r(1, reduced=True, restored=True), r(2)], False, None),
        ([r(1, reduced=True, restored=True), r(2, reduced=True)], True, 2),  # reduced again later
    ],
)
def test_reduction_carry_over(history, reduced, since):  # type: ignore[no-untyped-def]
    state = reduction_in_force(history)
    assert (state.reduced, state.since_cycle) == (reduced, since)
