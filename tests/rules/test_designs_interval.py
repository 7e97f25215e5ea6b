"""i3+3 and Keyboard / mTPI-2 (analysis/designs/i3plus3.py, keyboard.py) against R.

The decision tables are what tests/rules/reference/interval_tables_reference.R prints
(output kept in interval_tables_reference.out): R FIND's get_decision_i3plus3 and
get_decision_mtpi2 (github:oliviazhang0416/FIND, commit 55c6fc5) for 3 to 12 patients,
and R Keyboard 0.1.3's get.boundary.kb (github:cran/Keyboard) for 1 to 12 patients.
Letters per number of DLTs 0, 1, ..., n: E escalate, S stay, D de-escalate,
DU de-escalate and eliminate (P(p > target | Beta(1 + y, 1 + n - y)) > 0.95).
"""

from __future__ import annotations

import math

import pytest

from analysis.designs.common import DesignDecision, LevelOutcome
from analysis.designs.i3plus3 import I3Plus3
from analysis.designs.interval import IntervalSettings, Zone, prob_above
from analysis.designs.keyboard import Keyboard
from analysis.designs.simulation import exact_characteristics, simulate

TABLES = {
    ("i3+3", 0.3): {
        3: "E S D DU",
        4: "E S D DU DU",
        5: "E E S D DU DU",
        6: "E E S D DU DU DU",
        7: "E E S D D DU DU DU",
        8: "E E S D D DU DU DU DU",
        9: "E E E S D DU DU DU DU DU",
        10: "E E E S D D DU DU DU DU DU",
        11: "E E E S D D DU DU DU DU DU DU",
        12: "E E E S S D D DU DU DU DU DU DU",
    },
    ("mTPI-2", 0.3): {
        3: "E S D DU",
        4: "E S D DU DU",
        5: "E E D D DU DU",
        6: "E E S D DU DU DU",
        7: "E E S D D DU DU DU",
        8: "E E S D D DU DU DU DU",
        9: "E E E S D DU DU DU DU DU",
        10: "E E E S D D DU DU DU DU DU",
        11: "E E E S D D DU DU DU DU DU DU",
        12: "E E E S S D D DU DU DU DU DU DU",
    },
    ("i3+3", 0.25): {
        3: "E S D DU",
        4: "E S D DU DU",
        5: "E S D DU DU DU",
        6: "E E S D DU DU DU",
        7: "E E S D DU DU DU DU",
        8: "E E S D DU DU DU DU DU",
        9: "E E S D D DU DU DU DU DU",
        10: "E E S S D DU DU DU DU DU DU",
        11: "E E E S D D DU DU DU DU DU DU",
        12: "E E E S D D DU DU DU DU DU DU DU",
    },
    ("mTPI-2", 0.25): {
        3: "E D D DU",
        4: "E S D DU DU",
        5: "E S D DU DU DU",
        6: "E E D D DU DU DU",
        7: "E E S D DU DU DU DU",
        8: "E E S D DU DU DU DU DU",
        9: "E E S D D DU DU DU DU DU",
        10: "E E S D D DU DU DU DU DU DU",
        11: "E E E S D D DU DU DU DU DU DU",
        12: "E E E S D D DU DU DU DU DU DU DU",
    },
    ("i3+3", 0.2): {
        3: "E S DU DU",
        4: "E S D DU DU",
        5: "E S D DU DU DU",
        6: "E S D DU DU DU DU",
        7: "E E S D DU DU DU DU",
        8: "E E S D DU DU DU DU DU",
        9: "E E S D DU DU DU DU DU DU",
        10: "E E S D D DU DU DU DU DU DU",
        11: "E E S D D DU DU DU DU DU DU DU",
        12: "E E S S D DU DU DU DU DU DU DU DU",
    },
    ("mTPI-2", 0.2): {
        3: "E D DU DU",
        4: "E D D DU DU",
        5: "E S D DU DU DU",
        6: "E S D DU DU DU DU",
        7: "E S D D DU DU DU DU",
        8: "E E D D DU DU DU DU DU",
        9: "E E S D DU DU DU DU DU DU",
        10: "E E S D D DU DU DU DU DU DU",
        11: "E E S D D DU DU DU DU DU DU DU",
        12: "E E S D D DU DU DU DU DU DU DU DU",
    },
}


def letter(design: I3Plus3 | Keyboard, n: int, y: int) -> str:
    if prob_above(design.target, n, y) > design.settings.cutoff_eli:
        return "DU"
    return design.zone(n, y).value


@pytest.mark.parametrize(("name", "target"), sorted(TABLES))
def test_decision_tables(name: str, target: float) -> None:
    levels = (1.0, 2.0, 3.0)
    settings = IntervalSettings(target)
    design: I3Plus3 | Keyboard = I3Plus3(levels, settings) if name == "i3+3" else Keyboard(levels, settings)
    for n, row in TABLES[(name, target)].items():
        assert " ".join(letter(design, n, y) for y in range(n + 1)) == row, f"{name} target {target}, n = {n}"


# get.boundary.kb(target, ncohort=4, cohortsize=3)$full_boundary_tab: escalate if DLTs <=,
# de-escalate if >=, eliminate if >= (R marks DU from 1 patient on; the design eliminates from 3).
KEYBOARD = {
    0.3: (
        [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2],
        [1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5],
        [None, 2, 3, 3, 4, 4, 5, 5, 5, 6, 6, 7],
    ),
    0.25: (
        [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2],
        [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4],
        [None, 2, 3, 3, 3, 4, 4, 4, 5, 5, 6, 6],
    ),
    0.2: (
        [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3],
        [1, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5],
    ),
    # The truncated first key ([0, 0.07) and [0, 0.1)) lies next to the target key: R's
    # compensation factor (mass scaled to a full key) decides these.
    0.12: (
        [0] * 12,
        [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2],
        [1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4],
    ),
    0.15: (
        [0] * 12,
        [1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3],
        [1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4],
    ),
}


@pytest.mark.parametrize("target", sorted(KEYBOARD))
def test_keyboard_boundaries(target: float) -> None:
    esc, deesc, elim = KEYBOARD[target]
    kb = Keyboard((1.0, 2.0), IntervalSettings(target))
    for n in range(1, 13):
        zones = [kb.zone(n, y) for y in range(n + 1)]
        escalate = max((y for y, z in enumerate(zones) if z is Zone.ESCALATE), default=-1)
        assert escalate == esc[n - 1], f"n = {n}"
        first_down = min(y for y, z in enumerate(zones) if z is Zone.DE_ESCALATE)
        r_elim = elim[n - 1]
        # R's de-escalation row is the first D, or the first DU where no D comes before it.
        assert min(first_down, r_elim if r_elim is not None else n + 1) == deesc[n - 1], f"n = {n}"
        if n >= 3:
            ours = next((y for y in range(n + 1) if prob_above(target, n, y) > 0.95), None)
            assert ours == r_elim, f"n = {n}"


def test_keyboard_keys_are_r_getkey() -> None:
    # getkey(0.25, 0.35): 0, 0.05, 0.15, 0.25, 0.35, ..., 0.95, 1 (R, printed with digits = 17).
    keys = Keyboard((1.0,), IntervalSettings(0.3)).keys()
    assert keys == pytest.approx([0, 0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95, 1.0], abs=1e-12)


def test_i3plus3_walk() -> None:
    d = I3Plus3((1.0, 2.0, 3.0), IntervalSettings(0.3))
    out = [LevelOutcome(3, 0), LevelOutcome(3, 2), LevelOutcome(0, 0)]
    r = d.decide(out, 2)  # 2/3 above the EI, 1/3 not below it: de-escalate
    assert (r.decision, r.recommended_dose_level) == (DesignDecision.DE_ESCALATE, 1)
    assert "above the equivalence interval" in r.reasons[-2]
    r = d.decide([LevelOutcome(3, 0), LevelOutcome(5, 2), LevelOutcome(0, 0)], 2)  # 2/5 above, 1/5 below: stay
    assert (r.decision, r.recommended_dose_level) == (DesignDecision.STAY, 2)


@pytest.mark.parametrize(
    ("target", "n", "y", "zone"),
    [
        (0.2, 20, 3, Zone.STAY),  # 3/20 = 0.15, the EI's lower end (0.2 - 0.05 is 0.15000000000000002)
        (0.2, 20, 2, Zone.ESCALATE),
        (0.2, 20, 5, Zone.STAY),  # 5/20 = 0.25, the upper end
        (0.3, 20, 7, Zone.STAY),  # 7/20 = 0.35, the upper end
        (0.2, 20, 6, Zone.DE_ESCALATE),  # 6/20 above, 5/20 inside: not below
        (0.1, 20, 3, Zone.STAY),  # 3/20 = 0.15, the upper end of [0.05, 0.15]
    ],
)
def test_i3plus3_the_equivalence_interval_is_closed(target: float, n: int, y: int, zone: Zone) -> None:
    # Liu, Wang & Ji 2020: EI = [target - eps1, target + eps2], both ends inside (stay).
    assert I3Plus3((1.0,), IntervalSettings(target)).zone(n, y) is zone


def test_bad_parameters_name_the_field() -> None:
    with pytest.raises(ValueError, match="eps1"):
        I3Plus3((1.0,), IntervalSettings(0.3), eps1=0.3)
    with pytest.raises(ValueError, match="margin_left"):
        Keyboard((1.0,), IntervalSettings(0.3), margin_left=0.4)
    with pytest.raises(ValueError, match="dose_levels"):
        Keyboard((), IntervalSettings(0.3))


def test_keyboard_operating_characteristics_agree_with_r_get_oc_kb() -> None:
    # get.oc.kb(0.3, c(0.05, 0.15, 0.3, 0.45, 0.6), ncohort=10, cohortsize=3, ntrial=10000), seed 6
    # (interval_tables_reference.out): selection %, patients per level, % stopped. R's numbers carry
    # Monte Carlo error: the exact values must lie within 4 of its standard errors.
    sel = [1.07, 23.04, 55.16, 19.32, 1.39]
    npat = [4.1493, 9.1686, 11.1675, 4.7454, 0.7638]
    true = (0.05, 0.15, 0.3, 0.45, 0.6)
    design = Keyboard(tuple(float(i) for i in range(1, 6)), IntervalSettings(0.3))
    exact = exact_characteristics(design, true)
    for p, theirs in zip([*exact.prob_select, exact.prob_no_mtd], [*sel, 0.02], strict=True):
        assert abs(p - theirs / 100) <= 4 * math.sqrt(max(p * (1 - p), 1e-4) / 10_000)
    sim = simulate(design, true, n_trials=10_000, seed=6)  # its standard errors stand for R's
    for e, theirs, se in zip(exact.patients_per_level, npat, sim.se_patients_per_level, strict=True):
        assert abs(theirs - e) <= 4 * se
