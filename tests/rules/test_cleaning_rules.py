"""Worked examples for the automatic-query rules (cleaning/rules.py)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from cleaning.rules import (
    PLAUSIBLE_RANGES,
    AeStatus,
    Finding,
    ae_ongoing_at_eot,
    auto_close_text,
    lab_plausibility,
    overdue_assessments,
    reconcile,
    rule_family,
)
from dosing.schedule import DoneAssessment, FollowUpFacts, PastCycle, PlannedAssessment, visit_calendar

# --- lab values --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("analyte", "value", "flagged"),
    [
        ("platelets", 0, False),
        ("platelets", 150, False),
        ("platelets", Decimal("2000"), False),  # the bound is plausible
        ("platelets", Decimal("2000.1"), True),
        ("platelets", 150000, True),  # a count per uL typed as x10^9/L
        ("platelets", -1, True),
        ("anc", Decimal("0.00"), False),
        ("anc", 100, False),
        ("anc", 100.01, True),
        ("anc", 1500, True),
        ("hemoglobin", 95, False),
        ("hemoglobin", 20, False),
        ("hemoglobin", 9.5, True),  # g/dL typed as g/L
        ("hemoglobin", 251, True),
        ("bilirubin", 0, False),
        ("bilirubin", 1000, False),
        ("bilirubin", 1000.1, True),
        ("alt", 10000, False),
        ("alt", 10001, True),
        ("ast", "35", False),
        ("ast", "-5", True),
        ("creatinine", 80, False),
        ("creatinine", 1.1, True),  # mg/dL typed as umol/L
        ("creatinine", 3001, True),
    ],
)
def test_lab_value_against_its_plausible_range(analyte: str, value: object, flagged: bool) -> None:
    findings = lab_plausibility({analyte: value})  # type: ignore[dict-item]
    assert bool(findings) is flagged
    if flagged:
        (finding,) = findings
        assert finding.rule_code == f"lab_plausibility:{analyte}"
        assert finding.field_name == analyte
        bounds = PLAUSIBLE_RANGES[analyte]
        assert f"{bounds.low:f}-{bounds.high:f} {bounds.unit}" in finding.question


def test_lab_question_names_value_range_and_likely_slip() -> None:
    (finding,) = lab_plausibility({"platelets": Decimal("150000.0")})
    assert finding.question.startswith("Platelets 150000 x10^9/L is outside the plausible range 0-2000 x10^9/L")
    assert "count per uL" in finding.question


def test_missing_values_unknown_analytes_and_non_numbers_are_skipped() -> None:
    assert lab_plausibility({"platelets": None, "ldh": 99999, "anc": "n/a", "alt": float("nan")}) == ()


def test_every_flagged_analyte_is_reported_in_input_order() -> None:
    findings = lab_plausibility({"alt": 50000, "platelets": 120, "anc": -1})
    assert [f.rule_code for f in findings] == ["lab_plausibility:alt", "lab_plausibility:anc"]


def test_every_range_is_sane_and_explained() -> None:
    for bounds in PLAUSIBLE_RANGES.values():
        assert bounds.low < bounds.high
        assert bounds.why


# --- overdue assessments -----------------------------------------------------------

HCT = date(2017, 5, 10)
C1D1 = date(2017, 8, 2)


def _calendar(today: date, done: tuple[DoneAssessment, ...] = ()) -> tuple[PlannedAssessment, ...]:
    facts = FollowUpFacts(
        hct_date=HCT,
        cycles=(PastCycle(1, C1D1),),
        end_of_treatment=None,
        death=None,
        withdrawal=None,
        assessments=(DoneAssessment("mrd", date(2017, 7, 25)), *done),
    )
    return visit_calendar(facts, today)


@pytest.mark.parametrize(
    ("days_after_due", "flagged"),
    [
        (0, False),  # due today
        (14, False),  # last day of the +-14 window
        (15, True),  # the window closed yesterday
        (100, True),
    ],
)
def test_mrd_3_months_after_hct_is_queried_once_its_window_closed(days_after_due: int, flagged: bool) -> None:
    due = HCT + timedelta(days=91)
    today = due + timedelta(days=days_after_due)
    codes = [f.rule_code for f in overdue_assessments(_calendar(today), today)]
    assert ("assessment_overdue:mrd_hct_3m" in codes) is flagged


def test_overdue_question_names_the_assessment_its_window_and_the_delay() -> None:
    today = HCT + timedelta(days=91 + 14 + 3)
    finding = next(
        f for f in overdue_assessments(_calendar(today), today) if f.rule_code == "assessment_overdue:mrd_hct_3m"
    )
    assert finding.field_name == ""
    assert finding.question == (
        "MRD 3 months after HCT was due on 2017-08-09 (window 2017-07-26 to 2017-08-23) and is not recorded; "
        "the window closed 3 days ago. Please enter the assessment, or say why it was not done."
    )


def test_an_assessment_entered_inside_the_window_clears_the_finding() -> None:
    today = HCT + timedelta(days=200)
    late = _calendar(today)
    fixed = _calendar(today, (DoneAssessment("mrd", HCT + timedelta(days=95)),))
    assert "assessment_overdue:mrd_hct_3m" in {f.rule_code for f in overdue_assessments(late, today)}
    assert "assessment_overdue:mrd_hct_3m" not in {f.rule_code for f in overdue_assessments(fixed, today)}


# --- AE ongoing at end of treatment ---------------------------------------------------

EOT = date(2017, 12, 1)


@pytest.mark.parametrize(
    ("onset", "resolved", "outcome", "eot", "flagged"),
    [
        (date(2017, 9, 1), None, "", EOT, True),
        (date(2017, 9, 1), None, "recovering", EOT, True),
        (date(2017, 9, 1), None, "unknown", EOT, True),
        (EOT, None, "", EOT, True),  # began on the day treatment ended
        (date(2017, 9, 1), None, "", None, False),  # no EOT yet: still on treatment
        (date(2017, 9, 1), date(2017, 9, 20), "recovered", EOT, False),
        (date(2017, 9, 1), date(2018, 1, 5), "recovered", EOT, False),  # resolved after EOT: complete
        (date(2017, 12, 2), None, "", EOT, False),  # began after EOT
        (date(2017, 9, 1), None, "not_recovered", EOT, False),  # ongoing confirmed
        (date(2017, 9, 1), None, "fatal", EOT, False),  # ended with the death record
    ],
)
def test_ae_ongoing_at_end_of_treatment(
    onset: date, resolved: date | None, outcome: str, eot: date | None, flagged: bool
) -> None:
    finding = ae_ongoing_at_eot(AeStatus("Nausea G2", onset, resolved, outcome), eot)
    assert (finding is not None) is flagged
    if finding is not None:
        assert (finding.rule_code, finding.field_name) == ("ae_ongoing_at_eot", "resolved")
        assert "Nausea G2" in finding.question and "2017-12-01" in finding.question


# --- the sweep's decision --------------------------------------------------------------

LAB = Finding("lab_plausibility:alt", "alt", "?")
EOT_AE = Finding("ae_ongoing_at_eot", "resolved", "?")


def test_reconcile_raises_new_findings_once() -> None:
    plan = reconcile([(("lab", 1), LAB), (("lab", 1), LAB)], {})
    assert plan.to_raise == ((("lab", 1), LAB),)
    assert plan.to_close == ()


def test_reconcile_is_idempotent_with_an_unclosed_query() -> None:
    plan = reconcile([(("lab", 1), LAB)], {(("lab", 1), LAB.rule_code): 7})
    assert (plan.to_raise, plan.to_close) == ((), ())


def test_reconcile_closes_queries_whose_finding_is_gone() -> None:
    unclosed = {(("lab", 1), LAB.rule_code): 7, (("ae", 2), EOT_AE.rule_code): 3, (("lab", 9), LAB.rule_code): 9}
    plan = reconcile([(("lab", 9), LAB)], unclosed)
    assert plan.to_close == (3, 7)


def test_reconcile_leaves_other_rule_families_alone() -> None:
    plan = reconcile(
        [], {(("lab", 1), "future_rule:x"): 5, (("lab", 1), LAB.rule_code): 6}, families=["lab_plausibility"]
    )
    assert plan.to_close == (6,)


def test_reconcile_does_not_ask_again_what_a_person_confirmed() -> None:
    plan = reconcile([(("lab", 1), LAB)], {}, confirmed=[(("lab", 1), LAB.rule_code)])
    assert plan.to_raise == ()


def test_rule_family() -> None:
    assert rule_family("lab_plausibility:platelets") == "lab_plausibility"
    assert rule_family("ae_ongoing_at_eot") == "ae_ongoing_at_eot"


def test_auto_close_text_says_why_per_rule_family() -> None:
    assert "plausible range" in auto_close_text("lab_plausibility:anc")
    assert "resolution date" in auto_close_text("ae_ongoing_at_eot")
    assert "assessment is recorded" in auto_close_text("assessment_overdue:mrd_hct_3m")
    assert auto_close_text("future_rule").startswith("Closed automatically")


# --- the pre-lock checklist (issue 19) -----------------------------------------------


@pytest.mark.parametrize(
    ("open_queries", "records", "verified", "signed", "clear", "summary"),
    [
        (0, 21, 21, True, True, ""),
        (0, 21, 0, False, False, "21 of 21 records not source verified; no valid investigator review signature"),
        (2, 21, 21, True, False, "2 unclosed queries"),
        (1, 1, 0, True, False, "1 unclosed query; 1 of 1 record not source verified"),
        (0, 5, 5, False, False, "no valid investigator review signature"),
        (0, 0, 0, True, True, ""),
    ],
)
def test_lock_checklist_from_counts(open_queries, records, verified, signed, clear, summary):  # type: ignore[no-untyped-def]
    from cleaning.rules import lock_checklist

    checklist = lock_checklist(open_queries=open_queries, records=records, verified=verified, review_signed=signed)
    assert checklist.clear is clear
    assert checklist.summary() == summary
    assert [item.key for item in checklist.items] == ["open_queries", "unverified_records", "investigator_review"]
