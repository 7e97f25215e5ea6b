"""The CRM (analysis/designs/crm.py) against R dfcrm 0.2-2.1.

Expected numbers: tests/rules/reference/crm_reference.R (output kept in
crm_reference.out), dfcrm built from github:cran/dfcrm; the data set is the example
of dfcrm's crm help page (man/crm.Rd): skeleton 0.05, 0.10, 0.20, 0.35, 0.50, 0.70,
target 0.2, ten patients at levels 3, 4, 4, 3, 3, 4, 3, 2, 2, 2 with DLTs
0, 0, 1, 0, 0, 1, 1, 0, 0, 0. The posterior means of p and P(p > 0.3) are computed
in that script by integrating the same posterior (dfcrm prints neither).
"""

from __future__ import annotations

import pytest

from analysis.designs.common import DesignDecision, LevelOutcome
from analysis.designs.crm import Crm, Estimate, Model

SKELETON = (0.05, 0.10, 0.20, 0.35, 0.50, 0.70)
LEVELS = (3, 4, 4, 3, 3, 4, 3, 2, 2, 2)
TOX = (0, 0, 1, 0, 0, 1, 1, 0, 0, 0)


def outcomes(levels: tuple[int, ...], tox: tuple[int, ...], k: int = 6) -> list[LevelOutcome]:
    return [
        LevelOutcome(sum(1 for lv in levels if lv == j), sum(t for lv, t in zip(levels, tox, strict=True) if lv == j))
        for j in range(1, k + 1)
    ]


def crm(model: Model = Model.EMPIRIC, target: float = 0.2, **kw: object) -> Crm:
    return Crm(tuple(float(i) for i in range(1, 7)), SKELETON, target, model, **kw)  # type: ignore[arg-type]


DFCRM = {
    Model.EMPIRIC: (
        -0.2121715263,
        0.1575955281,
        2,
        [0.0886529470, 0.1553009274, 0.2720538785, 0.4277897776, 0.5708462173, 0.7493958348],
        [0.1097133482, 0.1725043964, 0.2796875449, 0.4240599367, 0.5606304584, 0.7377401761],
        [0.044987, 0.136089, 0.407715, 0.809745, 0.979241, 0.999980],
    ),
    Model.LOGISTIC: (
        -0.1101116088,
        0.0386954003,
        2,
        [0.0891029822, 0.1603896726, 0.2831370372, 0.4398681849, 0.5775679583, 0.7449297957],
        [0.1132047274, 0.1813489076, 0.2915941811, 0.4321494568, 0.5618472730, 0.7316426022],
        [0.054294, 0.158707, 0.439305, 0.812022, 0.973229, 0.999917],
    ),
}


@pytest.mark.parametrize("model", [Model.EMPIRIC, Model.LOGISTIC])
def test_dfcrm_help_page_example(model: Model) -> None:
    estimate, post_var, mtd, ptox, mean, above = DFCRM[model]
    d = crm(model)
    post = d.posterior(outcomes(LEVELS, TOX), threshold=0.3)
    assert post.beta_mean == pytest.approx(estimate, abs=1e-8)
    assert post.beta_var == pytest.approx(post_var, abs=1e-8)
    assert post.ptox == pytest.approx(ptox, abs=1e-8)
    assert post.posterior_mean == pytest.approx(mean, abs=1e-8)
    # R integrates a step function here: its own error is about 1e-5.
    assert post.prob_above == pytest.approx(above, abs=1e-4)
    r = d.decide(outcomes(LEVELS, TOX), current_level=2)
    assert r.recommended_dose_level == mtd
    assert r.decision is DesignDecision.STAY
    assert r.estimates == pytest.approx(ptox, abs=1e-8)
    by_mean = crm(model, estimate=Estimate.POSTERIOR_MEAN).decide(outcomes(LEVELS, TOX), current_level=2)
    assert by_mean.estimates == pytest.approx(mean, abs=1e-8)
    assert by_mean.recommended_dose_level == 2  # 0.1725 / 0.1813 is still the closest to 0.2


def test_dfcrm_more_data_sets() -> None:
    # crm(prior, 0.2, c(0,0,0), c(1,1,1)): estimate 0.5101945146, mtd 4; the design may not skip.
    d = crm()
    out = outcomes((1, 1, 1), (0, 0, 0))
    post = d.posterior(out)
    assert post.beta_mean == pytest.approx(0.5101945146, abs=1e-8)
    assert post.ptox == pytest.approx(
        [0.0068074542, 0.0215965734, 0.0685148910, 0.1740174608, 0.3152099214, 0.5520684757], abs=1e-8
    )
    assert d.model_level(post.ptox) == 4
    r = d.decide(out, 1)
    assert (r.decision, r.recommended_dose_level) == (DesignDecision.ESCALATE, 2)
    assert any("No skipping" in s for s in r.reasons)
    assert crm(no_skipping=False).decide(out, 1).recommended_dose_level == 4
    # target 0.25, levels 2,2,2,3,3,3,3,3, DLTs 0,0,0,1,0,1,1,1: mtd 1 in both models.
    levels, tox = (2, 2, 2, 3, 3, 3, 3, 3), (0, 0, 0, 1, 0, 1, 1, 1)
    for model, est, ptox in [
        (
            Model.EMPIRIC,
            -0.8542457988,
            [0.2794321357, 0.3753150146, 0.5040986420, 0.6396663545, 0.7445269304, 0.8591581155],
        ),
        (
            Model.LOGISTIC,
            -0.4759945451,
            [0.3333475946, 0.4430325757, 0.5683054171, 0.6795295905, 0.7569811586, 0.8405863754],
        ),
    ]:
        d = crm(model, target=0.25)
        post = d.posterior(outcomes(levels, tox))
        assert post.beta_mean == pytest.approx(est, abs=1e-8)
        assert post.ptox == pytest.approx(ptox, abs=1e-8)
        r = d.decide(outcomes(levels, tox), 3)
        assert (r.decision, r.recommended_dose_level) == (DesignDecision.DE_ESCALATE, 1)


def test_overdose_control_restricts_and_stops() -> None:
    # P(p > 0.3) from the reference: level 3 0.408 (>= 0.25): levels 3-6 not allowed.
    d = crm(overdose_margin=0.1)
    out = outcomes(LEVELS, TOX)
    r = d.decide(out, 2)
    assert r.eliminated_levels == (3, 4, 5, 6)
    assert r.recommended_dose_level == 2
    assert any("Overdose control" in s for s in r.reasons)
    # Without overdose control the same data at a higher target escalate to level 3.
    assert crm(target=0.3).decide(out, 2).recommended_dose_level == 3
    assert crm(target=0.3, overdose_margin=0.0).decide(out, 2).recommended_dose_level == 2
    toxic = outcomes((1, 1, 1), (1, 1, 1))
    stop = crm(overdose_margin=0.05).decide(toxic, 1)
    assert stop.decision is DesignDecision.STOP_NO_MTD and stop.recommended_dose_level is None


def test_end_declares_the_mtd_and_wait_and_enroll() -> None:
    d = crm(max_sample_size=10)
    r = d.decide(outcomes(LEVELS, TOX), 2)
    assert (r.decision, r.mtd_dose_level) == (DesignDecision.MTD_DECLARED, 2)
    first = d.decide(outcomes((), ()), None)
    assert (first.decision, first.open_slots) == (DesignDecision.ENROLL, ((1, 3),))
    waiting = [LevelOutcome(3, 0), LevelOutcome(0, 0, pending=1)] + [LevelOutcome(0, 0)] * 4
    assert d.decide(waiting, 2).decision is DesignDecision.WAIT
    with pytest.raises(ValueError, match="current_level: nobody has been treated"):
        d.decide(outcomes((), ()), 1)


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"skeleton": (0.1, 0.05, 0.2, 0.3, 0.4, 0.5)}, "skeleton"),
        ({"skeleton": (0.1, 0.2)}, "skeleton"),
        ({"target": 1.2}, "target"),
        ({"scale": 0.0}, "scale"),
        ({"model": "logistic", "intercept": -5.0}, "intercept"),
        ({"overdose_margin": 0.9}, "overdose_margin"),
        ({"start_level": 7}, "start_level"),
    ],
)
def test_bad_parameters_name_the_field(kw: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"dose_levels": tuple(float(i) for i in range(1, 7)), "skeleton": SKELETON, "target": 0.2}
    args.update(kw)
    with pytest.raises(ValueError, match=field):
        Crm(**args)  # type: ignore[arg-type]
