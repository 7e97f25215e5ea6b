"""Backfill (issue 17, analysis.designs.backfill): which levels take backfill patients,
how many, and why; a backfill patient's DLTs count for the level, not for the maximum
sample size; backfill data that eliminate a level below the current one send the dose
finding below it. Worked by hand from the module doc's rules."""

import pytest

from analysis.designs.backfill import (
    BackfillSettings,
    backfill_current_level,
    backfill_slots,
    closed_levels,
)
from analysis.designs.boin import Boin
from analysis.designs.common import LevelOutcome as L
from analysis.designs.crm import Crm
from analysis.designs.interval import IntervalSettings
from trial.configuration import DesignSpec, design_problems

ON = BackfillSettings(enabled=True, max_per_level=3)


@pytest.mark.parametrize(
    ("rule", "enrolled", "current", "closed", "ended", "slots", "why"),
    [
        # off: nothing opens, whatever the data
        (BackfillSettings(), [0, 0, 0, 0], 3, {}, None, [0, 0, 0, 0], "Backfill is off"),
        # nobody treated: no level is cleared
        (ON, [0, 0, 0, 0], None, {}, None, [0, 0, 0, 0], "Nobody treated yet"),
        # current level 3: levels 1 and 2 are cleared; 1 of level 2's places is taken
        (ON, [0, 1, 0, 0], 3, {}, None, [3, 2, 0, 0], "2 of 3 backfill places open (1 taken)"),
        # every place of level 1 taken
        (ON, [3, 0, 0, 0], 3, {}, None, [0, 3, 0, 0], "all 3 backfill places taken"),
        # levels_below=1: only the cleared level nearest below the current one
        (BackfillSettings(True, 3, 1), [0, 0, 0, 0], 4, {}, None, [0, 0, 3, 0], "Only the 1 cleared level nearest"),
        # ... counted among the open levels: level 3 closed, so level 2 is the nearest
        (BackfillSettings(True, 2, 1), [0, 0, 0, 0], 4, {3: "closed"}, None, [0, 2, 0, 0], "closed"),
        # closed levels take nobody, with the closing reason
        (ON, [0, 0, 0, 0], 3, {1: "Level 1 is eliminated"}, None, [0, 3, 0, 0], "Level 1 is eliminated"),
        # the dose finding has ended: no backfill
        (ON, [0, 0, 0, 0], 3, {}, "mtd_declared", [0, 0, 0, 0], "has ended (mtd_declared)"),
        # current level 1: nothing below it
        (ON, [0, 0, 0, 0], 1, {}, None, [0, 0, 0, 0], "where the dose finding stands"),
        # 0 places per level although enabled (the configuration refuses it; the rule copes)
        (BackfillSettings(True, 0), [0, 0, 0, 0], 3, {}, None, [0, 0, 0, 0], "0 patients per level"),
    ],
)
def test_backfill_slots(rule, enrolled, current, closed, ended, slots, why) -> None:  # type: ignore[no-untyped-def]
    rows = backfill_slots(rule, 4, enrolled, current, closed, ended)
    assert [r.slots for r in rows] == slots
    assert [r.enrolled for r in rows] == enrolled
    assert [r.dose_level for r in rows] == [1, 2, 3, 4]
    assert any(why in r.reason for r in rows), [r.reason for r in rows]


def test_every_level_says_why() -> None:
    rows = backfill_slots(BackfillSettings(True, 3, 1), 4, [0, 0, 0, 0], 3, {}, None)
    assert [r.reason for r in rows] == [
        "Only the 1 cleared level nearest below the current level 3 take backfill patients.",
        "Level 2 is cleared (below the current level 3): 3 of 3 backfill places open (0 taken).",
        "Level 3 is where the dose finding stands: its cohorts, not backfill.",
        "Level 4 is above the current level 3: not cleared.",
    ]


BOIN_30 = Boin((1.0, 2.0, 3.0, 4.0), IntervalSettings(0.3))  # n=6: de-escalate at >= 3 DLTs, eliminate at >= 4


@pytest.mark.parametrize(
    ("outcomes", "kwargs", "closed"),
    [
        # the design's eliminated levels
        ([L(3, 0), L(6, 4), L(0, 0), L(0, 0)], {"eliminated": (2, 3, 4)}, [2, 3, 4]),
        # 3+3: >= 2 DLTs among all the level's patients (PROTOCOL s6)
        ([L(6, 2), L(6, 1), L(3, 0), L(0, 0)], {"toxic_dlts": 2}, [1]),
        # BOIN's de-escalation zone (BF-BOIN closes a backfill dose there): 3/6 closes, 2/6 does not
        ([L(6, 3), L(6, 2), L(3, 0), L(0, 0)], {"zone": BOIN_30.zone}, [1]),
        # the CRM: the estimate above the target closes a treated level
        ([L(3, 0), L(6, 2), L(3, 0), L(0, 0)], {"estimates": (0.1, 0.32, 0.2, 0.5), "target": 0.25}, [2]),
        # nothing closed
        ([L(3, 0), L(3, 0), L(3, 0), L(0, 0)], {"zone": BOIN_30.zone}, []),
    ],
)
def test_closed_levels(outcomes, kwargs, closed) -> None:  # type: ignore[no-untyped-def]
    found = closed_levels(outcomes, **kwargs)
    assert sorted(found) == closed
    assert all(f"Level {lv}" in found[lv] for lv in found)


@pytest.mark.parametrize(
    ("in_effect", "recommended", "current"),
    [(3, 4, 3), (3, 1, 1), (2, None, 2), (None, 1, None), (3, 3, 3)],
)
def test_the_current_level_for_backfill_is_the_lower_of_in_effect_and_recommended(
    in_effect, recommended, current
) -> None:  # type: ignore[no-untyped-def]
    assert backfill_current_level(in_effect, recommended) == current


def test_backfill_patients_do_not_count_toward_the_maximum_sample_size() -> None:
    """BOIN, at most 9 patients: 3 at level 1 + 3 at level 2 in cohorts, and 3 backfill
    patients at level 1. The cohorts have 6 of the 9: escalate. Were the backfill patients
    cohort patients, 9 would end the trial."""
    boin = Boin((1.0, 2.0, 3.0, 4.0), IntervalSettings(0.3, 3, 9))
    with_backfill = boin.decide([L(6, 0, 0, 3), L(3, 0), L(0, 0), L(0, 0)], 2)
    assert (with_backfill.decision, with_backfill.recommended_dose_level) == ("escalate", 3)
    as_cohorts = boin.decide([L(6, 0), L(3, 0), L(0, 0), L(0, 0)], 2)
    assert as_cohorts.decision == "mtd_declared"


def test_backfill_dlts_that_eliminate_a_level_below_the_current_one_send_the_trial_below_it() -> None:
    """BOIN target 0.2 (n=6: eliminated at >= 3 DLTs): at level 3, backfill patients at
    level 2 bring it to 3 DLTs in 6; levels 2-4 are eliminated and the next cohort goes to
    level 1, not to the eliminated level 2. At level 1 the same counts stop the trial."""
    boin = Boin((1.0, 2.0, 3.0, 4.0), IntervalSettings(0.2))
    result = boin.decide([L(3, 0), L(6, 3, 0, 3), L(3, 0), L(0, 0)], 3)
    assert (result.decision, result.recommended_dose_level, result.eliminated_levels) == ("de_escalate", 1, (2, 3, 4))
    assert any("de-escalate to level 1" in r for r in result.reasons)
    stop = boin.decide([L(6, 3, 0, 3), L(3, 0), L(3, 0), L(0, 0)], 3)
    assert (stop.decision, stop.eliminated_levels) == ("stop_no_mtd", (1, 2, 3, 4))


def test_the_crm_counts_cohort_patients_against_its_maximum() -> None:
    crm = Crm((1.0, 2.0, 3.0), (0.05, 0.12, 0.25), 0.25, max_sample_size=6)
    assert crm.decide([L(6, 0, 0, 3), L(0, 0), L(0, 0)], 1).decision != "mtd_declared"
    assert crm.decide([L(6, 0), L(0, 0), L(0, 0)], 1).decision == "mtd_declared"


def test_a_level_outcome_has_no_more_backfill_than_evaluable_patients() -> None:
    with pytest.raises(ValueError, match="backfill"):
        L(2, 0, 0, 3)


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        (DesignSpec(backfill_enabled=True, backfill_max_per_level=0), "backfill_max_per_level", "at least 1"),
        (DesignSpec(backfill_max_per_level=101), "backfill_max_per_level", "0 to 100"),
        (DesignSpec(backfill_max_per_level=2.5), "backfill_max_per_level", "whole number"),  # type: ignore[arg-type]
        (DesignSpec(backfill_levels=-1), "backfill_levels", "0 (every cleared level"),
        (DesignSpec(backfill_levels=True), "backfill_levels", "whole number"),
        (DesignSpec(backfill_enabled="yes"), "backfill_enabled", "true or false"),  # type: ignore[arg-type]
    ],
)
def test_bad_backfill_settings_are_named(spec, field, words) -> None:  # type: ignore[no-untyped-def]
    problems = design_problems(spec, 4)
    assert list(problems) == [field]
    assert words in problems[field][0]


def test_good_backfill_settings_pass() -> None:
    assert design_problems(DesignSpec(backfill_enabled=True, backfill_max_per_level=3, backfill_levels=2), 4) == {}
    assert design_problems(DesignSpec(backfill_enabled=False, backfill_max_per_level=0), 4) == {}


def test_pathways_keep_backfill_patients_out_of_the_maximum() -> None:
    """BOIN, at most 15: cohorts of 3 at levels 1-3 (2 DLTs at level 3: de-escalate) and 3
    backfill patients at level 2. The next cohort of 3 at level 2 brings the cohorts to 12
    of 15: the trial goes on (were level 2's backfill patients counted as cohort patients
    once the cohort joins them, 15 would end it)."""
    from analysis.designs.pathways import dose_paths

    boin = Boin((1.0, 2.0, 3.0, 4.0), IntervalSettings(0.3, 3, 15))
    tree = dose_paths(boin, [L(3, 0), L(6, 0, 0, 3), L(3, 2), L(0, 0)], 3, cohorts=1)
    assert (tree.result.decision, tree.result.recommended_dose_level) == ("de_escalate", 2)
    assert tree.children[0].result.decision != "mtd_declared"
