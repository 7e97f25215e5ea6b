"""BOIN (analysis/designs/boin.py) against R BOIN 2.7.2.

Every expected number below is what tests/rules/reference/boin_reference.R prints
(its output is kept next to it, boin_reference.out): get.boundary, select.mtd and
get.oc of R BOIN 2.7.2 built from github:cran/BOIN.
"""

from __future__ import annotations

import math

import pytest

from analysis.designs.boin import Boin
from analysis.designs.common import DesignDecision, LevelOutcome
from analysis.designs.interval import IntervalSettings, pava, select_mtd
from analysis.designs.simulation import exact_characteristics, simulate

NA = None


def boin(target: float, levels: int = 5, **kw: object) -> Boin:
    return Boin(tuple(float(i) for i in range(1, levels + 1)), IntervalSettings(target, **kw))  # type: ignore[arg-type]


# get.boundary(target, ncohort=30, cohortsize=1)$boundary_tab, identical to the
# full_boundary_tab of cohortsize=3, ncohort=10 (boin_reference.out).
GET_BOUNDARY = {
    0.2: (
        0.157242286700307,
        0.238462438817315,
        [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4],
        [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 6, 7, 7, 7, 7, 8],
        [NA, NA, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 7, 7, 7, 7, 8, 8, 8, 8, 9, 9, 9, 9, 10, 10],
    ),
    0.25: (
        0.196800870555487,
        0.298392152375460,
        [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5],
        [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 9, 9],
        [NA, NA, 3, 3, 3, 4, 4, 4, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 9, 10, 10, 10, 11, 11, 11, 12, 12],
    ),
    0.3: (
        0.236490685236468,
        0.358519464640930,
        [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7],
        [1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 9, 10, 10, 11, 11, 11],
        [NA, NA, 3, 3, 4, 4, 5, 5, 5, 6, 6, 7, 7, 8, 8, 8, 9, 9, 9, 10, 10, 11, 11, 11, 12, 12, 12, 13, 13, 14],
    ),
}


@pytest.mark.parametrize("target", sorted(GET_BOUNDARY))
@pytest.mark.parametrize("cohort_size", [1, 3])
def test_get_boundary(target: float, cohort_size: int) -> None:
    lambda_e, lambda_d, esc, deesc, elim = GET_BOUNDARY[target]
    d = boin(target, cohort_size=cohort_size, max_sample_size=30)
    assert d.lambda_e == pytest.approx(lambda_e, abs=1e-14)
    assert d.lambda_d == pytest.approx(lambda_d, abs=1e-14)
    table = d.boundary_table()
    assert [c.n for c in table] == list(range(1, 31))
    assert [c.escalate_at_most for c in table] == esc
    assert [c.deescalate_at_least for c in table] == deesc
    assert [c.eliminate_at_least for c in table] == elim
    # R prints, for cohorts of 3, the columns n = 3, 6, ..., 30 (boundary_tab).
    printed = d.printed_boundary_table()
    assert [c.n for c in printed] == list(range(cohort_size, 31, cohort_size))
    assert printed == tuple(c for c in table if c.n % cohort_size == 0)


def test_n_earlystop_cuts_the_table() -> None:
    # get.boundary(0.3, ncohort=10, cohortsize=3, n.earlystop=12): boundary_tab n = 3 6 9 12,
    # escalate <= 0 1 2 2, de-escalate >= 2 3 4 5, eliminate >= 3 4 5 7; full_boundary_tab 12 columns.
    d = boin(0.3, n_earlystop=12)
    assert len(d.boundary_table()) == 12
    printed = d.printed_boundary_table()
    assert [(c.n, c.escalate_at_most, c.deescalate_at_least, c.eliminate_at_least) for c in printed] == [
        (3, 0, 2, 3),
        (6, 1, 3, 4),
        (9, 2, 4, 5),
        (12, 2, 5, 7),
    ]


def test_extrasafe_stop_boundary() -> None:
    # get.boundary(0.3, 10, 3, extrasafe=TRUE)$stop_boundary
    expected = [NA, NA, 2, 3, 3, 4, 4, 4, 5, 5, 6, 6, 6, 7, 7, 8, 8, 8, 9, 9, 9, 10, 10, 10, 11, 11, 12, 12, 12, 13]
    d = boin(0.3, extrasafe=True)
    assert [d.stop_boundary(n) for n in range(1, 31)] == expected


def test_p_saf_and_p_tox_are_settable() -> None:
    d = boin(0.3)
    wider = Boin(d.dose_levels, d.settings, p_saf=0.1, p_tox=0.5)
    phi = 0.3
    assert wider.lambda_e == pytest.approx(math.log(0.9 / 0.7) / math.log(phi * 0.9 / (0.1 * 0.7)))
    assert wider.lambda_d == pytest.approx(math.log(0.7 / 0.5) / math.log(0.5 * 0.7 / (phi * 0.5)))
    assert wider.lambda_e < d.lambda_e < d.lambda_d < wider.lambda_d
    with pytest.raises(ValueError, match="p_saf"):
        Boin(d.dose_levels, d.settings, p_saf=0.29)
    with pytest.raises(ValueError, match="p_tox"):
        Boin(d.dose_levels, d.settings, p_tox=0.31)


# select.mtd(target, npts, ntox): MTD (None = R's 99) and the unrounded isotonic
# estimates of the treated levels (boin_reference.out).
SELECT_MTD = [
    (0.3, [3, 3, 15, 9, 0], [0, 0, 4, 4, 0], 3, [0.016129032258, 0.016129032258, 0.268211920530, 0.445054945055]),
    # Isotonic regression changes the pick: raw estimates pick level 4 (0.339), pooled levels 2-3 (0.316) win.
    (0.3, [3, 6, 9, 3, 0], [0, 3, 2, 1, 0], 2, [0.016129032258, 0.315712942882, 0.315712942882, 0.338709677419]),
    (0.25, [3, 6, 12, 6, 3], [0, 1, 2, 3, 3], 3, [0.016129032258, 0.170366125495, 0.170366125495, 0.5, 0.983870967742]),
    (0.3, [3, 3, 0, 0, 0], [3, 0, 0, 0, 0], None, [0.5, 0.5]),
    (0.2, [6, 6, 6, 0], [0, 1, 2, 0], 2, [0.008196721311, 0.172131147541, 0.336065573770]),
    (0.3, [6, 9, 6], [1, 1, 4], 2, [0.134388742702, 0.134388742702, 0.663934426230]),
    # Raw estimates pick level 2 (0.336); pooled 2-3 tie below the target: the higher level.
    (0.3, [3, 6, 9, 0], [0, 2, 1, 0], 3, [0.016129032258, 0.169083007953, 0.169083007953]),
    (0.3, [3, 3, 3, 3], [0, 0, 0, 0], 4, [0.016129032258] * 4),
    (0.25, [9, 9, 3], [1, 2, 3], 2, [0.115384615385, 0.225274725275, 0.983870967742]),
]


@pytest.mark.parametrize(("target", "npts", "ntox", "mtd", "iso"), SELECT_MTD)
def test_select_mtd(target: float, npts: list[int], ntox: list[int], mtd: int | None, iso: list[float]) -> None:
    sel = select_mtd(target, npts, ntox)
    assert sel.mtd == mtd
    assert [e for e in sel.estimates if e is not None] == pytest.approx(iso, abs=1e-11)


def test_select_mtd_extrasafe() -> None:
    # select.mtd(0.3, c(3,3,3), c(0,0,2), extrasafe=TRUE)$MTD == 2; with 2/3 at level 1 R gives 99 with
    # extrasafe and 2 without (pooled levels 1-2 tie below the target: the higher level).
    assert select_mtd(0.3, [3, 3, 3], [0, 0, 2], extrasafe=True).mtd == 2
    assert select_mtd(0.3, [3, 3, 0], [2, 0, 0], extrasafe=True).mtd is None
    assert select_mtd(0.3, [3, 3, 0], [2, 0, 0], extrasafe=False).mtd == 2


def test_pava_pools_the_first_violation_first() -> None:
    assert pava([0.1, 0.5, 0.3, 0.2], [1, 1, 1, 1]) == pytest.approx([0.1, 1 / 3, 1 / 3, 1 / 3])
    assert pava([0.4, 0.2], [3, 1]) == pytest.approx([0.35, 0.35])
    assert pava([0.1, 0.2], [1, 1]) == [0.1, 0.2]


def lv(*pairs: tuple[int, int]) -> list[LevelOutcome]:
    return [LevelOutcome(n, y) for n, y in pairs]


@pytest.mark.parametrize(
    ("outcomes", "current", "decision", "level"),
    [
        (lv((0, 0), (0, 0), (0, 0)), None, DesignDecision.ENROLL, 1),
        (lv((3, 0), (0, 0), (0, 0)), 1, DesignDecision.ESCALATE, 2),
        (lv((3, 0), (3, 1), (0, 0)), 2, DesignDecision.STAY, 2),  # 1/3: 0 < 1 < 2 (target 0.3)
        (lv((3, 0), (3, 2), (0, 0)), 2, DesignDecision.DE_ESCALATE, 1),
        (lv((3, 0), (3, 0), (3, 0)), 3, DesignDecision.STAY, 3),  # top level
        (lv((3, 1), (0, 0), (0, 0)), 1, DesignDecision.STAY, 1),
        (lv((3, 2), (0, 0), (0, 0)), 1, DesignDecision.STAY, 1),  # lowest level: stay
        (lv((3, 3), (0, 0), (0, 0)), 1, DesignDecision.STOP_NO_MTD, None),  # level 1 eliminated
        (lv((6, 1), (3, 3), (0, 0)), 1, DesignDecision.STAY, 1),  # 1/6 escalates, but level 2 is eliminated
    ],
)
def test_decisions(
    outcomes: list[LevelOutcome], current: int | None, decision: DesignDecision, level: int | None
) -> None:
    r = boin(0.3, levels=3).decide(outcomes, current)
    assert (r.decision, r.recommended_dose_level) == (decision, level)
    if level is not None and not r.finished:
        assert r.open_slots == ((level, 3),)


def test_elimination_is_reported_and_levels_above_go_too() -> None:
    r = boin(0.3, levels=4).decide(lv((3, 0), (3, 3), (0, 0), (0, 0)), 2)
    assert r.eliminated_levels == (2, 3, 4)
    assert r.decision is DesignDecision.DE_ESCALATE and r.recommended_dose_level == 1
    assert any("eliminated" in s for s in r.reasons)


def test_wait_while_patients_are_in_the_window() -> None:
    r = boin(0.3, levels=3).decide([LevelOutcome(3, 0), LevelOutcome(1, 0, pending=2), LevelOutcome(0, 0)], 2)
    assert r.decision is DesignDecision.WAIT and r.open_slots == ()


def test_maximum_sample_size_ends_with_select_mtd() -> None:
    d = boin(0.3, levels=5, max_sample_size=30)
    r = d.decide(lv((3, 0), (3, 0), (15, 4), (9, 4), (0, 0)), 4)
    assert (r.decision, r.mtd_dose_level) == (DesignDecision.MTD_DECLARED, 3)
    r = d.decide(lv((3, 0), (3, 0), (12, 4), (9, 4), (0, 0)), 3)  # 27 < 30: go on
    assert r.decision is DesignDecision.STAY and r.open_slots == ((3, 3),)


def test_n_earlystop_only_when_the_next_cohort_would_stay() -> None:
    d = boin(0.3, levels=3, n_earlystop=9)
    stay = d.decide(lv((3, 0), (9, 3), (0, 0)), 2)  # 3/9: stay zone, 9 >= 9: stop
    assert stay.decision is DesignDecision.MTD_DECLARED and stay.mtd_dose_level == 2
    move = d.decide(lv((3, 0), (9, 1), (0, 0)), 2)  # 1/9 escalates: go on
    assert move.decision is DesignDecision.ESCALATE


def test_extrasafe_stops_on_level_1() -> None:
    safe = boin(0.3, levels=3, extrasafe=True)
    r = safe.decide(lv((3, 2), (0, 0), (0, 0)), 1)
    assert r.decision is DesignDecision.STOP_NO_MTD
    assert boin(0.3, levels=3).decide(lv((3, 2), (0, 0), (0, 0)), 1).decision is DesignDecision.STAY


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"target": 0.7}, "target"),
        ({"target": 0.3, "cohort_size": 0}, "cohort_size"),
        ({"target": 0.3, "max_sample_size": 2}, "max_sample_size"),
        ({"target": 0.3, "cutoff_eli": 1.2}, "cutoff_eli"),
    ],
)
def test_bad_settings_name_the_field(kw: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        IntervalSettings(**kw)  # type: ignore[arg-type]


def test_bad_outcomes_name_the_field() -> None:
    d = boin(0.3, levels=3)
    with pytest.raises(ValueError, match="outcomes"):
        d.decide(lv((3, 0), (0, 0)), 1)
    with pytest.raises(ValueError, match="current_level"):
        d.decide(lv((3, 0), (0, 0), (0, 0)), None)
    with pytest.raises(ValueError, match="current_level"):
        d.decide(lv((3, 0), (0, 0), (0, 0)), 4)
    with pytest.raises(ValueError, match="current_level: nobody has been treated"):
        d.decide(lv((0, 0), (0, 0), (0, 0)), 1)
    with pytest.raises(ValueError, match="dlts"):
        LevelOutcome(3, 4)


# R get.oc (ntrial = 10,000, seed 6): selection %, patients per level, % stopped and
# mean sample size (boin_reference.out). R's numbers carry Monte Carlo error; the exact
# enumeration (exact_characteristics) must lie within 4 of R's standard errors, and our
# own simulation (another random stream) within 4 of its standard errors of the exact values.
GET_OC = [
    (
        {"target": 0.3, "max_sample_size": 30},
        (0.05, 0.15, 0.3, 0.45, 0.6),
        [1.08, 23.52, 54.96, 19.03, 1.39],
        [4.152, 9.1968, 11.1498, 4.7322, 0.7638],
        0.02,
        29.9946,
    ),
    (
        {"target": 0.25, "max_sample_size": 24, "n_earlystop": 12},
        (0.25, 0.4, 0.5, 0.6),
        [74.21, 15.38, 1.87, 0.15],
        [11.0904, 4.8387, 0.9777, 0.1251],
        8.39,
        17.0319,
    ),
]


@pytest.mark.parametrize(("kw", "true", "sel", "npat", "stop", "total"), GET_OC)
def test_operating_characteristics_agree_with_r_get_oc(
    kw: dict[str, float], true: tuple[float, ...], sel: list[float], npat: list[float], stop: float, total: float
) -> None:
    d = Boin(tuple(float(i) for i in range(len(true))), IntervalSettings(**kw))  # type: ignore[arg-type]
    exact = exact_characteristics(d, true)
    r_trials = 10_000
    for p, theirs in zip([*exact.prob_select, exact.prob_no_mtd], [*sel, stop], strict=True):
        se = math.sqrt(max(p * (1 - p), 1e-4) / r_trials)
        assert abs(p - theirs / 100) <= 4 * se
    sim = simulate(d, true, n_trials=10_000, seed=6)
    for p, ours, se in zip(exact.prob_select, sim.prob_select, sim.se_prob_select, strict=True):
        assert abs(ours - p) <= 4 * max(se, 1e-3)
    for e, theirs, ours, se in zip(
        exact.patients_per_level, npat, sim.patients_per_level, sim.se_patients_per_level, strict=True
    ):
        assert abs(ours - e) <= 4 * se
        assert abs(theirs - e) <= 4 * se  # R's standard error is about ours
    assert abs(exact.mean_patients - total) <= 4 * max(sim.se_mean_patients, 0.01)
    assert abs(sim.mean_patients - exact.mean_patients) <= 4 * max(sim.se_mean_patients, 0.01)
    assert sum(exact.prob_select) + exact.prob_no_mtd == pytest.approx(1.0, abs=1e-12)
