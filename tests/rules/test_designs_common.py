"""The designs' common interface: the 3+3 adapter, dose-transition pathways and the
simulation (analysis/designs/three_plus_three.py, pathways.py, simulation.py).

The 3+3 simulation is checked against analysis/operating_characteristics.py's exact
enumeration: each simulated estimate must lie within 4 of its Monte Carlo standard
errors of the exact value.
"""

from __future__ import annotations

import pytest

from analysis.designs.boin import Boin
from analysis.designs.common import DesignDecision, LevelOutcome
from analysis.designs.crm import Crm
from analysis.designs.i3plus3 import I3Plus3
from analysis.designs.interval import IntervalSettings
from analysis.designs.keyboard import Keyboard
from analysis.designs.pathways import dose_paths
from analysis.designs.simulation import exact_characteristics, simulate
from analysis.designs.three_plus_three import ThreePlusThree
from analysis.escalation import Decision, Variant
from analysis.operating_characteristics import exact_operating_characteristics

LEVELS4 = (10.0, 20.0, 30.0, 40.0)


def test_vocabulary_extends_the_3_plus_3_one() -> None:
    assert {d.value for d in Decision} | {"stay"} == {d.value for d in DesignDecision}


@pytest.mark.parametrize(
    ("counts", "decision", "level", "slots"),
    [
        ([(0, 0), (0, 0), (0, 0), (0, 0)], DesignDecision.ENROLL, 1, ((1, 3),)),
        ([(3, 0), (0, 0), (0, 0), (0, 0)], DesignDecision.ESCALATE, 2, ((2, 3),)),
        ([(3, 1), (0, 0), (0, 0), (0, 0)], DesignDecision.EXPAND, 1, ((1, 3),)),
        ([(3, 0), (3, 2), (0, 0), (0, 0)], DesignDecision.MTD_DECLARED, 1, ()),
        ([(3, 2), (0, 0), (0, 0), (0, 0)], DesignDecision.STOP_NO_MTD, None, ()),
        ([(6, 1), (3, 0), (3, 0), (3, 0)], DesignDecision.MTD_DECLARED, 4, ()),
    ],
)
def test_three_plus_three_adapter(
    counts: list[tuple[int, int]], decision: DesignDecision, level: int | None, slots: tuple[tuple[int, int], ...]
) -> None:
    r = ThreePlusThree(LEVELS4).decide([LevelOutcome(n, y) for n, y in counts])
    assert (r.decision, r.recommended_dose_level, r.open_slots) == (decision, level, slots)
    assert r.mtd_dose_level == (level if decision is DesignDecision.MTD_DECLARED else None)
    assert r.reasons  # the engine's own words


def test_three_plus_three_adapter_waits() -> None:
    r = ThreePlusThree(LEVELS4).decide([LevelOutcome(2, 0, pending=1)] + [LevelOutcome(0, 0)] * 3)
    assert r.decision is DesignDecision.WAIT


@pytest.mark.parametrize("variant", [Variant.STORER_A, Variant.SIX_AT_MTD])
@pytest.mark.parametrize("true", [(0.05, 0.15, 0.3, 0.45, 0.6), (0.2, 0.35, 0.5, 0.6, 0.7), (0.0, 0.1, 1.0, 1.0, 1.0)])
def test_three_plus_three_adapter_enumerates_to_the_exact_values(variant: Variant, true: tuple[float, ...]) -> None:
    # Every cohort outcome played through the adapter gives analysis/operating_characteristics.py's
    # exact values: the adapter takes the engine's decisions.
    exact = exact_operating_characteristics(list(true), variant)
    ours = exact_characteristics(ThreePlusThree(tuple(float(i) for i in range(1, 6)), variant), true)
    assert ours.prob_select == pytest.approx(exact.prob_mtd, abs=1e-12)
    assert ours.prob_no_mtd == pytest.approx(exact.prob_no_mtd, abs=1e-12)
    assert ours.patients_per_level == pytest.approx(exact.expected_patients_per_level, abs=1e-12)
    assert ours.mean_patients == pytest.approx(exact.expected_patients, abs=1e-12)
    assert ours.mean_dlts == pytest.approx(exact.expected_dlts, abs=1e-12)


@pytest.mark.parametrize("variant", [Variant.STORER_A, Variant.SIX_AT_MTD])
@pytest.mark.parametrize("true", [(0.05, 0.15, 0.3, 0.45), (0.2, 0.35, 0.5, 0.6)])
def test_three_plus_three_simulation_agrees_with_the_exact_values(variant: Variant, true: tuple[float, ...]) -> None:
    exact = exact_operating_characteristics(list(true), variant)
    sim = simulate(ThreePlusThree(LEVELS4, variant), true, n_trials=10_000, seed=11)
    for p, est, se in zip(exact.prob_mtd, sim.prob_select, sim.se_prob_select, strict=True):
        assert abs(est - p) <= 4 * max(se, 1e-3)
    assert abs(sim.prob_no_mtd - exact.prob_no_mtd) <= 4 * max(sim.se_prob_no_mtd, 1e-3)
    assert abs(sim.mean_patients - exact.expected_patients) <= 4 * sim.se_mean_patients
    assert abs(sim.mean_dlts - exact.expected_dlts) <= 4 * sim.se_mean_dlts
    for e, est, se in zip(
        exact.expected_patients_per_level, sim.patients_per_level, sim.se_patients_per_level, strict=True
    ):
        assert abs(est - e) <= 4 * max(se, 1e-3)


def boin(levels: int = 4) -> Boin:
    return Boin(tuple(float(i) for i in range(1, levels + 1)), IntervalSettings(0.3))


def test_simulation_is_seeded_and_sums_up() -> None:
    a = simulate(boin(), (0.1, 0.2, 0.3, 0.5), n_trials=500, seed=3)
    b = simulate(boin(), (0.1, 0.2, 0.3, 0.5), n_trials=500, seed=3)
    c = simulate(boin(), (0.1, 0.2, 0.3, 0.5), n_trials=500, seed=4)
    assert a == b
    assert a != c
    assert sum(a.prob_select) + a.prob_no_mtd == pytest.approx(1.0)
    assert sum(a.patients_per_level) == pytest.approx(a.mean_patients)
    assert sum(a.dlts_per_level) == pytest.approx(a.mean_dlts)
    assert 29 < a.mean_patients <= 30  # 30 unless level 1 is eliminated early
    assert 0 < a.overdose_fraction < 0.5  # type: ignore[operator]
    assert a.overdose_threshold == 0.3


def test_simulation_of_certain_outcomes() -> None:
    # Nobody ever has a DLT: BOIN climbs one level per cohort and selects the top level.
    r = simulate(boin(), (0.0, 0.0, 0.0, 0.0), n_trials=50, seed=1)
    assert r.prob_select == (0.0, 0.0, 0.0, 1.0)
    assert r.patients_per_level == (3.0, 3.0, 3.0, 21.0)
    assert r.overdose_fraction == 0.0
    # Everybody has a DLT: level 1 is eliminated after its first cohort.
    r = simulate(boin(), (1.0, 1.0, 1.0, 1.0), n_trials=50, seed=1)
    assert r.prob_no_mtd == 1.0 and r.mean_patients == 3.0 and r.overdose_fraction == 1.0


@pytest.mark.parametrize(
    "design",
    [
        I3Plus3((1.0, 2.0, 3.0), IntervalSettings(0.25, max_sample_size=18)),
        Keyboard((1.0, 2.0, 3.0), IntervalSettings(0.25, max_sample_size=18)),
        Crm((1.0, 2.0, 3.0), (0.1, 0.25, 0.4), 0.25, max_sample_size=18),
        ThreePlusThree((1.0, 2.0, 3.0)),
    ],
)
def test_every_design_simulates(design: I3Plus3 | Keyboard | Crm | ThreePlusThree) -> None:
    r = simulate(design, (0.1, 0.25, 0.5), n_trials=300, seed=5, overdose_threshold=0.3)
    assert sum(r.prob_select) + r.prob_no_mtd == pytest.approx(1.0)
    assert r.prob_select[1] == max(r.prob_select)  # the level at the target is picked most
    assert r.design == design.name


def test_simulation_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="true_dlt_probabilities"):
        simulate(boin(), (0.1, 0.2), n_trials=10)
    with pytest.raises(ValueError, match="true_dlt_probabilities"):
        simulate(boin(), (0.1, 0.2, 0.3, 1.5), n_trials=10)
    with pytest.raises(ValueError, match="n_trials"):
        simulate(boin(), (0.1, 0.2, 0.3, 0.4), n_trials=0)
    with pytest.raises(ValueError, match="true_dlt_probabilities"):
        exact_characteristics(boin(), (0.1, 0.2))
    with pytest.raises(ValueError, match="max_states"):
        exact_characteristics(boin(), (0.1, 0.2, 0.3, 0.4), max_states=10)


def test_pathways_from_the_start() -> None:
    # BOIN, target 0.3, cohorts of 3 (get.boundary: n=3 escalate <= 0, de-escalate >= 2,
    # eliminate >= 3; n=6 escalate <= 1, de-escalate >= 3, eliminate >= 4).
    tree = dose_paths(boin(), [LevelOutcome(0, 0)] * 4, None, cohorts=2)
    assert tree.result.decision is DesignDecision.ENROLL
    first = {c.cohort_dlts: (c.result.decision, c.result.recommended_dose_level) for c in tree.children}
    assert first == {
        0: (DesignDecision.ESCALATE, 2),
        1: (DesignDecision.STAY, 1),
        2: (DesignDecision.STAY, 1),  # de-escalation zone, but level 1 is the lowest
        3: (DesignDecision.STOP_NO_MTD, None),
    }
    after_one = {c.cohort_dlts: c.result.recommended_dose_level for c in tree.children[1].children}
    # After 1/3 at level 1: 1/6 escalates, 2/6 stays, 3/6 de-escalates (lowest: stay), 4/6 eliminates level 1.
    assert after_one == {0: 2, 1: 1, 2: 1, 3: None}
    assert tree.children[1].children[3].result.decision is DesignDecision.STOP_NO_MTD
    assert tree.children[3].children == ()  # the trial ended
    paths = tree.walk()
    assert len(paths) == 1 + 4 + 4 * 3  # the stop branch has no children
    assert paths[0][0] == ()


def test_pathways_match_the_design_on_every_branch() -> None:
    d = Crm((1.0, 2.0, 3.0, 4.0), (0.05, 0.12, 0.25, 0.4), 0.25)
    start = [LevelOutcome(3, 0), LevelOutcome(3, 1), LevelOutcome(0, 0), LevelOutcome(0, 0)]
    tree = dose_paths(d, start, 2, cohorts=2)
    for path, node in tree.walk():
        data = list(start)
        level = 2
        here = tree
        for dlts in path:
            lv, slots = here.result.open_slots[0]
            data[lv - 1] = LevelOutcome(data[lv - 1].evaluable + slots, data[lv - 1].dlts + dlts)
            level = lv
            here = next(c for c in here.children if c.cohort_dlts == dlts)
        assert d.decide(data, level) == node.result
    assert len(tree.walk()) == 1 + 4 + 16
    with pytest.raises(ValueError, match="cohorts"):
        dose_paths(d, start, 2, cohorts=-1)
