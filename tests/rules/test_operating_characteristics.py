"""Operating characteristics of the 3+3 engine (analysis/operating_characteristics.py).

Checked three independent ways: closed forms for one or two levels, a brute
force over every "world" of cohort outcomes written here from the textbook
rule, and the engine itself (exhaustive enumeration and seeded Monte Carlo).
"""

from __future__ import annotations

import itertools
import random
from math import comb

import pytest

from analysis.escalation import Variant
from analysis.operating_characteristics import (
    OperatingCharacteristics,
    engine_operating_characteristics,
    exact_operating_characteristics,
    simulate_operating_characteristics,
)

STORER = Variant.STORER_A
SIX = Variant.SIX_AT_MTD


def p_escalate(p: float) -> float:
    """Storer: P(0/3) + P(1/3) P(0/3) = (1-p)^3 [1 + 3p(1-p)^2]."""
    return (1 - p) ** 3 * (1 + 3 * p * (1 - p) ** 2)


@pytest.mark.parametrize(("p", "expected"), [(0.10, 0.9061), (0.30, 0.4943)])
def test_single_level_published_values(p: float, expected: float) -> None:
    assert p_escalate(p) == pytest.approx(expected, abs=5e-5)
    one = exact_operating_characteristics([p], STORER)
    assert one.prob_mtd[0] == pytest.approx(expected, abs=5e-5)


@pytest.mark.parametrize("p", [0.0, 0.05, 0.1, 0.25, 0.3, 0.5, 0.8, 1.0])
def test_one_and_two_levels_closed_form(p: float) -> None:
    q = 1 - p
    one = exact_operating_characteristics([p], STORER)
    assert one.prob_mtd[0] == pytest.approx(p_escalate(p), abs=1e-12)
    assert one.prob_no_mtd == pytest.approx(1 - p_escalate(p), abs=1e-12)
    # A second cohort only after 1 of 3.
    assert one.expected_patients == pytest.approx(3 + 3 * 3 * p * q**2, abs=1e-12)
    assert one.expected_dlts == pytest.approx(one.expected_patients * p, abs=1e-12)
    # Level 1 escalates or stops: P(no MTD) = 1 - P(escalate) whatever level 2 does.
    two = exact_operating_characteristics([p, 0.4], STORER)
    assert two.prob_no_mtd == pytest.approx(1 - p_escalate(p), abs=1e-12)
    # six_at_mtd, one level: always 6 unless the first cohort has >= 2 DLTs.
    six = exact_operating_characteristics([p], SIX)
    assert six.prob_mtd[0] == pytest.approx(q**6 + 6 * p * q**5, abs=1e-12)
    assert six.expected_patients == pytest.approx(3 + 3 * (q**3 + 3 * p * q**2), abs=1e-12)


# The reference numbers: exhaustive enumeration, and for storer_a also
# 100,000 simulated trials of Python clintrials.
@pytest.mark.parametrize(
    ("variant", "no_mtd", "mtd", "expected_n"),
    [
        (STORER, 0.0939, (0.2640, 0.3247, 0.2192, 0.0982), 11.631),
        (SIX, 0.1004, (0.2846, 0.3341, 0.2069, 0.0740), 13.829),
    ],
)
def test_reference_scenario(variant: Variant, no_mtd: float, mtd: tuple[float, ...], expected_n: float) -> None:
    oc = exact_operating_characteristics([0.10, 0.20, 0.30, 0.40], variant)
    assert oc.prob_no_mtd == pytest.approx(no_mtd, abs=5e-5)
    assert oc.prob_mtd == pytest.approx(mtd, abs=5e-5)
    assert oc.expected_patients == pytest.approx(expected_n, abs=5e-4)
    assert oc.prob_no_mtd + sum(oc.prob_mtd) == pytest.approx(1.0, abs=1e-12)
    assert sum(oc.expected_patients_per_level) == pytest.approx(oc.expected_patients)


# --- an independent brute force: every world of cohort outcomes


def textbook_trial(world: list[tuple[int, int]], six: bool) -> tuple[int, list[int], int]:
    """One trial, given the DLT count of the 1st and 2nd cohort at each level.

    Written from the textbook description, not from the module: returns (MTD
    level or 0, patients per level, DLTs).
    """
    top = len(world)
    n = [0] * top
    x = [0] * top

    def treat(i: int) -> None:
        x[i] += world[i][n[i] // 3]
        n[i] += 3

    d = 0
    while True:
        treat(d)
        if x[d] == 1 or (six and d == top - 1 and x[d] == 0):
            treat(d)
        if x[d] <= 1:
            if d == top - 1:
                return top, n, sum(x)
            d += 1
            continue
        break
    if not six:
        return d, n, sum(x)  # MTD = d-1 in 1-based numbering; 0 = none
    m = d - 1
    while m >= 0:
        if n[m] == 3:
            treat(m)
        if x[m] <= 1:
            return m + 1, n, sum(x)
        m -= 1
    return 0, n, sum(x)


def brute_force(ps: list[float], six: bool) -> OperatingCharacteristics:
    top = len(ps)
    outcome = [0.0] * (top + 1)
    per_level = [0.0] * top
    dlts = 0.0
    cohort_pairs: list[tuple[int, int]] = [(a, b) for a in range(4) for b in range(4)]

    def weight(p: float, pair: tuple[int, int]) -> float:
        return float(
            comb(3, pair[0]) * p ** pair[0] * (1 - p) ** (3 - pair[0])
            * comb(3, pair[1]) * p ** pair[1] * (1 - p) ** (3 - pair[1])
        )  # fmt: skip

    for world in itertools.product(cohort_pairs, repeat=top):
        w = 1.0
        for p, pair in zip(ps, world, strict=True):
            w *= weight(p, pair)
        if w == 0.0:
            continue
        mtd, n, x = textbook_trial(list(world), six)
        outcome[mtd] += w
        dlts += w * x
        for i in range(top):
            per_level[i] += w * n[i]
    return OperatingCharacteristics(
        variant=SIX if six else STORER,
        true_dlt_probabilities=tuple(ps),
        prob_no_mtd=outcome[0],
        prob_mtd=tuple(outcome[1:]),
        expected_patients=sum(per_level),
        expected_dlts=dlts,
        expected_patients_per_level=tuple(per_level),
    )


def numbers(oc: OperatingCharacteristics) -> list[float]:
    return [
        oc.prob_no_mtd,
        *oc.prob_mtd,
        oc.expected_patients,
        oc.expected_dlts,
        *oc.expected_patients_per_level,
    ]


def _scenarios() -> list[list[float]]:
    rng = random.Random(20240601)
    out: list[list[float]] = [
        [0.10, 0.20, 0.30, 0.40],
        [0.05, 0.50, 0.20],
        [0.60, 0.70],
        [0.0, 0.0, 1.0],
        [0.33, 0.33, 0.33],
    ]
    for top in (1, 2, 3, 3, 3):
        out.append(sorted(round(rng.uniform(0.0, 0.7), 3) for _ in range(top)))
    return out


@pytest.mark.parametrize("variant", [STORER, SIX])
@pytest.mark.parametrize("ps", _scenarios(), ids=str)
def test_exact_matches_brute_force(ps: list[float], variant: Variant) -> None:
    exact = exact_operating_characteristics(ps, variant)
    reference = brute_force(ps, variant is SIX)
    assert numbers(exact) == pytest.approx(numbers(reference), abs=1e-12)


@pytest.mark.parametrize("variant", [STORER, SIX])
@pytest.mark.parametrize(
    "ps",
    [[0.1, 0.2, 0.3, 0.4], [0.02, 0.05, 0.1, 0.15, 0.3], [0.5], [0.2, 0.9], [0.0, 1.0, 1.0]],
    ids=str,
)
def test_exact_matches_the_engine_itself(ps: list[float], variant: Variant) -> None:
    exact = exact_operating_characteristics(ps, variant)
    engine = engine_operating_characteristics(ps, variant)
    assert numbers(exact) == pytest.approx(numbers(engine), abs=1e-12)


@pytest.mark.parametrize(
    ("variant", "ps"),
    [
        (STORER, [0.10, 0.20, 0.30, 0.40]),
        (SIX, [0.10, 0.20, 0.30, 0.40]),
        (STORER, [0.05, 0.1, 0.15, 0.5, 0.6]),
        (SIX, [0.3, 0.45]),
    ],
)
def test_monte_carlo_agrees_within_its_error(variant: Variant, ps: list[float]) -> None:
    exact = exact_operating_characteristics(ps, variant)
    sim = simulate_operating_characteristics(ps, variant, n_trials=20_000, seed=12345)
    pairs = [
        (sim.prob_no_mtd, sim.se_prob_no_mtd, exact.prob_no_mtd),
        *zip(sim.prob_mtd, sim.se_prob_mtd, exact.prob_mtd, strict=True),
        (sim.expected_patients, sim.se_expected_patients, exact.expected_patients),
        (sim.expected_dlts, sim.se_expected_dlts, exact.expected_dlts),
    ]
    for estimate, se, truth in pairs:
        # 4.5 standard errors: a false alarm about once in 150,000 comparisons.
        assert abs(estimate - truth) <= 4.5 * se + 1e-12


def test_monte_carlo_is_reproducible() -> None:
    ps = [0.1, 0.3, 0.5]
    a = simulate_operating_characteristics(ps, SIX, n_trials=3000, seed=1)
    b = simulate_operating_characteristics(ps, SIX, n_trials=3000, seed=1)
    c = simulate_operating_characteristics(ps, SIX, n_trials=3000, seed=2)
    assert a == b
    assert a != c


@pytest.mark.parametrize(
    ("variant", "ps", "mtd", "patients"),
    [
        (STORER, [0.0, 0.0, 0.0], (0.0, 0.0, 1.0), 9.0),
        (SIX, [0.0, 0.0, 0.0], (0.0, 0.0, 1.0), 12.0),
        (STORER, [1.0, 0.0], (0.0, 0.0), 3.0),
        (STORER, [0.0, 1.0, 0.0], (1.0, 0.0, 0.0), 6.0),
        (SIX, [0.0, 1.0, 0.0], (1.0, 0.0, 0.0), 9.0),
    ],
)
def test_certain_outcomes(variant: Variant, ps: list[float], mtd: tuple[float, ...], patients: float) -> None:
    oc = exact_operating_characteristics(ps, variant)
    assert oc.prob_mtd == pytest.approx(mtd)
    assert oc.expected_patients == pytest.approx(patients)
    sim = simulate_operating_characteristics(ps, variant, n_trials=200, seed=3)
    assert sim.prob_mtd == pytest.approx(mtd)
    assert sim.expected_patients == pytest.approx(patients)


def test_many_levels_stay_fast() -> None:
    ps = [0.02 * i for i in range(1, 13)]
    oc = exact_operating_characteristics(ps, SIX)
    assert oc.prob_no_mtd + sum(oc.prob_mtd) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("bad", [[], [0.1, 1.2], [-0.1]])
def test_bad_probabilities_are_refused(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        exact_operating_characteristics(bad)
    with pytest.raises(ValueError):
        simulate_operating_characteristics(bad)
