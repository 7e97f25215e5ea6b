"""The survival payload (analysis/survival_summary.py): what the API and dashboards show."""

from datetime import date, timedelta

import pytest

from analysis.endpoints import PatientOutcome
from analysis.survival import kaplan_meier, logrank_test, survival_at
from analysis.survival_summary import SurvivalSubject, survival_summary

HCT = date(2020, 1, 1)


def day(n: int) -> date:
    return HCT + timedelta(days=n)


def cohort() -> list[SurvivalSubject]:
    """18 patients as PROTOCOL s8 describes: one relapse at 7 months, one GVHD death."""
    subjects = [
        SurvivalSubject(
            PatientOutcome(f"P{i:02d}", HCT, day(50), None, None, day(400 + 30 * i)),
            {"mrd": "positive" if i < 5 else "negative", "conditioning": "mac" if i < 5 else "ric_nma"},
        )
        for i in range(16)
    ]
    subjects.append(
        SurvivalSubject(
            PatientOutcome("REL", HCT, day(55), day(213), None, day(600)), {"mrd": None, "conditioning": "ric_nma"}
        )
    )
    subjects.append(
        SurvivalSubject(
            PatientOutcome("GVHD", HCT, day(48), None, day(180), day(170)), {"mrd": "negative", "conditioning": "mac"}
        )
    )
    return subjects


def test_paper_landmarks_and_shape() -> None:
    s = survival_summary(cohort())
    assert s["ci"] == "log-log"
    assert s["pfs"]["at_1y"]["estimate"] == pytest.approx(16 / 18, abs=1e-6)
    assert s["os"]["at_1y"]["estimate"] == pytest.approx(17 / 18, abs=1e-6)
    assert s["nrm"]["at_1y"]["estimate"] == pytest.approx(1 / 18, abs=1e-6)
    assert (s["os"]["n"], s["os"]["events"], s["nrm"]["events"], s["nrm"]["competing_events"]) == (18, 1, 1, 1)
    assert s["os"]["curve"][0] == {
        "t_days": 0.0,
        "estimate": 1.0,
        "lower": 1.0,
        "upper": 1.0,
        "at_risk": 18,
        "censored": 0,
    }
    assert s["os"]["median_days"] is None  # not reached
    lower, upper = s["os"]["at_1y"]["lower"], s["os"]["at_1y"]["upper"]
    assert 0 < lower < 17 / 18 < upper < 1


def test_landmark_matches_the_numerical_routine() -> None:
    s = survival_summary(cohort())
    times = [p.outcome.last_known_alive for p in cohort()]
    assert len(times) == 18
    pfs_point = s["pfs"]["curve"]
    # the GVHD death is the first PFS step (day 180, 18 at risk), the relapse the next
    first, second = (p for p in pfs_point if p.get("events"))
    assert (first["t_days"], first["at_risk"], second["t_days"], second["at_risk"]) == (180.0, 18, 213.0, 17)
    km = kaplan_meier([180, 213, *[400 + 30 * i for i in range(16)]], [1, 1, *[0] * 16])
    expected = survival_at(km, 365.25)
    assert expected is not None
    assert s["pfs"]["at_1y"]["estimate"] == pytest.approx(expected.estimate)
    assert s["pfs"]["at_1y"]["lower"] == pytest.approx(expected.lower, abs=1e-6)


def test_at_risk_grid_and_follow_up() -> None:
    s = survival_summary(cohort())
    grid = s["os"]["at_risk_grid"]
    assert grid[0] == {"t_days": 0.0, "at_risk": 18}
    assert [g["t_days"] for g in grid[:3]] == pytest.approx([0, 91.3125, 182.625])
    assert grid[2]["at_risk"] == 17  # the GVHD death at day 180 is before 6 months
    fu = s["follow_up"]
    assert (fu["min_days"], fu["max_days"]) == (180, 850)


def test_subgroups_with_logrank_and_gray() -> None:
    s = survival_summary(cohort())
    pfs_mrd = next(g for g in s["subgroups"] if g["name"] == "mrd" and g["endpoint"] == "pfs")
    assert set(pfs_mrd["groups"]) == {"negative", "positive"}  # unknown MRD left out
    assert pfs_mrd["groups"]["positive"]["at_1y"]["estimate"] == 1.0
    assert pfs_mrd["groups"]["positive"]["n"] + pfs_mrd["groups"]["negative"]["n"] == 17
    mrd_rows = [(sub.outcome, sub.groups["mrd"]) for sub in cohort() if sub.groups["mrd"] is not None]
    times = [(o.death_date or o.last_known_alive) - HCT for o, _ in mrd_rows]
    direct = logrank_test(
        [t.days for t in times], [o.death_date is not None for o, _ in mrd_rows], [g for _, g in mrd_rows]
    )
    assert pfs_mrd["logrank_p"] == pytest.approx(direct.p_value, abs=1e-6)
    nrm_cond = next(g for g in s["subgroups"] if g["name"] == "conditioning" and g["endpoint"] == "nrm")
    assert nrm_cond["test"] == "gray" and 0 <= nrm_cond["gray_p"] <= 1


def test_first_dose_origin_excludes_undosed_patients() -> None:
    subjects = cohort() + [SurvivalSubject(PatientOutcome("NODOSE", HCT, None, None, None, day(500)), {})]
    s = survival_summary(subjects, origin="first_dose")
    assert s["os"]["origin"] == "first_dose" and s["os"]["excluded"] == ["NODOSE"] and s["os"]["n"] == 18
    assert survival_summary(subjects)["os"]["n"] == 19


def test_empty_trial() -> None:
    s = survival_summary([])
    assert s["os"]["n"] == 0 and s["os"]["at_1y"] is None and s["subgroups"] == []


def test_contradictory_dates_are_listed_not_fatal() -> None:
    bad = SurvivalSubject(PatientOutcome("BAD", HCT, day(70), day(50), None, day(400)), {})  # relapse before dose
    s = survival_summary([*cohort(), bad])
    assert s["os"]["n"] == 18 and s["data_problems"][0]["subject_id"] == "BAD"
    assert "before the origin" in s["data_problems"][0]["problem"]
