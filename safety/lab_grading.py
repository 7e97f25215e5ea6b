"""Propose a CTCAE v5.0 grade from a lab value (PROTOCOL section 4).

The coordinator confirms every proposed grade (section 4, second bullet); this
module only proposes, and says which CTCAE criterion fired so the proposal can
be checked against the printed table.

Inputs are SI as the API (docs/api.md) carries them: counts in x10^9/L, haemoglobin
in g/L, bilirubin in umol/L, enzymes in U/L, each with the reporting lab's LLN
or ULN. Every comparison is done in Decimal: 74.9 must be below 75.0 and 75.0
must not be, whatever binary float the caller had; floats are converted through
their shortest repr (74.9 -> Decimal("74.9")), never through their binary value.

The criterion texts below are copied from the CTCAE v5.0 file (the SI part of
each grade cell); a test checks each is a substring of the file's text.

Conventions the CTCAE table leaves to the reader, chosen here:
- Decreased counts: the absolute cut-offs (75/50/25 for platelets, 1.5/1.0/0.5
  for ANC, 100/80 g/L for Hgb) apply whatever the lab's LLN; grade 1 is "below
  LLN but not below the grade-2 cut-off". A value equal to LLN is normal (grade
  1 reads "<LLN"). So with an LLN below the grade-2 cut-off, grade 1 cannot
  occur and a value under the cut-off is grade 2 (as the printed ranges say).
- Increased values: "baseline abnormal" means a baseline above ULN. With no
  baseline given, the baseline is taken as normal (the usual case: eligibility
  excludes active liver disease, PROTOCOL section 2).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from types import MappingProxyType

from safety.ctcae import (
    ALANINE_AMINOTRANSFERASE_INCREASED,
    ANEMIA,
    ASPARTATE_AMINOTRANSFERASE_INCREASED,
    BLOOD_BILIRUBIN_INCREASED,
    NEUTROPHIL_COUNT_DECREASED,
    PLATELET_COUNT_DECREASED,
)

Number = Decimal | int | float | str


class LabTest(StrEnum):
    PLATELETS = "platelets"
    ANC = "anc"
    HEMOGLOBIN = "hemoglobin"
    BILIRUBIN = "bilirubin"
    ALT = "alt"
    AST = "ast"


@dataclass(frozen=True, slots=True)
class LabGrade:
    grade: int  # 0 = no grade (within the normal range / not increased enough)
    term: str
    meddra_code: str
    rule: str  # the CTCAE criterion that fired, as printed, or the normal range
    explanation: str  # the value compared, in words
    note: str = ""


@dataclass(frozen=True, slots=True)
class LabResult:
    """One lab value with its reference limits, for `grade_lab`."""

    test: LabTest
    value: Number
    lln: Number | None = None
    uln: Number | None = None
    baseline: Number | None = None


@dataclass(frozen=True, slots=True)
class _DecreaseBand:
    grade: int
    below: Decimal  # the value is in this band if value < below ...
    text: str  # ... and not in a worse band


@dataclass(frozen=True, slots=True)
class _IncreaseBand:
    grade: int
    factor: Decimal  # value > factor x reference (>= when inclusive)
    inclusive: bool
    text_normal: str
    text_abnormal: str


@dataclass(frozen=True, slots=True)
class _DecreaseSpec:
    term: str
    meddra_code: str
    label: str
    unit: str
    lln_text: str  # grade 1 text, "<LLN - x"
    bands: tuple[_DecreaseBand, ...]  # worst grade first
    note: str = ""


@dataclass(frozen=True, slots=True)
class _IncreaseSpec:
    term: str
    meddra_code: str
    label: str
    unit: str
    bands: tuple[_IncreaseBand, ...]  # worst grade first, grade 1 last


_PLATELETS = _DecreaseSpec(
    term="Platelet count decreased",
    meddra_code=PLATELET_COUNT_DECREASED,
    label="Platelets",
    unit="x10^9/L",
    lln_text="<LLN - 75.0 x 10e9 /L",
    bands=(
        _DecreaseBand(4, Decimal("25.0"), "<25.0 x 10e9 /L"),
        _DecreaseBand(3, Decimal("50.0"), "<50.0 - 25.0 x 10e9 /L"),
        _DecreaseBand(2, Decimal("75.0"), "<75.0 - 50.0 x 10e9 /L"),
    ),
)

_ANC = _DecreaseSpec(
    term="Neutrophil count decreased",
    meddra_code=NEUTROPHIL_COUNT_DECREASED,
    label="ANC",
    unit="x10^9/L",
    lln_text="<LLN - 1.5 x 10e9 /L",
    bands=(
        _DecreaseBand(4, Decimal("0.5"), "<0.5 x 10e9 /L"),
        _DecreaseBand(3, Decimal("1.0"), "<1.0 - 0.5 x 10e9 /L"),
        _DecreaseBand(2, Decimal("1.5"), "<1.5 - 1.0 x 10e9 /L"),
    ),
)

# CTCAE Anemia grade 3 reads "<80 g/L; transfusion indicated" and grade 4
# "Life-threatening consequences; urgent intervention indicated": grade 4 has
# no Hgb threshold, so a lab value can never propose it.
_HEMOGLOBIN = _DecreaseSpec(
    term="Anemia",
    meddra_code=ANEMIA,
    label="Hgb",
    unit="g/L",
    lln_text="<LLN - 100 g/L",
    bands=(
        _DecreaseBand(3, Decimal(80), "<80 g/L"),
        _DecreaseBand(2, Decimal(100), "<100 - 80g/L"),
    ),
    note=(
        "Hgb grades anemia up to grade 3 only: grade 4 (life-threatening "
        "consequences; urgent intervention indicated) is a clinical judgement, "
        "not lab-based, and grade 3 also reads 'transfusion indicated'"
    ),
)

_BILIRUBIN = _IncreaseSpec(
    term="Blood bilirubin increased",
    meddra_code=BLOOD_BILIRUBIN_INCREASED,
    label="Bilirubin",
    unit="umol/L",
    bands=(
        _IncreaseBand(
            4,
            Decimal("10.0"),
            False,
            ">10.0 x ULN if baseline was normal",
            ">10.0 x baseline if baseline was abnormal",
        ),
        _IncreaseBand(
            3,
            Decimal("3.0"),
            False,
            ">3.0 - 10.0 x ULN if baseline was normal",
            ">3.0 - 10.0 x baseline if baseline was abnormal",
        ),
        _IncreaseBand(
            2,
            Decimal("1.5"),
            False,
            ">1.5 - 3.0 x ULN if baseline was normal",
            ">1.5 - 3.0 x baseline if baseline was abnormal",
        ),
        # The file prints "> 1.0 - 1.5 x baseline": a value equal to an abnormal
        # baseline is no increase, grade 0.
        _IncreaseBand(
            1,
            Decimal("1.0"),
            False,
            ">ULN - 1.5 x ULN if baseline was normal",
            "> 1.0 - 1.5 x baseline if baseline was abnormal",
        ),
    ),
)


def _aminotransferase_bands() -> tuple[_IncreaseBand, ...]:
    return (
        _IncreaseBand(
            4,
            Decimal("20.0"),
            False,
            ">20.0 x ULN if baseline was normal",
            ">20.0 x baseline if baseline was abnormal",
        ),
        _IncreaseBand(
            3,
            Decimal("5.0"),
            False,
            ">5.0 - 20.0 x ULN if baseline was normal",
            ">5.0 - 20.0 x baseline if baseline was abnormal",
        ),
        _IncreaseBand(
            2,
            Decimal("3.0"),
            False,
            ">3.0 - 5.0 x ULN if baseline was normal",
            ">3.0 - 5.0 x baseline if baseline was abnormal",
        ),
        # Grade 1 differs by baseline: ">ULN" (strict, factor 1.0) when normal,
        # "1.5 - 3.0 x baseline" (inclusive 1.5) when abnormal; see _grade_increase.
        _IncreaseBand(
            1,
            Decimal("1.5"),
            True,
            ">ULN - 3.0 x ULN if baseline was normal",
            "1.5 - 3.0 x baseline if baseline was abnormal",
        ),
    )


_ALT = _IncreaseSpec(
    term="Alanine aminotransferase increased",
    meddra_code=ALANINE_AMINOTRANSFERASE_INCREASED,
    label="ALT",
    unit="U/L",
    bands=_aminotransferase_bands(),
)

_AST = _IncreaseSpec(
    term="Aspartate aminotransferase increased",
    meddra_code=ASPARTATE_AMINOTRANSFERASE_INCREASED,
    label="AST",
    unit="U/L",
    bands=_aminotransferase_bands(),
)


def _criteria() -> Mapping[tuple[str, int], tuple[str, ...]]:
    table: dict[tuple[str, int], tuple[str, ...]] = {}
    for spec in (_PLATELETS, _ANC, _HEMOGLOBIN):
        table[(spec.meddra_code, 1)] = (spec.lln_text,)
        for band in spec.bands:
            table[(spec.meddra_code, band.grade)] = (band.text,)
    for ispec in (_BILIRUBIN, _ALT, _AST):
        for iband in ispec.bands:
            table[(ispec.meddra_code, iband.grade)] = (
                iband.text_normal,
                iband.text_abnormal,
            )
    return MappingProxyType(table)


# Criterion texts per (MedDRA code, grade), for screens that show them and for
# the test that checks them against the CTCAE file.
CRITERIA = _criteria()


def to_decimal(value: Number, name: str = "value") -> Decimal:
    """Exact decimal of a lab number; floats via their shortest repr."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, not a bool")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, not {value!r}")
        return Decimal(repr(value))
    try:
        result = Decimal(value) if isinstance(value, (int, Decimal)) else Decimal(value.strip())
    except InvalidOperation:
        raise ValueError(f"{name} is not a number: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"{name} must be finite, not {value!r}")
    return result


def grade_platelet_count(value: Number, *, lln: Number) -> LabGrade:
    """Platelet count decreased, value and LLN in x10^9/L."""
    return _grade_decrease(_PLATELETS, value, lln)


def grade_neutrophil_count(value: Number, *, lln: Number) -> LabGrade:
    """Neutrophil count decreased, ANC and LLN in x10^9/L."""
    return _grade_decrease(_ANC, value, lln)


def grade_hemoglobin(value: Number, *, lln: Number) -> LabGrade:
    """Anemia, Hgb and LLN in g/L. Never proposes grade 4 (clinical)."""
    return _grade_decrease(_HEMOGLOBIN, value, lln)


def grade_bilirubin(value: Number, *, uln: Number, baseline: Number | None = None) -> LabGrade:
    """Blood bilirubin increased, umol/L (any unit, as long as all three agree)."""
    return _grade_increase(_BILIRUBIN, value, uln, baseline)


def grade_alt(value: Number, *, uln: Number, baseline: Number | None = None) -> LabGrade:
    """Alanine aminotransferase increased, U/L."""
    return _grade_increase(_ALT, value, uln, baseline)


def grade_ast(value: Number, *, uln: Number, baseline: Number | None = None) -> LabGrade:
    """Aspartate aminotransferase increased, U/L."""
    return _grade_increase(_AST, value, uln, baseline)


def grade_lab(result: LabResult) -> LabGrade:
    """Dispatch on the test; the limit the test needs (LLN or ULN) is required."""
    if result.test in (LabTest.PLATELETS, LabTest.ANC, LabTest.HEMOGLOBIN):
        if result.lln is None:
            raise ValueError(f"{result.test.value} needs the lab's LLN")
        spec = {
            LabTest.PLATELETS: _PLATELETS,
            LabTest.ANC: _ANC,
            LabTest.HEMOGLOBIN: _HEMOGLOBIN,
        }[result.test]
        return _grade_decrease(spec, result.value, result.lln)
    if result.uln is None:
        raise ValueError(f"{result.test.value} needs the lab's ULN")
    ispec = {LabTest.BILIRUBIN: _BILIRUBIN, LabTest.ALT: _ALT, LabTest.AST: _AST}[result.test]
    return _grade_increase(ispec, result.value, result.uln, result.baseline)


def _grade_decrease(spec: _DecreaseSpec, raw_value: Number, raw_lln: Number) -> LabGrade:
    value = to_decimal(raw_value, spec.label)
    lln = to_decimal(raw_lln, "LLN")
    if value < 0:
        raise ValueError(f"{spec.label} cannot be negative: {value}")
    if lln <= 0:
        raise ValueError(f"LLN must be positive: {lln}")
    seen = f"{spec.label} {value} {spec.unit} (LLN {lln})"

    def result(grade: int, rule: str) -> LabGrade:
        return LabGrade(
            grade=grade,
            term=spec.term,
            meddra_code=spec.meddra_code,
            rule=rule,
            explanation=f"{seen}: grade {grade}, {rule}",
            note=spec.note,
        )

    # Worst band first: the first cut-off the value is strictly below wins.
    for band in spec.bands:
        if value < band.below:
            return result(band.grade, band.text)
    if value < lln:
        return result(1, spec.lln_text)
    return result(0, ">= LLN (not decreased)")


def _grade_increase(spec: _IncreaseSpec, raw_value: Number, raw_uln: Number, raw_baseline: Number | None) -> LabGrade:
    value = to_decimal(raw_value, spec.label)
    uln = to_decimal(raw_uln, "ULN")
    baseline = None if raw_baseline is None else to_decimal(raw_baseline, "baseline")
    if value < 0:
        raise ValueError(f"{spec.label} cannot be negative: {value}")
    if uln <= 0:
        raise ValueError(f"ULN must be positive: {uln}")
    if baseline is not None and baseline < 0:
        raise ValueError(f"baseline cannot be negative: {baseline}")

    # CTCAE grades a rise from an abnormal baseline relative to that baseline,
    # not to ULN, so a patient who starts high is not graded for staying high.
    abnormal = baseline is not None and baseline > uln
    reference = baseline if abnormal and baseline is not None else uln
    ref_name = "baseline" if abnormal else "ULN"
    ratio = (value / reference).quantize(Decimal("0.01"))
    seen = f"{spec.label} {value} {spec.unit} = {ratio} x {ref_name} {reference}" + (
        f" (baseline {baseline}, abnormal)" if abnormal else ""
    )

    def result(grade: int, rule: str) -> LabGrade:
        return LabGrade(
            grade=grade,
            term=spec.term,
            meddra_code=spec.meddra_code,
            rule=rule,
            explanation=f"{seen}: grade {grade}, {rule}",
        )

    for band in spec.bands:
        if band.grade == 1 and not abnormal:
            # Normal baseline: grade 1 always starts just above ULN (">ULN").
            if value > uln:
                return result(1, band.text_normal)
            continue
        # Exact products in Decimal: no division, so no rounding at the edges.
        limit = band.factor * reference
        fired = value >= limit if band.inclusive else value > limit
        if fired:
            return result(band.grade, band.text_abnormal if abnormal else band.text_normal)
    if abnormal:
        return result(0, f"not above the grade 1 threshold relative to baseline {baseline}")
    return result(0, "<= ULN (not increased)")


_SPECS: Mapping[LabTest, _DecreaseSpec | _IncreaseSpec] = MappingProxyType(
    {
        LabTest.PLATELETS: _PLATELETS,
        LabTest.ANC: _ANC,
        LabTest.HEMOGLOBIN: _HEMOGLOBIN,
        LabTest.BILIRUBIN: _BILIRUBIN,
        LabTest.ALT: _ALT,
        LabTest.AST: _AST,
    }
)


def lab_test_of_term(meddra_code: str) -> tuple[LabTest, str, str] | None:
    """(test, label, unit) of the lab value a lab term is graded from, or None."""
    for test, spec in _SPECS.items():
        if spec.meddra_code == meddra_code:
            return test, spec.label, spec.unit
    return None


@dataclass(frozen=True, slots=True)
class ConfirmedLabAe:
    """An AE confirmed from a panel's proposal: its key, term and the grade it carries."""

    key: int
    meddra_code: str
    grade: int


def regrade_mismatches(confirmed: tuple[ConfirmedLabAe, ...], grades: tuple[LabGrade, ...]) -> dict[int, int]:
    """After a panel correction: the AEs whose grade the panel's values no longer meet,
    each with the grade the values meet now (0 = no AE any more). An AE never changes
    here: the coordinator reviews it (PROTOCOL s4: a person confirms every lab grade)."""
    now = {g.meddra_code: g.grade for g in grades if g.grade >= 1}
    return {ae.key: now.get(ae.meddra_code, 0) for ae in confirmed if now.get(ae.meddra_code, 0) != ae.grade}
