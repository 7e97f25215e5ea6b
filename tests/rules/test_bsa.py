"""Worked examples for BSA and the cycle dose (dosing/bsa.py), PROTOCOL section 3."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dosing.bsa import (
    BsaMethod,
    BsaParams,
    body_surface_area,
    bsa_arithmetic_text,
    bsa_unrounded,
    check_measurements,
    cycle_dose,
    dose_arithmetic_text,
)

DUBOIS = BsaParams(method="dubois")


# Published worked values: Mosteller 170 cm / 70 kg = 1.818 m² (sqrt(11900/3600));
# 180 cm / 80 kg = sqrt(4) = 2 exactly. DuBois 180 cm / 80 kg = 1.9964 m²; the rest
# were checked against an independent float evaluation of each formula.
@pytest.mark.parametrize(
    ("height", "weight", "method", "unrounded_4dp", "rounded"),
    [
        (180, 80, "mosteller", "2.0000", "2.00"),
        (170, 70, "mosteller", "1.8181", "1.82"),
        (160, 50, "mosteller", "1.4907", "1.49"),
        (175, 70, "mosteller", "1.8447", "1.84"),
        (175, 63, "mosteller", "1.7500", "1.75"),
        (180, 80, "dubois", "1.9964", "2.00"),
        (170, 70, "dubois", "1.8097", "1.81"),
        (160, 50, "dubois", "1.5011", "1.50"),
        (183, 91, "dubois", "2.1342", "2.13"),
        (150, 40, "dubois", "1.3029", "1.30"),
    ],
)
def test_bsa_worked_values(height: int, weight: int, method: BsaMethod, unrounded_4dp: str, rounded: str) -> None:
    exact = bsa_unrounded(height, weight, method)
    assert exact.quantize(Decimal("0.0001")) == Decimal(unrounded_4dp)
    assert body_surface_area(height, weight, method) == Decimal(rounded)


@settings(max_examples=200, deadline=None)
@given(
    height=st.integers(min_value=120, max_value=230),
    weight=st.integers(min_value=25, max_value=250),
)
def test_decimal_formulas_match_an_independent_float_evaluation(height: int, weight: int) -> None:
    mosteller = math.sqrt(height * weight / 3600)
    dubois = 0.007184 * weight**0.425 * height**0.725
    assert float(bsa_unrounded(height, weight, "mosteller")) == pytest.approx(mosteller, rel=1e-12)
    assert float(bsa_unrounded(height, weight, "dubois")) == pytest.approx(dubois, rel=1e-12)


@pytest.mark.parametrize(
    ("level", "height", "weight", "reduced", "params", "bsa", "dose", "text"),
    [
        (
            "0.5",
            175,
            70,
            True,
            BsaParams(),
            "1.84",
            "0.46",
            "0.5 mg/m² x 1.84 m² x 50% = 0.46 mg",
        ),
        (
            "0.5",
            175,
            70,
            False,
            BsaParams(),
            "1.84",
            "0.92",
            "0.5 mg/m² x 1.84 m² = 0.92 mg",
        ),
        (
            "0.3",
            170,
            70,
            False,
            BsaParams(),
            "1.82",
            "0.55",
            "0.3 mg/m² x 1.82 m² = 0.55 mg",
        ),
        (
            "0.6",
            180,
            80,
            True,
            DUBOIS,
            "2.00",
            "0.60",
            "0.6 mg/m² x 2.00 m² x 50% = 0.60 mg",
        ),
        # Half up at the dose: 0.3 x 1.75 = 0.525 -> 0.53 (banker's rounding gives 0.52).
        (
            "0.3",
            175,
            63,
            False,
            BsaParams(),
            "1.75",
            "0.53",
            "0.3 mg/m² x 1.75 m² = 0.53 mg",
        ),
        # The dose uses the rounded BSA, so the shown arithmetic reproduces by hand:
        # 0.6 x 1.84 = 1.104 -> 1.10 (the unrounded 1.8447 would give 1.11).
        (
            "0.6",
            175,
            70,
            False,
            BsaParams(),
            "1.84",
            "1.10",
            "0.6 mg/m² x 1.84 m² = 1.10 mg",
        ),
        # Another trial's reduction: by 25%, so 75% of the full dose is given.
        (
            "0.4",
            175,
            70,
            True,
            BsaParams(reduction_percent=Decimal(25)),
            "1.84",
            "0.55",
            "0.4 mg/m² x 1.84 m² x 75% = 0.55 mg",
        ),
    ],
)
def test_cycle_dose_and_its_arithmetic(
    level: str,
    height: int,
    weight: int,
    reduced: bool,
    params: BsaParams,
    bsa: str,
    dose: str,
    text: str,
) -> None:
    calc = cycle_dose(Decimal(level), height, weight, reduced=reduced, params=params)
    assert calc.bsa_m2 == Decimal(bsa)
    assert calc.dose_mg == Decimal(dose)
    assert str(calc.dose_mg) == dose  # always two decimals
    assert dose_arithmetic_text(calc) == text


def test_float_and_trailing_zero_inputs_are_shown_as_written() -> None:
    assert dose_arithmetic_text(cycle_dose(0.3, 170.0, 70.0, reduced=False)) == "0.3 mg/m² x 1.82 m² = 0.55 mg"
    assert dose_arithmetic_text(cycle_dose(Decimal("0.30"), 170, 70, reduced=False)).startswith("0.3 mg/m²")


@pytest.mark.parametrize(
    ("params", "text"),
    [
        (BsaParams(), "Mosteller: sqrt(170 cm x 70.5 kg / 3600) = 1.82 m²"),
        (DUBOIS, "DuBois: 0.007184 x 70.5 kg^0.425 x 170 cm^0.725 = 1.82 m²"),
    ],
)
def test_bsa_arithmetic_text(params: BsaParams, text: str) -> None:
    assert bsa_arithmetic_text(cycle_dose(Decimal("0.5"), 170, Decimal("70.5"), reduced=False, params=params)) == text


@pytest.mark.parametrize(
    ("height", "weight", "height_messages", "weight_messages"),
    [
        (170, 70, (), ()),
        (120, 25, (), ()),  # the plausible ranges are inclusive
        (230, 250, (), ()),
        (
            1.7,
            70,
            ("Height 1.7 cm is outside the plausible range 120-230 cm: did you mean 170 cm (1.7 metres)?",),
            (),
        ),
        (
            1700,
            70,
            ("Height 1700 cm is outside the plausible range 120-230 cm: did you mean 170 cm (1700 millimetres)?",),
            (),
        ),
        (
            67,
            70,
            ("Height 67 cm is outside the plausible range 120-230 cm: did you mean 170.2 cm (67 inches)?",),
            (),
        ),
        (
            119.9,
            70,
            ("Height 119.9 cm is outside the plausible range 120-230 cm; check the unit (cm) and the decimal point.",),
            (),
        ),
        (
            170,
            700,
            (),
            ("Weight 700 kg is outside the plausible range 25-250 kg; check the unit (kg) and the decimal point.",),
        ),
        (
            170,
            70000,
            (),
            ("Weight 70000 kg is outside the plausible range 25-250 kg: did you mean 70 kg (70000 grams)?",),
        ),
        (
            170,
            250.1,
            (),
            ("Weight 250.1 kg is outside the plausible range 25-250 kg: did you mean 113.4 kg (250.1 pounds)?",),
        ),
        (
            170,
            500,
            (),
            ("Weight 500 kg is outside the plausible range 25-250 kg: did you mean 226.8 kg (500 pounds)?",),
        ),
        (
            0,
            -70,
            ("Height must be greater than 0 cm.",),
            ("Weight must be greater than 0 kg.",),
        ),
        (
            math.nan,
            math.inf,
            ("Height must be a number.",),
            ("Weight must be a number.",),
        ),
    ],
)
def test_check_measurements(
    height: float,
    weight: float,
    height_messages: tuple[str, ...],
    weight_messages: tuple[str, ...],
) -> None:
    check = check_measurements(height, weight)
    assert check.height_cm == height_messages
    assert check.weight_kg == weight_messages
    assert check.ok is (not height_messages and not weight_messages)


def test_plausible_ranges_are_params() -> None:
    assert check_measurements(110, 70, BsaParams(height_cm_min=Decimal(100))).ok


@pytest.mark.parametrize(
    ("level", "height", "weight", "match"),
    [
        ("0.5", 1.7, 70, "did you mean 170 cm"),
        ("0.5", 170, 700, "Weight 700 kg is outside"),
        ("0", 170, 70, "dose level must be greater than 0"),
        ("-0.3", 170, 70, "dose level must be greater than 0"),
    ],
)
def test_cycle_dose_refuses_what_must_never_be_dosed(level: str, height: float, weight: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cycle_dose(Decimal(level), height, weight, reduced=False)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"method": "haycock"}, "unknown BSA method"),
        ({"reduction_percent": Decimal(100)}, "reduction_percent"),
        ({"reduction_percent": Decimal(-5)}, "reduction_percent"),
    ],
)
def test_params_refuse_an_unknown_method_or_reduction(bad: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BsaParams(**bad)  # type: ignore[arg-type]
