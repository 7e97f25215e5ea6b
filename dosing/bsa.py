"""Body surface area and the cycle dose (PROTOCOL section 3), as a pure rule.

Dose (mg) = assigned level (mg/m²) x BSA (m²) x reduction factor, from the height
and weight measured at the cycle's start. BSA by Mosteller, sqrt(cm x kg / 3600)
(Mosteller, NEJM 1987), or DuBois, 0.007184 x kg^0.425 x cm^0.725 (DuBois & DuBois,
Arch Intern Med 1916); the method is a trial parameter.

Rounding, applied in `_rounded` and nowhere else:
- BSA to 0.01 m², half up. Two decimals is how BSA is charted and ordered; more
  digits are noise next to the error of the formulas themselves (a few per cent).
- Dose to 0.01 mg, half up, computed from the *rounded* BSA, so that the arithmetic
  shown on the screen (PROTOCOL 3: "show the arithmetic") reproduces by hand to the
  last digit: 0.5 mg/m² x 1.84 m² x 50% = 0.46 mg. At the seed trial's doses (0.3 to
  0.6 mg/m², about 0.35 to 1.4 mg at full dose) the rounding error, at most
  0.005 mg, stays under 1.5% of the smallest full dose.
All arithmetic is in Decimal so that what is shown is what was computed; floats
from callers are converted through their shortest repr (0.1 -> Decimal("0.1")).

Implausible heights and weights are refused with a unit hint (a height typed in
metres, 1.7, or a weight of 700 kg), by `check_measurements` for forms and by
`cycle_dose` itself, so a unit slip can never reach a dose.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

BsaMethod = Literal["mosteller", "dubois"]
Number = Decimal | int | float

BSA_QUANTUM = Decimal("0.01")  # m²
DOSE_QUANTUM = Decimal("0.01")  # mg
TENTH = Decimal("0.1")  # unit hints only: "did you mean 170 cm?"


@dataclass(frozen=True)
class BsaParams:
    """Per-trial dosing parameters; defaults are the seed trial's (PROTOCOL 3)."""

    method: BsaMethod = "mosteller"
    # A reduced dose is reduced BY this percentage: 50 gives 50% of the full dose.
    reduction_percent: Decimal = Decimal(50)
    # Plausible adult measurements (the seed trial enrols ages 16-75). Outside these
    # a value is taken for a unit slip and refused, never dosed.
    height_cm_min: Decimal = Decimal(120)
    height_cm_max: Decimal = Decimal(230)
    weight_kg_min: Decimal = Decimal(25)
    weight_kg_max: Decimal = Decimal(250)

    def __post_init__(self) -> None:
        # The method usually comes from the database as a plain string.
        if self.method not in ("mosteller", "dubois"):
            raise ValueError(f"unknown BSA method {self.method!r}; use mosteller or dubois")
        if not Decimal(0) <= self.reduction_percent < Decimal(100):
            raise ValueError("reduction_percent must be at least 0 and below 100")

    @property
    def reduced_factor(self) -> Decimal:
        return (Decimal(100) - self.reduction_percent) / Decimal(100)


SEED_BSA = BsaParams()


@dataclass(frozen=True)
class MeasurementCheck:
    """Messages per field; both empty means the measurements may be used."""

    height_cm: tuple[str, ...]
    weight_kg: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.height_cm and not self.weight_kg


@dataclass(frozen=True)
class DoseCalculation:
    """A cycle's dose with every number that went into it, as shown to users."""

    method: BsaMethod
    height_cm: Decimal
    weight_kg: Decimal
    level_mg_m2: Decimal
    bsa_m2: Decimal  # rounded; the dose is computed from this
    reduced: bool
    factor: Decimal  # 1, or the reduced factor (0.5 in the seed trial)
    dose_mg: Decimal  # rounded


def _dec(value: Number) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def _rounded(value: Decimal, quantum: Decimal) -> Decimal:
    """The one place where shown numbers are rounded (see the module docstring)."""
    return value.quantize(quantum, rounding=ROUND_HALF_UP)


def _plain(value: Decimal) -> str:
    """0.50 -> "0.5", 100 -> "100": a level or percentage as a person writes it."""
    return f"{value.normalize():f}"


def _measurement_problems(
    name: str,
    unit: str,
    value: Decimal,
    low: Decimal,
    high: Decimal,
    conversions: tuple[tuple[str, Decimal], ...],
) -> tuple[str, ...]:
    if not value.is_finite():
        return (f"{name} must be a number.",)
    if value <= 0:
        return (f"{name} must be greater than 0 {unit}.",)
    if low <= value <= high:
        return ()
    hints = []
    for other, to_unit in conversions:
        converted = value * to_unit
        if low <= converted <= high:
            shown = _plain(_rounded(converted, TENTH))
            hints.append(f"did you mean {shown} {unit} ({_plain(value)} {other})?")
    plausible = f"{_plain(low)}-{_plain(high)} {unit}"
    problem = f"{name} {_plain(value)} {unit} is outside the plausible range {plausible}"
    if hints:
        return (f"{problem}: " + " or ".join(hints),)
    return (f"{problem}; check the unit ({unit}) and the decimal point.",)


def check_measurements(height_cm: Number, weight_kg: Number, params: BsaParams = SEED_BSA) -> MeasurementCheck:
    """Plausibility of a cycle's height and weight, with a unit hint where one fits."""
    return MeasurementCheck(
        height_cm=_measurement_problems(
            "Height",
            "cm",
            _dec(height_cm),
            params.height_cm_min,
            params.height_cm_max,
            (
                ("metres", Decimal(100)),
                ("millimetres", Decimal("0.1")),
                ("inches", Decimal("2.54")),
            ),
        ),
        weight_kg=_measurement_problems(
            "Weight",
            "kg",
            _dec(weight_kg),
            params.weight_kg_min,
            params.weight_kg_max,
            (("grams", Decimal("0.001")), ("pounds", Decimal("0.45359237"))),
        ),
    )


def bsa_unrounded(height_cm: Number, weight_kg: Number, method: BsaMethod) -> Decimal:
    """BSA in m² to Decimal's full precision; for display of the formula and tests."""
    h, w = _dec(height_cm), _dec(weight_kg)
    if h <= 0 or w <= 0:
        raise ValueError("height and weight must be positive")
    if method == "mosteller":
        return (h * w / Decimal(3600)).sqrt()
    if method == "dubois":
        return Decimal("0.007184") * w ** Decimal("0.425") * h ** Decimal("0.725")
    raise ValueError(f"unknown BSA method {method!r}")


def body_surface_area(height_cm: Number, weight_kg: Number, method: BsaMethod) -> Decimal:
    """BSA in m², rounded to 0.01 m² (the value doses are computed from)."""
    return _rounded(bsa_unrounded(height_cm, weight_kg, method), BSA_QUANTUM)


def cycle_dose(
    level_mg_m2: Number,
    height_cm: Number,
    weight_kg: Number,
    *,
    reduced: bool,
    params: BsaParams = SEED_BSA,
) -> DoseCalculation:
    """The dose for one cycle (PROTOCOL 3).

    Raises ValueError for a non-positive level or implausible measurements: callers
    run `check_measurements` first and show its messages; this is the backstop.
    """
    level = _dec(level_mg_m2)
    if not level.is_finite() or level <= 0:
        raise ValueError("dose level must be greater than 0 mg/m²")
    check = check_measurements(height_cm, weight_kg, params)
    if not check.ok:
        raise ValueError(" ".join(check.height_cm + check.weight_kg))
    bsa = body_surface_area(height_cm, weight_kg, params.method)
    factor = params.reduced_factor if reduced else Decimal(1)
    return DoseCalculation(
        method=params.method,
        height_cm=_dec(height_cm),
        weight_kg=_dec(weight_kg),
        level_mg_m2=level,
        bsa_m2=bsa,
        reduced=reduced,
        factor=factor,
        dose_mg=_rounded(level * bsa * factor, DOSE_QUANTUM),
    )


def dose_arithmetic_text(calc: DoseCalculation) -> str:
    """The dose arithmetic as shown on screen: "0.5 mg/m² x 1.84 m² x 50% = 0.46 mg".

    The percentage is the share of the full dose given (50% after a 50% reduction);
    it is left out for a full dose.
    """
    text = f"{_plain(calc.level_mg_m2)} mg/m² x {calc.bsa_m2} m²"
    if calc.reduced:
        text += f" x {_plain(calc.factor * 100)}%"
    return f"{text} = {calc.dose_mg} mg"


def bsa_arithmetic_text(calc: DoseCalculation) -> str:
    """The BSA formula with the patient's numbers, e.g.
    "Mosteller: sqrt(170 cm x 70 kg / 3600) = 1.82 m²"."""
    h, w = _plain(calc.height_cm), _plain(calc.weight_kg)
    if calc.method == "mosteller":
        return f"Mosteller: sqrt({h} cm x {w} kg / 3600) = {calc.bsa_m2} m²"
    return f"DuBois: 0.007184 x {w} kg^0.425 x {h} cm^0.725 = {calc.bsa_m2} m²"
