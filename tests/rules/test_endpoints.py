"""Worked examples for analysis.endpoints (PROTOCOL section 8)."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from analysis.endpoints import (
    CENSORED,
    COMPETING,
    EVENT,
    EndpointTime,
    PatientOutcome,
    endpoint_data,
    nrm_time,
    os_time,
    outcome_date_problems,
    pfs_time,
)
from analysis.survival import (
    cumulative_incidence,
    incidence_at,
    kaplan_meier,
    survival_at,
)

HCT = date(2020, 1, 1)


def day(n: int) -> date:
    """Day n after HCT (day 0 = HCT)."""
    return HCT + timedelta(days=n)


def patient(
    first_dose: int | None = 50,
    relapse: int | None = None,
    death: int | None = None,
    alive: int | None = None,
) -> PatientOutcome:
    return PatientOutcome(
        subject_id="UHC-001",
        hct_date=HCT,
        first_dose_date=None if first_dose is None else day(first_dose),
        relapse_date=None if relapse is None else day(relapse),
        death_date=None if death is None else day(death),
        last_known_alive=None if alive is None else day(alive),
    )


T = EndpointTime
# Each row: the patient (days after HCT), the cutoff (days after HCT or None), then
# OS from HCT, OS from first dose, PFS from HCT, PFS from first dose, NRM.
EXAMPLES = [
    pytest.param(
        patient(alive=400),
        None,
        T(400, CENSORED),
        T(350, CENSORED),
        T(400, CENSORED),
        T(350, CENSORED),
        T(350, CENSORED),
        id="alive, no event: censored at last known alive",
    ),
    pytest.param(
        patient(relapse=213, death=300),
        None,
        T(300, EVENT),
        T(250, EVENT),
        T(213, EVENT),
        T(163, EVENT),
        T(163, COMPETING),
        id="relapse then death: PFS at relapse, NRM competing relapse",
    ),
    pytest.param(
        patient(death=150, alive=140),
        None,
        T(150, EVENT),
        T(100, EVENT),
        T(150, EVENT),
        T(100, EVENT),
        T(100, EVENT),
        id="death without relapse (GVHD): an NRM event",
    ),
    pytest.param(
        patient(relapse=200, death=200),
        None,
        T(200, EVENT),
        T(150, EVENT),
        T(200, EVENT),
        T(150, EVENT),
        T(150, COMPETING),
        id="relapse and death on the same day: relapse then death",
    ),
    pytest.param(
        patient(relapse=213, alive=180),
        None,
        T(213, CENSORED),
        T(163, CENSORED),
        T(213, EVENT),
        T(163, EVENT),
        T(163, COMPETING),
        id="relapse after the last contact date: alive at relapse, OS censored there",
    ),
    pytest.param(
        patient(relapse=213, alive=500),
        None,
        T(500, CENSORED),
        T(450, CENSORED),
        T(213, EVENT),
        T(163, EVENT),
        T(163, COMPETING),
        id="relapse, alive later: OS censored at last known alive",
    ),
    pytest.param(
        patient(),
        None,
        T(50, CENSORED),
        T(0, CENSORED),
        T(50, CENSORED),
        T(0, CENSORED),
        T(0, CENSORED),
        id="no contact after first dose: censored at the first dose",
    ),
    pytest.param(
        patient(first_dose=None, alive=90),
        None,
        T(90, CENSORED),
        None,
        T(90, CENSORED),
        None,
        None,
        id="no first dose: excluded from first-dose endpoints",
    ),
    pytest.param(
        patient(first_dose=None, death=70),
        None,
        T(70, EVENT),
        None,
        T(70, EVENT),
        None,
        None,
        id="died before any dose: HCT-origin events only",
    ),
    pytest.param(
        patient(relapse=213, death=300, alive=290),
        250,
        T(250, CENSORED),
        T(200, CENSORED),
        T(213, EVENT),
        T(163, EVENT),
        T(163, COMPETING),
        id="cutoff between relapse and death: death unknown, OS censored at cutoff",
    ),
    pytest.param(
        patient(relapse=213, death=300),
        200,
        T(200, CENSORED),
        T(150, CENSORED),
        T(200, CENSORED),
        T(150, CENSORED),
        T(150, CENSORED),
        id="cutoff before any event: all censored at the cutoff",
    ),
    pytest.param(
        patient(alive=120),
        365,
        T(120, CENSORED),
        T(70, CENSORED),
        T(120, CENSORED),
        T(70, CENSORED),
        T(70, CENSORED),
        id="cutoff after last contact: censored at last contact, not the cutoff",
    ),
    pytest.param(
        patient(first_dose=60, alive=100),
        45,
        T(45, CENSORED),
        None,
        T(45, CENSORED),
        None,
        None,
        id="cutoff before the first dose: not yet in first-dose endpoints",
    ),
]


@pytest.mark.parametrize(("p", "cutoff", "os_hct", "os_dose", "pfs_hct", "pfs_dose", "nrm"), EXAMPLES)
def test_worked_examples(
    p: PatientOutcome,
    cutoff: int | None,
    os_hct: EndpointTime | None,
    os_dose: EndpointTime | None,
    pfs_hct: EndpointTime | None,
    pfs_dose: EndpointTime | None,
    nrm: EndpointTime | None,
) -> None:
    as_of = None if cutoff is None else day(cutoff)
    assert os_time(p, "hct", as_of) == os_hct
    assert os_time(p, "first_dose", as_of) == os_dose
    assert pfs_time(p, "hct", as_of) == pfs_hct
    assert pfs_time(p, "first_dose", as_of) == pfs_dose
    assert nrm_time(p, as_of) == nrm


def test_origin_defaults_to_hct() -> None:
    p = patient(death=150)
    assert os_time(p) == os_time(p, "hct") == T(150, EVENT)
    assert pfs_time(p) == pfs_time(p, "hct")


def test_cutoff_before_hct_excludes_everything() -> None:
    p = patient(alive=10)
    as_of = day(-1)
    assert (
        os_time(p, "hct", as_of),
        pfs_time(p, "hct", as_of),
        nrm_time(p, as_of),
    ) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("p", "problem"),
    [
        (patient(relapse=300, death=200), "relapse .* is after death"),
        (patient(death=200, alive=250), "last known alive .* is after death"),
        (patient(first_dose=-5), "first dose date .* is before the HCT date"),
        (patient(death=-1), "death date .* is before the HCT date"),
        (patient(alive=-1), "last known alive date .* is before the HCT date"),
    ],
)
def test_inconsistent_dates_are_listed_and_refused(p: PatientOutcome, problem: str) -> None:
    assert any(re.search(problem, m) for m in outcome_date_problems(p))
    with pytest.raises(ValueError, match=problem):
        os_time(p)


@pytest.mark.parametrize("endpoint", ["pfs_first_dose", "nrm"])
def test_relapse_before_first_dose_is_refused(endpoint: str) -> None:
    p = patient(first_dose=50, relapse=40, alive=100)
    assert outcome_date_problems(p) == ()
    # From HCT the relapse is an ordinary PFS event; from the first dose it would be
    # a negative time, which is a data error.
    assert pfs_time(p, "hct") == T(40, EVENT)
    with pytest.raises(ValueError, match="before the origin"):
        if endpoint == "nrm":
            nrm_time(p)
        else:
            pfs_time(p, "first_dose")


def test_consistent_patient_has_no_problems() -> None:
    assert outcome_date_problems(patient(relapse=200, death=200, alive=200)) == ()


def test_endpoint_data_keeps_order_and_lists_exclusions() -> None:
    patients = [
        PatientOutcome("A", HCT, day(50), None, None, day(400)),
        PatientOutcome("B", HCT, None, None, day(70), None),
        PatientOutcome("C", HCT, day(45), day(100), day(120), None),
    ]
    nrm = endpoint_data(patients, "nrm", origin="hct")
    assert (nrm.endpoint, nrm.origin) == (
        "nrm",
        "first_dose",
    )  # NRM is always from dose
    assert nrm.subject_ids == ("A", "C")
    assert (nrm.times_days, nrm.statuses) == ((350, 55), (CENSORED, COMPETING))
    assert nrm.excluded == ("B",)
    os_hct = endpoint_data(patients, "os")
    assert os_hct.subject_ids == ("A", "B", "C") and os_hct.excluded == ()
    assert (os_hct.times_days, os_hct.statuses) == ((400, 70, 120), (0, 1, 1))
    pfs_dose = endpoint_data(patients, "pfs", "first_dose", as_of=day(110))
    assert pfs_dose.subject_ids == ("A", "C") and pfs_dose.excluded == ("B",)
    assert (pfs_dose.times_days, pfs_dose.statuses) == ((60, 55), (0, 1))


def test_endpoint_data_rejects_unknown_endpoint() -> None:
    with pytest.raises(ValueError, match="unknown endpoint"):
        endpoint_data([patient()], "dfs")  # type: ignore[arg-type]


def test_paper_figures_from_an_eighteen_patient_cohort() -> None:
    # PROTOCOL 8: 1-year PFS 89% (16/18: one relapse at 7 months, one GVHD death),
    # OS 94% (17/18), NRM 5.6% (1/18). Everyone else followed beyond 1 year.
    cohort = [PatientOutcome(f"P{i:02d}", HCT, day(50), None, None, day(400 + 30 * i)) for i in range(16)]
    cohort.append(PatientOutcome("REL", HCT, day(55), day(213), None, day(600)))
    cohort.append(PatientOutcome("GVHD", HCT, day(48), None, day(180), day(170)))
    year = 365.25

    pfs = endpoint_data(cohort, "pfs")
    at_1y = survival_at(kaplan_meier(pfs.times_days, pfs.statuses), year)
    assert at_1y is not None and at_1y.estimate == pytest.approx(16 / 18)
    os_ = endpoint_data(cohort, "os")
    at_1y = survival_at(kaplan_meier(os_.times_days, os_.statuses), year)
    assert at_1y is not None and at_1y.estimate == pytest.approx(17 / 18)
    nrm = endpoint_data(cohort, "nrm")
    assert sorted(nrm.statuses) == [0] * 16 + [1, 2]
    nrm_1y = incidence_at(cumulative_incidence(nrm.times_days, nrm.statuses, 1), year)
    assert nrm_1y is not None and nrm_1y.estimate == pytest.approx(1 / 18)
