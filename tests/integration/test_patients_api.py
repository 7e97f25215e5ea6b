"""Patients API: screenings, transplant, consent, enrolment, assessments and
patient events (docs/api.md), through the same services as the screens."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.tokens import token_issue
from patients.models import Assessment, PatientEvent, Screening
from tests.factories import (
    AssessmentFactory,
    DoseLevelFactory,
    PatientEventFactory,
    PatientFactory,
    ProtocolVersionFactory,
    ScreeningFactory,
    TransplantFactory,
)
from tests.integration.test_patients_services import open_slots

D = datetime.date
JSON = "application/json"
SCREEN = {
    "date": "2024-03-01",
    "lab_date": "2024-02-28",
    "platelets_10e9_l": 133,
    "anc_10e9_l": 2.1,
    "agvhd_grade": 0,
    "liver_gvhd": False,
    "sos_history": False,
}


@pytest.fixture
def api(client):  # type: ignore[no-untyped-def]
    def as_user(user):  # type: ignore[no-untyped-def]
        _, key = token_issue(user=user, name="test")
        client.defaults["HTTP_AUTHORIZATION"] = f"Token {key}"
        return client

    return as_user


@pytest.fixture
def patient(world):  # type: ignore[no-untyped-def]
    p = PatientFactory(site=world["site_a"], trial=world["trial"], diagnosis="b_all", cd22_positive=True)
    TransplantFactory(patient=p, date=D(2024, 1, 10))
    return p


def test_register_with_disease_fields_and_read_transplant(world, api):  # type: ignore[no-untyped-def]
    client = api(world["coordinator_a"])
    body = {
        "trial": "TRIAL-T",
        "site": "SA",
        "subject_id": "SA-010",
        "sex": "male",
        "birth_year": 1960,
        "diagnosis": "cml_lymphoid_blast",
        "ph_positive": True,
        "prior_blinatumomab": True,
        "hct_ci": 3,
    }
    response = client.post("/api/v1/patients/", body, content_type=JSON)
    assert response.status_code == 201, response.json()
    pid = response.json()["id"]
    assert response.json()["transplant"] is None
    transplant = {"date": "2024-01-10", "disease_status": "cr1", "conditioning": "nma", "mrd_after": True}
    response = client.post(f"/api/v1/patients/{pid}/transplant/", transplant, content_type=JSON)
    assert response.status_code == 201, response.json()
    detail = client.get(f"/api/v1/patients/{pid}/").json()
    assert detail["diagnosis"] == "cml_lymphoid_blast" and detail["hct_ci"] == 3
    assert detail["transplant"]["conditioning"] == "nma" and detail["transplant"]["mrd_after"] is True
    stale = client.patch(
        f"/api/v1/patients/{pid}/transplant/", {"conditioning": "ric", "reason_for_change": "x"}, content_type=JSON
    )
    assert stale.status_code == 400 and "version" in stale.json()["errors"]
    ok = client.patch(
        f"/api/v1/patients/{pid}/transplant/",
        {"conditioning": "ric", "reason_for_change": "source document"},
        content_type=JSON,
        HTTP_IF_MATCH='"1"',
    )
    assert ok.status_code == 200 and ok.json()["conditioning"] == "ric" and ok["ETag"] == '"2"'


def test_screenings_list_and_create_with_criteria(world, api, patient):  # type: ignore[no-untyped-def]
    client = api(world["coordinator_a"])
    url = f"/api/v1/patients/{patient.pk}/screenings/"
    response = client.post(url, SCREEN, content_type=JSON)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["result"] == "incomplete"  # no consent recorded: age is missing, not passed
    age = next(c for c in body["criteria"] if c["key"] == "age")
    assert age["status"] == "missing" and "consent date not recorded" in age["reason"]
    listed = client.get(url).json()
    assert [s["id"] for s in listed] == [body["id"]] and len(listed[0]["criteria"]) == 8


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"platelets_10e9_l": 50000}, "platelets_10e9_l", "did you mean 50 x10^9/L?"),
        ({"platelets_10e9_l": -3}, "platelets_10e9_l", "cannot be negative"),
        ({"date": "2024-01-01", "lab_date": None}, "date", "before the HCT date"),
        ({"date": "2099-01-01"}, "date", "is in the future"),
        ({"agvhd_grade": 7}, "agvhd_grade", "0 (none) to 4"),
    ],
)
def test_screening_bad_input(world, api, patient, overrides, field, text):  # type: ignore[no-untyped-def]
    response = api(world["coordinator_a"]).post(
        f"/api/v1/patients/{patient.pk}/screenings/", {**SCREEN, **overrides}, content_type=JSON
    )
    assert response.status_code == 400
    assert text in " ".join(response.json()["errors"][field])
    assert not Screening.objects.exists()


def test_consent_and_enrol(world, api, patient):  # type: ignore[no-untyped-def]
    client = api(world["coordinator_a"])
    ProtocolVersionFactory(trial=world["trial"], version="1", effective=D(2017, 7, 1))
    DoseLevelFactory(trial=world["trial"], level=1)
    DoseLevelFactory(trial=world["trial"], level=2)
    open_slots(world["trial"], {2: 3})
    url = f"/api/v1/patients/{patient.pk}/"
    assert client.post(url + "consents/", {"protocol_version": "9", "date": "2024-02-20"}, content_type=JSON).json()[
        "errors"
    ] == {"protocol_version": ["No such protocol version."]}
    consent = client.post(url + "consents/", {"protocol_version": "1", "date": "2024-02-20"}, content_type=JSON)
    assert consent.status_code == 201 and consent.json()["protocol_version"] == "1"
    assert client.post(url + "screenings/", SCREEN, content_type=JSON).json()["result"] == "eligible"
    refused = client.post(
        url + "enrol/", {"enrolled_on": "2024-03-02", "dose_level": 1, "version": 1}, content_type=JSON
    )
    assert refused.status_code == 403  # a coordinator cannot choose the level
    enrolled = client.post(url + "enrol/", {"enrolled_on": "2024-03-02", "version": 1}, content_type=JSON)
    assert enrolled.status_code == 200, enrolled.json()
    assert enrolled.json()["dose_level"] == 2 and enrolled.json()["enrolled_on"] == "2024-03-02"
    again = client.post(url + "enrol/", {"enrolled_on": "2024-03-03", "version": 2}, content_type=JSON)
    assert again.status_code == 400 and "was enrolled on 2024-03-02" in again.json()["errors"]["enrolled_on"][0]


def test_assessments_create_filter_and_edit(world, api, patient):  # type: ignore[no-untyped-def]
    client = api(world["coordinator_a"])
    other = PatientFactory(site=world["site_a"], trial=world["trial"])
    AssessmentFactory(patient=other)
    response = client.post(
        "/api/v1/assessments/",
        {"patient": patient.pk, "kind": "mrd", "date": "2024-04-01", "method": "pcr", "result": "negative"},
        content_type=JSON,
    )
    assert response.status_code == 201, response.json()
    aid = response.json()["id"]
    listed = client.get(f"/api/v1/assessments/?patient={patient.pk}").json()
    assert [a["id"] for a in listed["results"]] == [aid]
    no_reason = client.patch(f"/api/v1/assessments/{aid}/", {"result": "positive", "version": 1}, content_type=JSON)
    assert no_reason.status_code == 400 and "reason_for_change" in no_reason.json()["errors"]
    ok = client.patch(
        f"/api/v1/assessments/{aid}/",
        {"result": "positive", "reason_for_change": "lab report corrected"},
        content_type=JSON,
        HTTP_IF_MATCH='"1"',
    )
    assert ok.status_code == 200 and ok.json()["result"] == "positive" and ok.json()["version"] == 2
    bad = client.post(
        "/api/v1/assessments/",
        {"patient": patient.pk, "kind": "scan", "date": "2024-04-01"},
        content_type=JSON,
    )
    assert bad.status_code == 400 and "kind" in bad.json()["errors"]
    assert Assessment.objects.count() == 2


def test_patient_events_rules(world, api, patient):  # type: ignore[no-untyped-def]
    client = api(world["coordinator_a"])
    death = {"patient": patient.pk, "kind": "death", "date": "2024-06-01", "cause": "infection"}
    assert client.post("/api/v1/patient-events/", death, content_type=JSON).status_code == 201
    second = client.post("/api/v1/patient-events/", {**death, "date": "2024-06-02"}, content_type=JSON)
    assert second.status_code == 400 and "already recorded" in second.json()["errors"]["kind"][0]
    relapse = {"patient": patient.pk, "kind": "relapse", "date": "2024-07-01"}
    late = client.post("/api/v1/patient-events/", relapse, content_type=JSON)
    assert late.status_code == 400 and "after death" in late.json()["errors"]["date"][0]
    listed = client.get(f"/api/v1/patient-events/?patient={patient.pk}").json()
    assert [e["kind"] for e in listed["results"]] == ["death"]
    assert PatientEvent.objects.count() == 1


def test_out_of_scope_patient_is_404_for_records(world, api, patient):  # type: ignore[no-untyped-def]
    client = api(world["coordinator_b"])
    event = {"patient": patient.pk, "kind": "last_contact", "date": "2024-06-01"}
    assert client.post("/api/v1/patient-events/", event, content_type=JSON).status_code == 404
    assert client.get(f"/api/v1/patients/{patient.pk}/screenings/").status_code == 404
    assert client.get(f"/api/v1/assessments/?patient={patient.pk}").json()["count"] == 0


def _populate(world, n):  # type: ignore[no-untyped-def]
    for _ in range(n):
        p = PatientFactory(site=world["site_a"], trial=world["trial"])
        TransplantFactory(patient=p)
        ScreeningFactory(patient=p)
        AssessmentFactory(patient=p)
        PatientEventFactory(patient=p)


@pytest.mark.parametrize("url", ["/api/v1/patients/", "/api/v1/assessments/", "/api/v1/patient-events/"])
def test_api_lists_cost_a_fixed_number_of_queries(world, api, django_assert_num_queries, url):  # type: ignore[no-untyped-def]
    client = api(world["investigator"])
    _populate(world, 3)
    client.get(url)  # warm-up: the token's first use is recorded once
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).json()["count"] == 3
    _populate(world, 27)
    with django_assert_num_queries(len(few.captured_queries)):
        assert client.get(url).json()["count"] == 30


def test_screenings_list_fixed_queries(world, api, patient, django_assert_num_queries):  # type: ignore[no-untyped-def]
    client = api(world["coordinator_a"])
    url = f"/api/v1/patients/{patient.pk}/screenings/"
    ScreeningFactory(patient=patient)
    client.get(url)  # warm-up: the token's first use is recorded once
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(20):
        ScreeningFactory(patient=patient)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(client.get(url).json()) == 21
