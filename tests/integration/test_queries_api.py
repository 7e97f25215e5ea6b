"""The queries/ API (issue 12): monitors raise, list with filters, read threads and close;
coordinators answer with a correction; scope and roles as on the screens."""

import datetime

import pytest

from cleaning.models import DataQuery
from core.tokens import token_issue
from patients import services as patient_services
from safety.models import AdverseEvent
from tests.factories import PASSWORD, AdverseEventFactory, ConsentFactory, PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client):  # type: ignore[no-untyped-def]
    def _as(user):  # type: ignore[no-untyped-def]
        _, key = token_issue(user=user, name="test")
        headers = {"HTTP_AUTHORIZATION": f"Token {key}"}

        class Api:
            def get(self, url, **params):  # type: ignore[no-untyped-def]
                return client.get(url, params, **headers)

            def post(self, url, body):  # type: ignore[no-untyped-def]
                return client.post(url, body, content_type="application/json", **headers)

        return Api()

    return _as


@pytest.fixture
def ae(world):  # type: ignore[no-untyped-def]
    patient = PatientFactory(site=world["site_a"], trial=world["trial"], subject_id="SA-001")
    ConsentFactory(patient=patient, date=datetime.date(2024, 3, 1))
    return AdverseEventFactory(patient=patient, grade=3)


def _raise(api, world, ae, field="grade"):  # type: ignore[no-untyped-def]
    return api(world["monitor"]).post(
        "/api/v1/queries/",
        {"target_type": "safety.adverseevent", "target_id": ae.pk, "field_name": field, "question": "Grade 2?"},
    )


def test_monitor_raises_coordinator_corrects_monitor_closes(api, world, ae):  # type: ignore[no-untyped-def]
    response = _raise(api, world, ae)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "open" and body["target_type"] == "safety.adverseevent" and body["target_id"] == ae.pk
    assert body["subject_id"] == "SA-001" and [m["kind"] for m in body["messages"]] == ["question"]
    query_id = body["id"]

    response = api(world["coordinator_a"]).post(
        f"/api/v1/queries/{query_id}/answer/",
        {"text": "Typo.", "correction": {"grade": 2}, "reason": "transcription error"},
    )
    assert response.status_code == 200, response.json()
    correction = response.json()["messages"][-1]
    assert correction["kind"] == "correction" and correction["new_value"] == "2"
    history = AdverseEvent.history.get(history_id=correction["target_history_id"])
    assert history.history_change_reason == f"Query #{query_id}: transcription error"

    response = api(world["monitor"]).post(f"/api/v1/queries/{query_id}/close/", {"note": "Thanks."})
    assert response.status_code == 200 and response.json()["state"] == "closed"
    response = api(world["monitor"]).post(f"/api/v1/queries/{query_id}/reopen/", {"text": "Not yet."})
    assert response.status_code == 200 and response.json()["state"] == "open"


def test_list_filters_and_scope(api, world, ae):  # type: ignore[no-untyped-def]
    other = AdverseEventFactory(patient=PatientFactory(site=world["site_b"], trial=world["trial"]))
    _raise(api, world, ae)
    _raise(api, world, other)
    monitor = api(world["monitor"])
    assert monitor.get("/api/v1/queries/").json()["count"] == 2
    assert monitor.get("/api/v1/queries/", site=world["site_b"].pk).json()["count"] == 1
    assert monitor.get("/api/v1/queries/", patient=ae.patient_id).json()["count"] == 1
    assert monitor.get("/api/v1/queries/", state="closed").json()["count"] == 0
    assert monitor.get("/api/v1/queries/", origin="manual").json()["count"] == 2
    assert monitor.get("/api/v1/queries/", state="nonsense").status_code == 400
    coordinator = api(world["coordinator_a"])
    rows = coordinator.get("/api/v1/queries/").json()["results"]
    assert [r["subject_id"] for r in rows] == ["SA-001"]
    hidden = DataQuery.objects.get(patient=other.patient)
    assert coordinator.get(f"/api/v1/queries/{hidden.pk}/").status_code == 404
    assert coordinator.post(f"/api/v1/queries/{hidden.pk}/answer/", {"text": "x"}).status_code == 404


def test_list_costs_a_fixed_number_of_sql_queries(api, world, ae, django_assert_num_queries):  # type: ignore[no-untyped-def]
    monitor = api(world["monitor"])
    _raise(api, world, ae)
    monitor.get("/api/v1/queries/")
    with django_assert_num_queries(6):  # token with its user, lockout state (username, address), grants, count, page
        monitor.get("/api/v1/queries/")
    for _ in range(20):
        _raise(api, world, ae)
    with django_assert_num_queries(6):
        assert monitor.get("/api/v1/queries/").json()["count"] == 21


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"target_type": "trial.trial", "target_id": 1, "question": "?"}, "target_type"),
        ({"target_type": "safety.adverseevent", "target_id": 999999, "question": "?"}, "target_id"),
        ({"target_type": "safety.adverseevent", "field_name": "nope", "question": "?"}, "field_name"),
        ({"target_type": "safety.adverseevent", "question": ""}, "question"),
    ],
)
def test_raise_refuses_bad_input_naming_the_field(api, world, ae, body, field):  # type: ignore[no-untyped-def]
    body = {"target_id": ae.pk, **body}
    response = api(world["monitor"]).post("/api/v1/queries/", body)
    assert response.status_code == 400 and field in response.json()["errors"], response.json()
    assert not DataQuery.objects.exists()


def test_roles(api, world, ae):  # type: ignore[no-untyped-def]
    assert _raise(api, world, ae).status_code == 201
    query_id = DataQuery.objects.get().pk
    assert api(world["sponsor"]).post("/api/v1/queries/", {"target_type": "x"}).status_code == 403
    body = {"target_type": "safety.adverseevent", "target_id": ae.pk, "question": "?"}
    assert api(world["coordinator_a"]).post("/api/v1/queries/", body).status_code == 400  # no raise_query: not found
    assert api(world["monitor"]).post(f"/api/v1/queries/{query_id}/answer/", {"text": "x"}).status_code == 403
    assert api(world["coordinator_a"]).post(f"/api/v1/queries/{query_id}/close/", {}).status_code == 403


def test_frozen_casebook_answer_yes_correction_no(api, world, ae):  # type: ignore[no-untyped-def]
    query_id = _raise(api, world, ae).json()["id"]
    patient_services.casebook_freeze(user=world["data_manager"], patient=ae.patient, password=PASSWORD)
    coordinator = api(world["coordinator_a"])
    response = coordinator.post(
        f"/api/v1/queries/{query_id}/answer/", {"text": "x", "correction": {"grade": 2}, "reason": "typo"}
    )
    assert response.status_code in {409, 423} and "frozen" in response.json()["detail"], response.json()
    assert coordinator.post(f"/api/v1/queries/{query_id}/answer/", {"text": "later"}).status_code == 200


def test_schema_lists_the_queries_endpoints(client, world):  # type: ignore[no-untyped-def]
    document = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path in ("/api/v1/queries/", "/api/v1/queries/{id}/", "/api/v1/queries/{id}/answer/"):
        assert path in document["paths"], path
    names = {p["name"] for p in document["paths"]["/api/v1/queries/"]["get"]["parameters"]}
    assert {"state", "site", "patient", "origin", "cursor"} <= names
