"""The safety API: adverse-events, dlt-adjudications, ae-summary (docs/api.md)."""

import datetime

import pytest

from core.tokens import token_issue
from safety import services
from safety.models import AdverseEvent, DltAdjudication
from tests.factories import PASSWORD
from tests.integration.test_safety_services import NAUSEA, PLATELETS, SOS, ae_data, make_patient


@pytest.fixture
def api(client):  # type: ignore[no-untyped-def]
    def as_user(user):  # type: ignore[no-untyped-def]
        _, key = token_issue(user=user, name="test")
        client.defaults["HTTP_AUTHORIZATION"] = f"Token {key}"
        return client

    return as_user


def ae_body(patient, **overrides):  # type: ignore[no-untyped-def]
    body = {"patient": patient.pk, "meddra_code": NAUSEA, "grade": 2, "onset": "2024-04-10", "attribution": "possible"}
    body.update(overrides)
    return body


def test_create_read_and_follow_up(world, api):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    client = api(world["coordinator_a"])
    created = client.post("/api/v1/adverse-events/", ae_body(patient), content_type="application/json")
    assert created.status_code == 201, created.json()
    assert created["ETag"] == '"1"'
    body = created.json()
    assert body["term"] == "Nausea" and body["meddra_code"] == NAUSEA and body["subject_id"] == patient.subject_id
    url = f"/api/v1/adverse-events/{body['id']}/"
    no_reason = client.patch(url, {"resolved": "2024-04-20", "version": 1}, content_type="application/json")
    assert no_reason.status_code == 400 and "reason_for_change" in no_reason.json()["errors"]
    no_version = client.patch(
        url, {"resolved": "2024-04-20", "reason_for_change": "x"}, content_type="application/json"
    )
    assert no_version.status_code == 400 and "version" in no_version.json()["errors"]
    ok = client.patch(
        url, {"resolved": "2024-04-20", "reason_for_change": "resolved"}, content_type="application/json",
        HTTP_IF_MATCH='"1"',
    )  # fmt: skip
    assert ok.status_code == 200 and ok.json()["resolved"] == "2024-04-20" and ok["ETag"] == '"2"'
    stale = client.patch(url, {"grade": 3, "reason_for_change": "worse", "version": 1}, content_type="application/json")
    assert stale.status_code == 409
    assert AdverseEvent.objects.get().grade == 2


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"meddra_code": PLATELETS, "grade": 5}, "grade", "Grade 5 is not defined"),
        ({"meddra_code": SOS, "grade": 1}, "grade", "Grade 1 is not defined"),
        ({"resolved": "2024-04-01"}, "resolved", "before the onset"),
        ({"onset": "2024-03-01"}, "onset", "before the patient's consent"),
        ({"meddra_code": "99999999"}, "meddra_code", "No CTCAE"),
        ({"attribution": "maybe"}, "attribution", "not a valid choice"),
        ({"grade": 7}, "grade", "less than or equal to 5"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(world, api, overrides, field, text):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    response = api(world["coordinator_a"]).post(
        "/api/v1/adverse-events/", ae_body(patient, **overrides), content_type="application/json"
    )
    assert response.status_code == 400
    assert text in " ".join(response.json()["errors"][field])
    assert not AdverseEvent.objects.exists()


def test_ae_for_a_patient_of_another_site(world, api):  # type: ignore[no-untyped-def]
    patient_b = make_patient(world, "site_b")
    client = api(world["coordinator_a"])
    response = client.post("/api/v1/adverse-events/", ae_body(patient_b), content_type="application/json")
    assert response.status_code == 400 and "patient" in response.json()["errors"]
    services.ae_record(user=world["coordinator_b"], patient=patient_b, data=ae_data())
    ae = AdverseEvent.objects.get()
    assert client.get(f"/api/v1/adverse-events/{ae.pk}/").status_code == 404
    assert client.patch(
        f"/api/v1/adverse-events/{ae.pk}/", {"grade": 3, "reason_for_change": "x", "version": 1},
        content_type="application/json",
    ).status_code == 404  # fmt: skip
    assert client.get("/api/v1/adverse-events/").json()["count"] == 0


def test_list_filters_and_costs_a_fixed_number_of_queries(world, api, django_assert_max_num_queries):  # type: ignore[no-untyped-def]
    client = api(world["investigator"])
    patients = [make_patient(world) for _ in range(2)]
    for p in patients:
        services.ae_record(user=world["coordinator_a"], patient=p, data=ae_data())
    with django_assert_max_num_queries(8) as small:
        assert client.get("/api/v1/adverse-events/").json()["count"] == 2
    for _ in range(8):
        p = make_patient(world, "site_b")
        services.ae_record(user=world["coordinator_b"], patient=p, data=ae_data())
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get("/api/v1/adverse-events/").json()["count"] == 10
    assert client.get(f"/api/v1/adverse-events/?patient={patients[0].pk}").json()["count"] == 1
    assert client.get(f"/api/v1/adverse-events/?trial={world['trial'].pk}").json()["count"] == 10
    assert client.get(f"/api/v1/adverse-events/?trial={world['other'].pk}").json()["count"] == 0


def adjudication_body(patient, **overrides):  # type: ignore[no-untyped-def]
    body = {
        "patient": patient.pk,
        "rule": "non_hematologic_grade3_related",
        "event_date": "2024-04-10",
        "is_dlt": True,
        "rationale": "grade 3 related",
        "password": PASSWORD,
    }
    body.update(overrides)
    return body


def test_adjudication_is_created_signed_and_never_edited(world, api):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    ae = services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(grade=3))
    client = api(world["investigator"])
    wrong = client.post(
        "/api/v1/dlt-adjudications/", adjudication_body(patient, adverse_event=ae.pk, password="nope"),
        content_type="application/json",
    )  # fmt: skip
    assert wrong.status_code == 400 and "password" in wrong.json()["errors"]
    assert not DltAdjudication.objects.exists()
    created = client.post(
        "/api/v1/dlt-adjudications/", adjudication_body(patient, adverse_event=ae.pk), content_type="application/json"
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["signed_by"] and body["meaning"].startswith("DLT adjudication") and "password" not in body
    edit = client.patch(
        f"/api/v1/dlt-adjudications/{body['id']}/", {"is_dlt": False, "reason_for_change": "x", "version": 1},
        content_type="application/json",
    )  # fmt: skip
    assert edit.status_code == 400 and "cannot be edited" in str(edit.json())
    superseding = client.post(
        "/api/v1/dlt-adjudications/",
        adjudication_body(patient, adverse_event=ae.pk, is_dlt=False, supersedes=body["id"]),
        content_type="application/json",
    )
    assert superseding.status_code == 201
    listed = client.get(f"/api/v1/dlt-adjudications/?patient={patient.pk}").json()
    assert listed["count"] == 2
    assert {r["id"]: r["superseded_by"] for r in listed["results"]}[body["id"]] == superseding.json()["id"]


def test_coordinator_cannot_adjudicate(world, api):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    response = api(world["coordinator_a"]).post(
        "/api/v1/dlt-adjudications/", adjudication_body(patient), content_type="application/json"
    )
    assert response.status_code == 403
    assert not DltAdjudication.objects.exists()


def test_ae_summary_endpoint(world, api):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(grade=3))
    client = api(world["investigator"])
    body = client.get(f"/api/v1/trials/{world['trial'].pk}/ae-summary/").json()
    assert body["overall"]["patients_with_event"] == 1
    assert body["dose_levels"][0]["terms"][0] == {
        "term": "Nausea", "grade_1_2": 0, "grade_3_4": 1, "grade_5": 0, "any_grade": 1,
    }  # fmt: skip
    assert client.get(f"/api/v1/trials/{world['other'].pk}/ae-summary/").status_code == 404
    # A sponsor reads Table 2 as trial-wide counts (issue 19 item 6), never subject IDs.
    sponsor_view = api(world["sponsor"]).get(f"/api/v1/trials/{world['trial'].pk}/ae-summary/")
    assert sponsor_view.status_code == 200 and "SA-" not in sponsor_view.content.decode()


def test_schema_still_builds(world, api):  # type: ignore[no-untyped-def]
    response = api(world["investigator"]).get("/api/v1/schema/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "/api/v1/adverse-events/" in text and "/api/v1/dlt-adjudications/" in text


def test_dates_in_iso(world, api):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(resolved=datetime.date(2024, 4, 12)))
    row = api(world["investigator"]).get("/api/v1/adverse-events/").json()["results"][0]
    assert row["onset"] == "2024-04-10" and row["resolved"] == "2024-04-12"
    assert row["cycle"] == 1 and row["sae_due"] is None


def test_sae_clock_and_cycle_in_the_api(world, api):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    ae = services.ae_record(
        user=world["coordinator_a"],
        patient=patient,
        data=ae_data(onset=datetime.date(2024, 5, 1), serious=True, sae_hospitalisation=True),
    )
    client = api(world["investigator"])
    row = client.get("/api/v1/adverse-events/").json()["results"][0]
    one = client.get(f"/api/v1/adverse-events/{ae.pk}/").json()
    assert row["cycle"] == one["cycle"] == 2
    assert row["sae_late"] is False and row["sae_due"] == one["sae_due"]
    assert row["sae_due"].startswith((ae.created_at + datetime.timedelta(hours=24)).date().isoformat())
