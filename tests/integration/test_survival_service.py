"""Survival summaries computed from the database and served by the API."""

import datetime

import pytest

from analysis.services import computation_run
from analysis.survival import kaplan_meier, survival_at
from core.tokens import token_issue
from tests.factories import CycleFactory, PatientEventFactory, PatientFactory, TransplantFactory
from trial.models import TrialComputation
from trial.services import computation_request

SURV = TrialComputation.Kind.SURVIVAL
HCT = datetime.date(2023, 1, 10)


def _patient(world, n, *, death=None, relapse=None, alive=None, dosed=True, mrd=False, site="site_a"):  # type: ignore[no-untyped-def]
    patient = PatientFactory(site=world[site], trial=world["trial"], enrolled_on=HCT + datetime.timedelta(days=60))
    TransplantFactory(patient=patient, date=HCT, mrd_before=mrd, mrd_after=False)
    if dosed:
        CycleFactory(patient=patient, number=1, day1=HCT + datetime.timedelta(days=70 + n))
    for kind, days in (("relapse", relapse), ("death", death), ("last_contact", alive)):
        if days is not None:
            PatientEventFactory(patient=patient, kind=kind, date=HCT + datetime.timedelta(days=days))
    return patient


def test_survival_from_the_database(world, client):  # type: ignore[no-untyped-def]
    _patient(world, 0, alive=500)
    _patient(world, 1, alive=450, mrd=True)
    _patient(world, 2, death=200, alive=190)
    _patient(world, 3, relapse=300, alive=420, site="site_b")
    _patient(world, 4, alive=480, dosed=False)
    computation_request(world["trial"].pk, SURV)
    data = computation_run(world["trial"].pk, SURV).data
    assert (data["os"]["n"], data["os"]["events"], data["pfs"]["events"]) == (5, 1, 2)
    expected = survival_at(kaplan_meier([500, 450, 200, 420, 480], [0, 0, 1, 0, 0]), 365.25)
    assert data["os"]["at_1y"]["estimate"] == pytest.approx(expected.estimate)
    assert data["os"]["at_1y"]["lower"] == pytest.approx(expected.lower, abs=1e-6)
    assert data["nrm"]["n"] == 4 and data["nrm"]["excluded"]  # the undosed patient has no NRM origin
    assert (data["nrm"]["events"], data["nrm"]["competing_events"]) == (1, 1)

    _, key = token_issue(user=world["coordinator_a"], name="t")
    served = client.get(f"/api/v1/trials/{world['trial'].pk}/survival/", HTTP_AUTHORIZATION=f"Token {key}").json()
    assert served["stale"] is False and served["os"]["n"] == 5 and "excluded" not in served["os"]


def test_event_changes_make_it_stale_until_recomputed(world):  # type: ignore[no-untyped-def]
    _patient(world, 0, alive=500)
    computation_request(world["trial"].pk, SURV)
    computation_run(world["trial"].pk, SURV)
    computation_request(world["trial"].pk, SURV)
    assert TrialComputation.objects.get(trial=world["trial"], kind=SURV).stale
