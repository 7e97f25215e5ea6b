"""The planning simulations' pure parts (issue 17): simulate's progress callback and cancel,
the new standard errors, the comparison's input rules, and 3+3 simulated vs exact."""

import dataclasses
import math

import numpy as np
import pytest

from analysis.designs.boin import Boin
from analysis.designs.comparison import (
    AGREEMENT_SE,
    DesignChoice,
    agreement,
    comparison_problems,
    comparison_run,
    design_for,
    max_cohorts,
)
from analysis.designs.interval import IntervalSettings
from analysis.designs.simulation import SimulationCancelled, simulate
from analysis.designs.three_plus_three import ThreePlusThree
from analysis.escalation import Variant
from analysis.operating_characteristics import exact_operating_characteristics
from trial.configuration import DesignSpec

PROBS = (0.05, 0.12, 0.25, 0.40)
BOIN = Boin((1.0, 2.0, 3.0, 4.0), IntervalSettings(0.3, 3, 30))


@pytest.mark.parametrize("design", [BOIN, ThreePlusThree((1.0, 2.0, 3.0, 4.0))], ids=["boin", "3+3"])
def test_the_progress_callback_changes_no_result(design) -> None:  # type: ignore[no-untyped-def]
    seen: list[float] = []
    plain = simulate(design, PROBS, n_trials=600, seed=5)
    followed = simulate(design, PROBS, n_trials=600, seed=5, on_progress=seen.append, max_cohorts=10)
    assert followed == plain  # every field, the draws included
    assert seen == sorted(seen) and seen[-1] == 1.0 and all(0 <= x <= 1 for x in seen)
    assert len(seen) >= 3  # once per round (cohort)


def test_boin_runs_every_trial_to_n_max_so_progress_follows_the_rounds() -> None:
    # BOIN with N = 30 and no early stop ends every trial in round 10: the share of trials
    # finished would stay 0 until then; with max_cohorts the bar moves each round.
    by_trials: list[float] = []
    by_rounds: list[float] = []
    simulate(BOIN, PROBS, n_trials=300, seed=1, on_progress=by_trials.append)
    simulate(BOIN, PROBS, n_trials=300, seed=1, on_progress=by_rounds.append, max_cohorts=10)
    assert by_trials[:-1] == [0.0] * (len(by_trials) - 1)
    assert by_rounds[:3] == pytest.approx([0.1, 0.2, 0.3]) and by_rounds[-1] == 1.0


def test_a_cancel_raised_by_the_callback_stops_the_run() -> None:
    calls: list[float] = []

    def cancel_at_third(done: float) -> None:
        calls.append(done)
        if len(calls) == 3:
            raise SimulationCancelled("cancelled")

    with pytest.raises(SimulationCancelled):
        simulate(BOIN, PROBS, n_trials=500, seed=2, on_progress=cancel_at_third)
    assert len(calls) == 3  # no round after the cancel


def test_standard_errors_of_dlts_per_level_and_of_the_overdose_fraction() -> None:
    r = simulate(BOIN, PROBS, n_trials=2000, seed=9)
    assert len(r.se_dlts_per_level) == 4 and r.se_overdose_fraction is not None
    # A mean of values in [0, 1]: its SE is at most 0.5 / sqrt(n); DLTs per level are counts
    # of a few, so their SE is of the order sqrt(mean / n).
    assert 0 < r.se_overdose_fraction <= 0.5 / math.sqrt(2000)
    for mean, se in zip(r.dlts_per_level, r.se_dlts_per_level, strict=True):
        assert se == 0 if mean == 0 else 0 < se < 3 * math.sqrt(mean / 2000) + 1e-9
    # 3+3 has no target: no threshold, no overdose fraction, no SE of it.
    t = simulate(ThreePlusThree((1.0, 2.0)), (0.1, 0.5), n_trials=200, seed=1)
    assert t.overdose_fraction is None and t.se_overdose_fraction is None


SKELETON = [0.05, 0.12, 0.25, 0.40]


@pytest.mark.parametrize(
    ("probabilities", "choices", "n_trials", "seed", "expected"),
    [
        (PROBS, [DesignChoice(DesignSpec("boin"))], 10_000, 1, set()),
        ([0.1], [DesignChoice()], 10_000, 1, {"true_dlt_probabilities"}),  # 1 level
        ([0.1] * 11, [DesignChoice()], 10_000, 1, {"true_dlt_probabilities"}),  # 11 levels
        ([0.1, 1.2], [DesignChoice()], 10_000, 1, {"true_dlt_probabilities"}),
        ([0.1, float("nan")], [DesignChoice()], 10_000, 1, {"true_dlt_probabilities"}),
        (PROBS, [DesignChoice()], 99, 1, {"n_trials"}),
        (PROBS, [DesignChoice()], 50_001, 1, {"n_trials"}),
        (PROBS, [DesignChoice()], 100.5, 1, {"n_trials"}),
        (PROBS, [DesignChoice()], 100, -1, {"seed"}),
        (PROBS, [DesignChoice()], 100, 2**32, {"seed"}),
        (PROBS, [], 100, 1, {"designs"}),
        (PROBS, [DesignChoice()] * 7, 100, 1, {"designs"}),
        (PROBS, [DesignChoice(variant="storer_b")], 100, 1, {"designs[0].variant"}),
        (PROBS, [DesignChoice(), DesignChoice(DesignSpec("crm"))], 100, 1, {"designs[1].crm_skeleton"}),
        (PROBS, [DesignChoice(DesignSpec("crm", crm_skeleton=SKELETON[:3]))], 100, 1, {"designs[0].crm_skeleton"}),
        (PROBS, [DesignChoice(DesignSpec("crm", crm_skeleton=SKELETON))], 100, 1, set()),
        (PROBS, [DesignChoice(DesignSpec("boin", target_dlt_rate=0.7))], 100, 1, {"designs[0].target_dlt_rate"}),
        (PROBS, [DesignChoice(DesignSpec("boin", boin_p_saf=0.29))], 100, 1, {"designs[0].boin_p_saf"}),
        (PROBS, [DesignChoice(DesignSpec("i3+3", cohort_size=0))], 100, 1, {"designs[0].cohort_size"}),
        (PROBS, [DesignChoice(DesignSpec("mtpi2", max_sample_size=2))], 100, 1, {"designs[0].max_sample_size"}),
        (PROBS, [DesignChoice(DesignSpec("nope"))], 100, 1, {"designs[0].design"}),
    ],
)
def test_comparison_problems_name_the_field(probabilities, choices, n_trials, seed, expected) -> None:  # type: ignore[no-untyped-def]
    problems = comparison_problems(probabilities, choices, n_trials, seed)
    assert set(problems) == expected, problems
    assert all(messages and all(isinstance(m, str) and m for m in messages) for messages in problems.values())


@pytest.mark.parametrize("variant", list(Variant))
def test_3plus3_simulation_agrees_with_the_exact_values(variant: Variant) -> None:
    ps = (0.05, 0.15, 0.30, 0.50)
    choice = DesignChoice(DesignSpec("3+3"), variant.value)
    (column,) = comparison_run(ps, [choice], n_trials=4000, seed=11, overdose_threshold=0.3)
    exact = column["exact"]
    assert exact["within_se"] == AGREEMENT_SE and exact["all_agree"], exact
    reference = exact_operating_characteristics(ps, variant)
    assert [r["exact"] for r in exact["prob_select"]] == pytest.approx(reference.prob_mtd, abs=1e-12)
    assert exact["mean_patients"]["exact"] == pytest.approx(reference.expected_patients, abs=1e-12)
    assert exact["mean_patients"]["simulated"] == column["mean_patients"]
    assert 0 < exact["mean_patients"]["se"] < 0.2


def test_agreement_flags_a_simulation_that_does_not_match() -> None:
    ps = (0.05, 0.15, 0.30, 0.50)
    sim = simulate(ThreePlusThree((1.0, 2.0, 3.0, 4.0)), ps, n_trials=4000, seed=3)
    exact = exact_operating_characteristics(ps)
    assert agreement(sim, exact)["all_agree"]
    wrong = dataclasses.replace(exact, expected_patients=exact.expected_patients + 1.0)  # ~15 SE off
    checked = agreement(sim, wrong)
    assert not checked["all_agree"] and not checked["mean_patients"]["agrees"]
    assert checked["mean_patients"]["z"] > AGREEMENT_SE


def test_every_design_runs_and_the_columns_follow_the_choices() -> None:
    choices = [
        DesignChoice(DesignSpec("3+3")),
        DesignChoice(DesignSpec("boin")),
        DesignChoice(DesignSpec("i3+3")),
        DesignChoice(DesignSpec("mtpi2")),
        DesignChoice(DesignSpec("crm", crm_skeleton=SKELETON, max_sample_size=12)),
    ]
    seen: list[float] = []
    columns = comparison_run(PROBS, choices, n_trials=100, seed=4, overdose_threshold=0.3, on_progress=seen.append)
    assert [c["parameters"]["design"] for c in columns] == ["3+3", "boin", "i3+3", "mtpi2", "crm"]
    assert seen == sorted(seen) and seen[-1] == 1.0
    for column in columns:
        total = sum(column["prob_select"]) + column["prob_no_mtd"]
        assert total == pytest.approx(1.0)
        assert sum(column["patients_per_level"]) == pytest.approx(column["mean_patients"])
        assert column["overdose_fraction"] is not None  # the run's threshold, for 3+3 too
    assert columns[0]["exact"] is not None and all(c["exact"] is None for c in columns[1:])
    assert max_cohorts(choices[0], 4) == 8 and max_cohorts(choices[4], 4) == 4
    assert np.isclose(columns[4]["mean_patients"], 12.0) or columns[4]["mean_patients"] < 12.0
    assert design_for(choices[3], 4).name == "keyboard"
