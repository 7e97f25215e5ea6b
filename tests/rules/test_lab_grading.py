"""Lab values to proposed CTCAE v5.0 grades (safety/lab_grading.py), every threshold."""

from __future__ import annotations

from decimal import Decimal

import pytest

from safety.ctcae import BUNDLED_CSV, load_ctcae
from safety.lab_grading import (
    CRITERIA,
    ConfirmedLabAe,
    LabResult,
    LabTest,
    Number,
    grade_alt,
    grade_ast,
    grade_bilirubin,
    grade_hemoglobin,
    grade_lab,
    grade_neutrophil_count,
    grade_platelet_count,
    lab_test_of_term,
    regrade_mismatches,
    to_decimal,
)


# Platelets, LLN 150 x10^9/L: each cut-off and the value just beyond it.
@pytest.mark.parametrize(
    ("value", "grade"),
    [
        (250, 0),
        (150, 0),
        (150.0, 0),
        (149.9, 1),
        (75.1, 1),
        (75.0, 1),
        (74.9, 2),
        (50.0, 2),
        (49.9, 3),
        (25.0, 3),
        (24.9, 4),
        (0, 4),
        ("74.9", 2),
        (Decimal("75.000"), 1),
        (Decimal("74.999"), 2),
    ],
)
def test_platelets(value: Number, grade: int) -> None:
    result = grade_platelet_count(value, lln=150)
    assert result.grade == grade
    assert result.term == "Platelet count decreased"
    assert result.meddra_code == "10035528"


@pytest.mark.parametrize(
    ("value", "grade", "rule"),
    [
        (150, 0, ">= LLN (not decreased)"),
        (75.0, 1, "<LLN - 75.0 x 10e9 /L"),
        (74.9, 2, "<75.0 - 50.0 x 10e9 /L"),
        (49.9, 3, "<50.0 - 25.0 x 10e9 /L"),
        (24.9, 4, "<25.0 x 10e9 /L"),
    ],
)
def test_platelet_rule_text(value: Number, grade: int, rule: str) -> None:
    result = grade_platelet_count(value, lln=150)
    assert (result.grade, result.rule) == (grade, rule)
    assert f"grade {grade}" in result.explanation
    assert "(LLN 150)" in result.explanation


@pytest.mark.parametrize(
    ("value", "lln", "grade"),
    [
        (2.0, 2.0, 0),
        (1.99, 2.0, 1),
        (1.5, 2.0, 1),
        (1.49, 2.0, 2),
        (1.0, 2.0, 2),
        (0.99, 2.0, 3),
        (0.5, 2.0, 3),
        (0.49, 2.0, 4),
        (0, 2.0, 4),
        # LLN at the grade-2 cut-off: grade 1 is empty.
        (1.5, 1.5, 0),
        (1.49, 1.5, 2),
        # LLN below the cut-off: the printed range "<1.5 - 1.0" still applies.
        (1.45, 1.4, 2),
        # 0.1 + 0.2 as a float is 0.30000000000000004; still grade 4.
        (0.1 + 0.2, 2.0, 4),
    ],
)
def test_neutrophils(value: Number, lln: Number, grade: int) -> None:
    result = grade_neutrophil_count(value, lln=lln)
    assert result.grade == grade
    assert result.meddra_code == "10029366"


@pytest.mark.parametrize(
    ("value", "grade"),
    [
        (135, 0),
        (120, 0),
        (119.9, 1),
        (100, 1),
        (99.9, 2),
        (80, 2),
        (79.9, 3),
        (40, 3),
        (0, 3),  # never 4: grade 4 anemia is clinical
    ],
)
def test_hemoglobin(value: Number, grade: int) -> None:
    result = grade_hemoglobin(value, lln=120)
    assert result.grade == grade
    assert result.term == "Anemia"
    assert result.meddra_code == "10002272"
    assert "grade 4" in result.note and "clinical" in result.note


BILI_ULN = 20  # umol/L


@pytest.mark.parametrize(
    ("value", "baseline", "grade"),
    [
        # Baseline normal (or unknown, or at/below ULN): multiples of ULN.
        (15, None, 0),
        (20, None, 0),
        (20.1, None, 1),
        (30, None, 1),
        (30.1, None, 2),
        (60, None, 2),
        (60.1, None, 3),
        (200, None, 3),
        (200.1, None, 4),
        (30.1, 12, 2),
        (30.1, 20, 2),  # baseline equal to ULN is normal
        # Baseline abnormal (40 > ULN 20): multiples of baseline.
        (30, 40, 0),
        (40, 40, 0),  # "> 1.0 x baseline": no rise, no grade
        (40.1, 40, 1),
        (60, 40, 1),
        (60.1, 40, 2),
        (120, 40, 2),
        (120.1, 40, 3),
        (400, 40, 3),
        (400.1, 40, 4),
    ],
)
def test_bilirubin(value: Number, baseline: Number | None, grade: int) -> None:
    result = grade_bilirubin(value, uln=BILI_ULN, baseline=baseline)
    assert result.grade == grade
    assert result.term == "Blood bilirubin increased"
    assert result.meddra_code == "10005364"


def test_bilirubin_rule_text_follows_baseline() -> None:
    assert grade_bilirubin(30.1, uln=20).rule == ">1.5 - 3.0 x ULN if baseline was normal"
    abnormal = grade_bilirubin(60.1, uln=20, baseline=40)
    assert abnormal.rule == ">1.5 - 3.0 x baseline if baseline was abnormal"
    assert "1.50 x baseline 40" in abnormal.explanation
    assert "abnormal" in abnormal.explanation


ALT_ULN = 40  # U/L


@pytest.mark.parametrize("grader", [grade_alt, grade_ast])
@pytest.mark.parametrize(
    ("value", "baseline", "grade"),
    [
        # Baseline normal: >ULN - 3.0, >3.0 - 5.0, >5.0 - 20.0, >20.0 x ULN.
        (40, None, 0),
        (40.1, None, 1),
        (120, None, 1),
        (120.1, None, 2),
        (200, None, 2),
        (200.1, None, 3),
        (800, None, 3),
        (800.1, None, 4),
        (45, 30, 1),
        # Baseline abnormal (80 > ULN 40): 1.5 - 3.0, >3.0 - 5.0, >5.0 - 20.0,
        # >20.0 x baseline. Grade 1 starts AT 1.5 x baseline (no ">").
        (80, 80, 0),
        (119.9, 80, 0),
        (120, 80, 1),
        (240, 80, 1),
        (240.1, 80, 2),
        (400, 80, 2),
        (400.1, 80, 3),
        (1600, 80, 3),
        (1600.1, 80, 4),
    ],
)
def test_aminotransferases(grader: object, value: Number, baseline: Number | None, grade: int) -> None:
    assert callable(grader)
    result = grader(value, uln=ALT_ULN, baseline=baseline)
    assert result.grade == grade


def test_aminotransferase_terms_and_rule_text() -> None:
    alt = grade_alt(120, uln=40, baseline=80)
    assert alt.term == "Alanine aminotransferase increased"
    assert alt.meddra_code == "10001551"
    assert alt.rule == "1.5 - 3.0 x baseline if baseline was abnormal"
    ast = grade_ast(800.1, uln=40)
    assert ast.term == "Aspartate aminotransferase increased"
    assert ast.meddra_code == "10003481"
    assert ast.rule == ">20.0 x ULN if baseline was normal"


@pytest.mark.parametrize(
    ("result", "grade"),
    [
        (LabResult(LabTest.PLATELETS, 49.9, lln=150), 3),
        (LabResult(LabTest.ANC, 0.4, lln=1.8), 4),
        (LabResult(LabTest.HEMOGLOBIN, 95, lln=120), 2),
        (LabResult(LabTest.BILIRUBIN, 61, uln=20), 3),
        (LabResult(LabTest.ALT, 130, uln=40), 2),
        (LabResult(LabTest.AST, 130, uln=40, baseline=80), 1),
    ],
)
def test_grade_lab_dispatch(result: LabResult, grade: int) -> None:
    assert grade_lab(result).grade == grade


def test_same_number_in_any_type_grades_the_same() -> None:
    grades = {grade_platelet_count(v, lln=150).grade for v in (74.9, "74.9", Decimal("74.9"))}
    assert grades == {2}
    assert to_decimal(74.9) == Decimal("74.9")


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: grade_platelet_count(-1, lln=150), ValueError),
        (lambda: grade_platelet_count(10, lln=0), ValueError),
        (lambda: grade_platelet_count(float("nan"), lln=150), ValueError),
        (lambda: grade_platelet_count("abc", lln=150), ValueError),
        (lambda: grade_platelet_count(Decimal("Infinity"), lln=150), ValueError),
        (lambda: grade_platelet_count(True, lln=150), TypeError),
        (lambda: grade_alt(50, uln=-1), ValueError),
        (lambda: grade_alt(50, uln=40, baseline=-1), ValueError),
        (lambda: grade_lab(LabResult(LabTest.ANC, 1.0)), ValueError),
        (lambda: grade_lab(LabResult(LabTest.ALT, 1.0, lln=10)), ValueError),
    ],
)
def test_bad_input_is_refused(call: object, error: type[Exception]) -> None:
    assert callable(call)
    with pytest.raises(error):
        call()


def test_criteria_texts_are_the_files() -> None:
    """Every criterion this module prints is verbatim in the CTCAE file."""
    path = BUNDLED_CSV
    if not path.is_file():
        pytest.fail(f"the bundled CTCAE CSV is missing: {path}")
    catalogue = load_ctcae(path)
    # Platelets and ANC grades 1-4, anemia 1-3 (4 is clinical), 3 liver tests 1-4.
    assert len(CRITERIA) == 4 + 4 + 3 + 3 * 4
    for (code, grade), texts in CRITERIA.items():
        term = catalogue.by_code(code)
        assert term is not None
        printed = term.grade_text(grade)
        assert printed is not None
        for text in texts:
            assert text in printed, (term.term, grade, text)


# After a panel correction (issue 19 item 2): which confirmed AEs the new grades no longer meet.
_PLT = "10035528"
_ANC = "10029366"


@pytest.mark.parametrize(
    ("platelets", "ae_grade", "expected"),
    [
        ("40", 3, {}),  # still grade 3: nothing to review
        ("60", 3, {1: 2}),  # corrected to grade 2
        ("20", 3, {1: 4}),  # corrected to a higher grade
        ("200", 3, {1: 0}),  # no longer an AE
    ],
)
def test_regrade_mismatches(platelets: str, ae_grade: int, expected: dict[int, int]) -> None:
    grades = tuple(
        g
        for g in (
            grade_lab(LabResult(LabTest.PLATELETS, platelets, lln="150")),
            grade_lab(LabResult(LabTest.ANC, "0.8", lln="1.8")),
        )
        if g.grade >= 1
    )
    confirmed = (ConfirmedLabAe(1, _PLT, ae_grade), ConfirmedLabAe(2, _ANC, 3))
    assert regrade_mismatches(confirmed, grades) == expected


def test_lab_test_of_term() -> None:
    assert lab_test_of_term(_PLT) == (LabTest.PLATELETS, "Platelets", "x10^9/L")
    assert lab_test_of_term("00000000") is None
