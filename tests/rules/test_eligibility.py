"""Worked examples for PROTOCOL section 2 (patients/eligibility.py), at every boundary."""

from __future__ import annotations

import dataclasses
import math
from datetime import date, timedelta
from typing import Any

import pytest

from patients.eligibility import (
    EligibilityParams,
    ScreeningFacts,
    anc_problems,
    assess_eligibility,
    platelets_problems,
    screening_validity,
)

HCT = date(2017, 5, 10)
ENROL = HCT + timedelta(days=82)  # 2017-07-31

# An eligible patient, shaped like the docs/api.md bundle example.
BASE = ScreeningFacts(
    birth_year=1975,
    consent_date=ENROL,
    diagnosis="b_all",
    cd22_positive=True,
    cr_at_day30=True,
    mrd_before=False,
    mrd_after=False,
    disease_status="cr1",
    conditioning="ric",
    hct_date=HCT,
    enrolment_date=ENROL,
    lab_date=ENROL - timedelta(days=1),
    platelets_10e9_l=133.0,
    anc_10e9_l=2.1,
    agvhd_grade=0,
    liver_gvhd=False,
    sos_history=False,
)


def facts(**changes: Any) -> ScreeningFacts:
    return dataclasses.replace(BASE, **changes)


def status(key: str, **changes: Any) -> str:
    return assess_eligibility(facts(**changes)).criterion(key).status


def test_base_patient_is_eligible_with_every_criterion_in_protocol_order() -> None:
    result = assess_eligibility(BASE)
    assert result.eligible
    assert result.overall == "eligible"
    assert [c.number for c in result.criteria] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert {c.status for c in result.criteria} == {"pass"}
    assert result.failed == () and result.missing == ()


@pytest.mark.parametrize(
    ("day", "expected"),
    [(39, "fail"), (40, "pass"), (82, "pass"), (100, "pass"), (101, "fail")],
)
def test_enrolment_day_window_is_inclusive(day: int, expected: str) -> None:
    on = HCT + timedelta(days=day)
    result = assess_eligibility(facts(enrolment_date=on, lab_date=on, consent_date=on))
    assert result.criterion("enrolment_window").status == expected
    assert result.eligible is (expected == "pass")


def test_enrolment_day_reason_in_words() -> None:
    on = HCT + timedelta(days=104)
    result = assess_eligibility(facts(enrolment_date=on, lab_date=on))
    assert result.criterion("enrolment_window").reason == "day +104 after HCT; window is +40 to +100"
    assert result.overall == "not_eligible"


@pytest.mark.parametrize(
    ("platelets", "anc", "expected"),
    [
        (50.0, 2.1, "fail"),  # strictly greater than 50
        (50.1, 2.1, "pass"),
        (133.0, 1.0, "fail"),  # strictly greater than 1.0
        (133.0, 1.01, "pass"),
        (50.0, 1.0, "fail"),
        (0.0, 0.0, "fail"),
    ],
)
def test_graft_function_thresholds(platelets: float, anc: float, expected: str) -> None:
    assert status("graft_function", platelets_10e9_l=platelets, anc_10e9_l=anc) == expected


@pytest.mark.parametrize(
    ("birth_year", "expected"),
    [(2002, "fail"), (2001, "pass"), (1942, "pass"), (1941, "fail")],
    ids=["age15", "age16", "age75", "age76"],
)
def test_age_at_consent_is_consent_year_minus_birth_year(birth_year: int, expected: str) -> None:
    result = assess_eligibility(facts(birth_year=birth_year))
    age = result.criterion("age")
    assert age.status == expected
    assert f"age {2017 - birth_year} at consent (2017 - {birth_year})" in age.reason


@pytest.mark.parametrize(
    ("days_before", "expected"),
    [(0, "pass"), (1, "pass"), (14, "pass"), (15, "fail"), (-1, "fail")],
)
def test_labs_must_be_drawn_within_14_days_before_enrolment(days_before: int, expected: str) -> None:
    assert status("graft_function", lab_date=ENROL - timedelta(days=days_before)) == expected


# Base for high-risk paths: every path fails unless changed.
NO_RISK = {
    "mrd_before": False,
    "mrd_after": False,
    "disease_status": "cr1",
    "conditioning": "mac",
}


@pytest.mark.parametrize(
    ("changes", "expected_status", "expected_paths"),
    [
        ({}, "fail", ()),
        ({"mrd_before": True}, "pass", ("mrd",)),
        ({"mrd_after": True}, "pass", ("mrd",)),
        ({"disease_status": "cr2"}, "pass", ("disease_status",)),
        ({"disease_status": "cr3_plus"}, "pass", ("disease_status",)),
        ({"conditioning": "ric"}, "pass", ("conditioning",)),
        ({"conditioning": "nma"}, "pass", ("conditioning",)),
        (
            {"mrd_after": True, "disease_status": "cr2", "conditioning": "nma"},
            "pass",
            ("mrd", "disease_status", "conditioning"),
        ),
        # One passing path is enough even when another path is unknown.
        (
            {"conditioning": "ric", "mrd_before": None, "disease_status": None},
            "pass",
            ("conditioning",),
        ),
        ({"mrd_before": True, "mrd_after": None}, "pass", ("mrd",)),
        # No path passes and one is unknown: missing, not fail and never pass.
        ({"mrd_after": None}, "missing", ()),
        ({"disease_status": None}, "missing", ()),
        ({"conditioning": None}, "missing", ()),
    ],
)
def test_high_risk_paths(changes: dict[str, Any], expected_status: str, expected_paths: tuple[str, ...]) -> None:
    criterion = assess_eligibility(facts(**{**NO_RISK, **changes})).criterion("high_risk")
    assert criterion.status == expected_status
    assert criterion.paths == expected_paths


def test_high_risk_reason_names_each_path() -> None:
    criterion = assess_eligibility(facts(**{**NO_RISK, "mrd_before": True})).criterion("high_risk")
    assert criterion.reason == ("(a) MRD positive before HCT; (b) transplanted in cr1; (c) mac conditioning")


@pytest.mark.parametrize(
    ("field", "key", "base"),
    [
        ("birth_year", "age", {}),
        ("consent_date", "age", {}),
        ("diagnosis", "diagnosis", {}),
        ("cd22_positive", "diagnosis", {}),
        ("cr_at_day30", "cr_at_day30", {}),
        ("mrd_before", "high_risk", NO_RISK),
        ("mrd_after", "high_risk", NO_RISK),
        ("disease_status", "high_risk", NO_RISK),
        ("conditioning", "high_risk", NO_RISK),
        ("hct_date", "enrolment_window", {}),
        ("enrolment_date", "enrolment_window", {}),
        ("lab_date", "graft_function", {}),
        ("platelets_10e9_l", "graft_function", {}),
        ("anc_10e9_l", "graft_function", {}),
        ("agvhd_grade", "gvhd", {}),
        ("liver_gvhd", "gvhd", {}),
        ("sos_history", "sos", {}),
    ],
)
def test_each_missing_field_is_missing_never_pass(field: str, key: str, base: dict[str, Any]) -> None:
    result = assess_eligibility(facts(**{**base, field: None}))
    assert result.criterion(key).status == "missing"
    assert not result.eligible
    assert result.overall == "incomplete"
    if field != "enrolment_date":  # which also leaves the lab age unknown (below)
        assert [c.key for c in result.missing] == [key]


def test_enrolment_date_missing_also_makes_lab_age_missing() -> None:
    result = assess_eligibility(facts(enrolment_date=None))
    assert result.criterion("graft_function").status == "missing"
    assert [c.key for c in result.missing] == ["enrolment_window", "graft_function"]


def test_a_known_failure_outranks_a_missing_fact() -> None:
    result = assess_eligibility(facts(platelets_10e9_l=40.0, anc_10e9_l=None))
    assert result.criterion("graft_function").status == "fail"
    assert result.overall == "not_eligible"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"diagnosis": "cml_lymphoid_blast"}, "pass"),
        # PROTOCOL 2.2 read literally: CD22 positivity is required for ALL only.
        ({"diagnosis": "cml_lymphoid_blast", "cd22_positive": None}, "pass"),
        ({"diagnosis": "cml_lymphoid_blast", "cd22_positive": False}, "pass"),
        ({"cd22_positive": False}, "fail"),
        ({"diagnosis": "aml"}, "fail"),
    ],
)
def test_diagnosis(changes: dict[str, Any], expected: str) -> None:
    assert status("diagnosis", **changes) == expected


def test_cd22_can_be_required_for_cml_too_by_parameter() -> None:
    params = EligibilityParams(cd22_required_for=frozenset({"b_all", "cml_lymphoid_blast"}))
    result = assess_eligibility(facts(diagnosis="cml_lymphoid_blast", cd22_positive=None), params)
    assert result.criterion("diagnosis").status == "missing"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"agvhd_grade": 2}, "pass"),
        ({"agvhd_grade": 3}, "fail"),
        ({"agvhd_grade": 4}, "fail"),
        ({"liver_gvhd": True}, "fail"),  # any grade of liver GVHD
        ({"agvhd_grade": 1, "liver_gvhd": True}, "fail"),
        ({"agvhd_grade": 5}, "missing"),  # not a grade: unusable, not a pass
        ({"agvhd_grade": 3, "liver_gvhd": None}, "fail"),
    ],
)
def test_gvhd(changes: dict[str, Any], expected: str) -> None:
    assert status("gvhd", **changes) == expected


@pytest.mark.parametrize(
    ("changes", "expected"),
    [({"cr_at_day30": False}, "fail"), ({"sos_history": True}, "fail")],
)
def test_cr_and_sos(changes: dict[str, Any], expected: str) -> None:
    result = assess_eligibility(facts(**changes))
    assert result.overall == "not_eligible"
    assert [c.status for c in result.failed] == [expected]


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("platelets_10e9_l", 50000.0, "did you mean 50 x10^9/L?"),
        ("anc_10e9_l", 1500.0, "did you mean 1.5 x10^9/L?"),
    ],
)
def test_implausible_lab_is_missing_not_pass(field: str, value: float, hint: str) -> None:
    criterion = assess_eligibility(facts(**{field: value})).criterion("graft_function")
    assert criterion.status == "missing"
    assert hint in criterion.reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (133.0, ()),
        (0.0, ()),
        (2000.0, ()),
        (
            50000.0,
            (
                "Platelets 50000 x10^9/L is not plausible (expected 0 to 2000 x10^9/L): a count per uL (cells/uL) typed where x10^9/L is asked is 1000 times too large; did you mean 50 x10^9/L?",
            ),
        ),
        (
            133000.0,
            (
                "Platelets 133000 x10^9/L is not plausible (expected 0 to 2000 x10^9/L): a count per uL (cells/uL) typed where x10^9/L is asked is 1000 times too large; did you mean 133 x10^9/L?",
            ),
        ),
        (-1.0, ("Platelets cannot be negative (in x10^9/L).",)),
        (
            3e7,
            (
                "Platelets 30000000 x10^9/L is not plausible (expected 0 to 2000 x10^9/L): above 2000 x10^9/L is beyond even extreme thrombocytosis; a count per uL (e.g. 150000) typed as x10^9/L is the usual slip.",
            ),
        ),
        (math.nan, ("Platelets must be a number (in x10^9/L).",)),
    ],
)
def test_platelets_problems(value: float, expected: tuple[str, ...]) -> None:
    assert platelets_problems(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2.1, ()),
        (100.0, ()),
        (
            1500.0,
            (
                "ANC 1500 x10^9/L is not plausible (expected 0 to 100 x10^9/L): a count per uL (cells/uL) typed where x10^9/L is asked is 1000 times too large; did you mean 1.5 x10^9/L?",
            ),
        ),
        (-0.5, ("ANC cannot be negative (in x10^9/L).",)),
    ],
)
def test_anc_problems(value: float, expected: tuple[str, ...]) -> None:
    assert anc_problems(value) == expected


@pytest.mark.parametrize(
    ("day", "lab_days_before", "valid"),
    [
        (82, 14, True),
        (82, 15, False),
        (100, 0, True),
        (101, 0, False),
        (39, 0, False),
        (40, 14, True),
    ],
)
def test_screening_validity_on_a_date(day: int, lab_days_before: int, valid: bool) -> None:
    on = HCT + timedelta(days=day)
    result = screening_validity(HCT, on - timedelta(days=lab_days_before), on)
    assert result.valid is valid
    assert len(result.reasons) == 2


def test_screening_valid_from_and_until() -> None:
    lab = HCT + timedelta(days=90)
    result = screening_validity(HCT, lab, lab)
    assert result.valid_from == lab
    assert result.valid_until == HCT + timedelta(days=100)  # the day window ends first
    early = screening_validity(HCT, HCT + timedelta(days=30), HCT + timedelta(days=40))
    assert early.valid_from == HCT + timedelta(days=40)
    assert early.valid_until == HCT + timedelta(days=44)  # labs 14 days old
    assert not screening_validity(HCT, HCT + timedelta(days=10), HCT + timedelta(days=50)).valid
    none = screening_validity(HCT, HCT + timedelta(days=10), HCT + timedelta(days=50))
    assert none.valid_from is None and none.valid_until is None
    missing = screening_validity(None, lab, lab)
    assert not missing.valid and missing.valid_from is None


def test_another_trial_needs_only_other_params() -> None:
    params = EligibilityParams(
        min_age=18,
        max_age=70,
        enrolment_day_min=30,
        enrolment_day_max=90,
        platelets_above=75.0,
        anc_above=1.5,
        lab_max_age_days=7,
        agvhd_excluding_grade=2,
    )
    on = HCT + timedelta(days=30)
    ok = facts(
        birth_year=1999,
        enrolment_date=on,
        lab_date=on - timedelta(days=7),
        platelets_10e9_l=75.1,
        anc_10e9_l=1.6,
        agvhd_grade=1,
    )
    assert assess_eligibility(ok, params).eligible
    assert not assess_eligibility(ok, EligibilityParams(enrolment_day_min=40)).eligible
    for changes in (
        {"birth_year": 2000},
        {"platelets_10e9_l": 75.0},
        {"lab_date": on - timedelta(days=8)},
        {"agvhd_grade": 2},
        {
            "enrolment_date": HCT + timedelta(days=91),
            "lab_date": HCT + timedelta(days=91),
        },
    ):
        assert not assess_eligibility(dataclasses.replace(ok, **changes), params).eligible
