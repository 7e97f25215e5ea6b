"""Voiding every voidable record type (issue 19 item 4): one void screen and one API view
for adverse events, lab panels, assessments, patient events, concomitant medications and
GVHD episodes. Reason required, version checked, audited, refused on a locked casebook;
the record's page shows it struck through with who, when and why, and no Void link."""

import pytest
from django.urls import reverse

from core.tokens import token_issue
from patients import services as patient_services
from tests.factories import (
    PASSWORD,
    AdverseEventFactory,
    AssessmentFactory,
    ConcomitantMedicationFactory,
    GvhdEpisodeFactory,
    LabPanelFactory,
    PatientEventFactory,
)
from tests.integration.test_safety_services import make_patient

pytestmark = pytest.mark.django_db

# factory, screen URL name, the page that lists it, API path
TYPES = {
    "adverse event": (AdverseEventFactory, "ae_void", "patient_safety", "adverse-events"),
    "lab panel": (LabPanelFactory, "lab_panel_void", "patient_dosing", "lab-panels"),
    "assessment": (AssessmentFactory, "assessment_void", "patient_assessments", "assessments"),
    "patient event": (PatientEventFactory, "event_void", "patient_events", "patient-events"),
    "medication": (ConcomitantMedicationFactory, "medication_void", "patient_dosing", "concomitant-medications"),
    "gvhd episode": (GvhdEpisodeFactory, "gvhd_void", "patient_safety", "gvhd-episodes"),
}


def _record(world, kind):  # type: ignore[no-untyped-def]
    factory = TYPES[kind][0]
    return factory(patient=make_patient(world))


def _reload(record):  # type: ignore[no-untyped-def]
    return type(record).all_objects.get(pk=record.pk)


@pytest.mark.parametrize("kind", TYPES)
def test_the_void_screen_of_every_type(world, login, kind):  # type: ignore[no-untyped-def]
    _, url_name, page, _ = TYPES[kind]
    record = _record(world, kind)
    patient = record.patient
    url = reverse(url_name, args=[record.pk])
    client = login(world["coordinator_a"])
    listing = reverse(page, args=[patient.pk])
    assert url in client.get(listing).content.decode()  # the Void link on the current record
    assert client.get(url).status_code == 200
    assert "This field is required" in client.post(url, {"version": record.version}).content.decode()
    stale = client.post(url, {"version": record.version + 1, "void_reason": "wrong patient"}).content.decode()
    assert "changed since you opened it" in stale or "version" in stale
    assert _reload(record).voided_at is None
    done = client.post(url, {"version": record.version, "void_reason": "entered on the wrong patient"})
    assert done.status_code == 302 and done["Location"] == listing
    voided = _reload(record)
    assert voided.voided_by == world["coordinator_a"] and voided.void_reason == "entered on the wrong patient"
    assert voided.history.order_by("-history_id").first().history_change_reason.startswith("voided: ")
    shown = client.get(listing).content.decode()
    assert "entered on the wrong patient" in shown and f"<del>{voided}</del>" in shown
    assert 'class="badge invalidated">voided<' in shown and voided.voided_at.strftime("%Y-%m-%d") in shown
    assert url not in shown  # no Void link on a voided record
    assert client.get(url).status_code == 404  # no longer a current record
    assert login(world["coordinator_b"]).get(url).status_code == 404


@pytest.mark.parametrize("kind", ["assessment", "gvhd episode"])
def test_the_void_screen_is_refused_on_a_locked_casebook_and_for_other_roles(world, login, kind):  # type: ignore[no-untyped-def]
    _, url_name, _, _ = TYPES[kind]
    record = _record(world, kind)
    url = reverse(url_name, args=[record.pk])
    assert login(world["monitor"]).post(url, {"version": 1, "void_reason": "x"}).status_code == 403
    patient_services.casebook_lock(user=world["data_manager"], patient=record.patient, password=PASSWORD)
    refused = login(world["coordinator_a"]).post(url, {"version": record.version, "void_reason": "x"})
    assert refused.status_code == 423
    assert _reload(record).voided_at is None


def _api(client, user, path, body, **headers):  # type: ignore[no-untyped-def]
    _, key = token_issue(user=user, name="void")
    return client.post(
        f"/api/v1/{path}", body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}", **headers
    )


@pytest.mark.parametrize("kind", TYPES)
def test_the_void_api_of_every_type(client, world, kind):  # type: ignore[no-untyped-def]
    api_path = TYPES[kind][3]
    record = _record(world, kind)
    path = f"{api_path}/{record.pk}/void/"
    coordinator = world["coordinator_a"]
    missing = _api(client, coordinator, path, {"version": record.version})
    assert missing.status_code == 400 and "reason" in missing.json()["errors"]
    blank = _api(client, coordinator, path, {"version": record.version, "reason": "  "})
    assert blank.status_code == 400 and "reason" in blank.json()["errors"]
    no_version = _api(client, coordinator, path, {"reason": "x"})
    assert no_version.status_code == 400 and "version" in no_version.json()["errors"]
    stale = _api(client, coordinator, path, {"reason": "x", "version": record.version + 1})
    assert stale.status_code == 409 and stale.json()["current_version"] == record.version
    for other in ("monitor", "data_manager", "investigator", "sponsor"):
        assert _api(client, world[other], path, {"reason": "x", "version": record.version}).status_code == 403
    assert _api(client, world["coordinator_b"], path, {"reason": "x", "version": record.version}).status_code == 404
    assert _reload(record).voided_at is None
    done = _api(client, coordinator, path, {"reason": "duplicate entry"}, HTTP_IF_MATCH=f'"{record.version}"')
    assert done.status_code == 200, done.json()
    body = done.json()
    assert body["record_type"] == record._meta.label_lower and body["id"] == record.pk
    assert body["void_reason"] == "duplicate entry" and body["voided_by"] == coordinator.get_username()
    assert done["ETag"] == f'"{body["version"]}"'
    voided = _reload(record)
    assert voided.void_reason == "duplicate entry" and voided.version == body["version"]
    # Voided: no longer a current record.
    assert _api(client, coordinator, path, {"reason": "again", "version": voided.version}).status_code == 404


def test_the_void_api_is_refused_on_a_locked_casebook(client, world):  # type: ignore[no-untyped-def]
    record = _record(world, "medication")
    patient_services.casebook_lock(user=world["data_manager"], patient=record.patient, password=PASSWORD)
    refused = _api(
        client, world["coordinator_a"], f"concomitant-medications/{record.pk}/void/", {"reason": "x", "version": 1}
    )
    assert refused.status_code == 423 and refused.json()["lock_state"] == "locked"
    assert _reload(record).voided_at is None


def test_the_void_endpoints_are_in_the_openapi_schema(client, world):  # type: ignore[no-untyped-def]
    _, key = token_issue(user=world["investigator"], name="schema")
    schema = client.get("/api/v1/schema/?format=json", HTTP_AUTHORIZATION=f"Token {key}").json()
    for _, _, _, api_path in TYPES.values():
        [path] = [p for p in schema["paths"] if p.startswith(f"/api/v1/{api_path}/") and p.endswith("/void/")]
        operation = schema["paths"][path]["post"]
        assert {"200", "400", "409", "423"} <= set(operation["responses"])
        body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        assert set(schema["components"]["schemas"][body]["properties"]) == {"reason", "version"}
