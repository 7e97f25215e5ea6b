"""Escalation computed from the database, signed by an investigator, served by the API."""

import datetime
from decimal import Decimal

import pytest

from analysis.services import computation_run
from core.models import Signature
from core.signatures import signatures_for
from core.tokens import token_issue
from tests.factories import PASSWORD, CycleFactory, DltAdjudicationFactory, DoseLevelFactory, PatientFactory
from trial.models import EscalationSignoff, TrialComputation
from trial.selectors import escalation_open_slots
from trial.services import computation_request

ESC = TrialComputation.Kind.ESCALATION


@pytest.fixture
def levels(world):  # type: ignore[no-untyped-def]
    return [
        DoseLevelFactory(trial=world["trial"], level=n, dose_mg_m2=Decimal(dose))
        for n, dose in ((1, "0.3"), (2, "0.4"), (3, "0.5"), (4, "0.6"))
    ]


def _treated(world, level, n, start=datetime.date(2024, 1, 1), site="site_a"):  # type: ignore[no-untyped-def]
    """A patient enrolled at ``level`` with both DLT-window doses given long ago."""
    patient = PatientFactory(site=world[site], trial=world["trial"], dose_level=level, enrolled_on=start)
    for number, offset in ((1, 0), (2, 28)):
        CycleFactory(
            patient=patient,
            number=number,
            dose_level=level,
            due_date=start,
            day1=start + datetime.timedelta(days=offset + n),
        )
    return patient


def _state(world):  # type: ignore[no-untyped-def]
    computation_request(world["trial"].pk, ESC)
    return computation_run(world["trial"].pk, ESC).data


def _api(client, user):  # type: ignore[no-untyped-def]
    _, key = token_issue(user=user, name="t")
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {key}"
    return client


def test_empty_trial_opens_three_slots_at_level_1(world, levels):  # type: ignore[no-untyped-def]
    state = _state(world)
    assert state["decision"] == "enroll" and state["open_slots"] == [{"dose_level": 1, "slots": 3}]
    assert escalation_open_slots(world["trial"]) == {1: 3}


def test_three_without_dlt_await_signed_escalation(world, levels, client, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    for i in range(3):
        _treated(world, levels[0], i)
    state = _state(world)
    assert state["decision"] == "escalate" and state["awaiting_signoff"] == {"decision": "escalate", "dose_level": 2}
    assert state["open_slots"] == [] and escalation_open_slots(world["trial"]) == {}
    assert state["cohorts"][0] == {
        "dose_level": 1, "dose_mg_m2": 0.3, "enrolled": 3, "evaluable": 3, "non_evaluable": 0, "pending": 0, "dlts": 0,
        "backfill": 0,
    }  # fmt: skip

    api = _api(client, world["investigator"])
    url = f"/api/v1/trials/{world['trial'].pk}/escalation/sign/"
    body = {"decision": "escalate", "dose_level": 2, "rationale": "SRC meeting 12", "password": "wrong"}
    response = api.post(url, body, content_type="application/json")
    assert response.status_code == 400 and "password" in response.json()["errors"]
    assert not EscalationSignoff.objects.exists()

    stale = api.post(url, {**body, "dose_level": 3, "password": PASSWORD}, content_type="application/json")
    assert stale.status_code == 400 and "changed" in stale.json()["errors"]["decision"][0]

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(url, {**body, "password": PASSWORD}, content_type="application/json")
    assert response.status_code == 201, response.json()
    signoff = EscalationSignoff.objects.get()
    [(signature, check)] = signatures_for(signoff)
    assert signature.meaning == Signature.Meaning.ESCALATION and check.status == "valid"
    assert signoff.signed_by_name == world["investigator"].get_full_name()

    served = api.get(f"/api/v1/trials/{world['trial'].pk}/escalation/").json()
    assert served["stale"] is False and served["open_slots"] == [{"dose_level": 2, "slots": 3}]
    assert (
        served["history"][0]["decision"] == "escalate" and served["history"][0]["signed_by"] == signoff.signed_by_name
    )
    assert escalation_open_slots(world["trial"]) == {2: 3}


def test_confirmed_dlt_expands_the_cohort(world, levels):  # type: ignore[no-untyped-def]
    patients = [_treated(world, levels[0], i) for i in range(3)]
    DltAdjudicationFactory(  # a historic signed adjudication (as a bundle import carries it)
        patient=patients[0], is_dlt=True, rule="investigator", event_date=datetime.date(2024, 1, 10),
        signed_by_name="Dr Historic", signed_on=datetime.date(2024, 1, 20),
    )  # fmt: skip
    state = _state(world)
    assert state["decision"] == "expand" and state["cohorts"][0]["dlts"] == 1


def test_coordinator_sees_counts_not_other_sites_subject_ids(world, levels, client):  # type: ignore[no-untyped-def]
    _treated(world, levels[0], 0, site="site_b")
    _state(world)
    coordinator = _api(client, world["coordinator_a"]).get(f"/api/v1/trials/{world['trial'].pk}/escalation/").json()
    assert "patients" not in coordinator and coordinator["cohorts"][0]["enrolled"] == 1
    investigator = _api(client, world["investigator"]).get(f"/api/v1/trials/{world['trial'].pk}/escalation/").json()
    assert [p["subject_id"] for p in investigator["patients"]] == [
        "SB-" + investigator["patients"][0]["subject_id"][3:]
    ]


def test_coordinator_cannot_sign(world, levels, client):  # type: ignore[no-untyped-def]
    for i in range(3):
        _treated(world, levels[0], i)
    _state(world)
    api = _api(client, world["coordinator_a"])
    body = {"decision": "escalate", "dose_level": 2, "rationale": "x", "password": PASSWORD}
    assert (
        api.post(
            f"/api/v1/trials/{world['trial'].pk}/escalation/sign/", body, content_type="application/json"
        ).status_code
        == 403
    )
    assert not EscalationSignoff.objects.exists()


def test_stale_state_cannot_be_signed(world, levels, client):  # type: ignore[no-untyped-def]
    for i in range(3):
        _treated(world, levels[0], i)
    _state(world)
    computation_request(world["trial"].pk, ESC)  # new data arrived; not yet recomputed
    api = _api(client, world["investigator"])
    body = {"decision": "escalate", "dose_level": 2, "rationale": "x", "password": PASSWORD}
    response = api.post(f"/api/v1/trials/{world['trial'].pk}/escalation/sign/", body, content_type="application/json")
    assert response.status_code == 400 and "recomputed" in response.json()["errors"]["decision"][0]
    assert api.get(f"/api/v1/trials/{world['trial'].pk}/escalation/").json()["stale"] is True


def test_operating_characteristics_endpoint(world, client):  # type: ignore[no-untyped-def]
    api = _api(client, world["investigator"])
    body = api.get("/api/v1/operating-characteristics/?p=0.1,0.2,0.3,0.4&variant=storer_a").json()
    assert body["exact"]["prob_no_mtd"] == pytest.approx(0.0939, abs=1e-4)
    assert body["exact"]["expected_patients"] == pytest.approx(11.631, abs=1e-3)
    bad = api.get("/api/v1/operating-characteristics/?p=0.1,abc")
    assert bad.status_code == 400 and "p" in bad.json()["errors"]
    assert api.get("/api/v1/operating-characteristics/?p=0.2&variant=nope").json()["errors"]["variant"]
