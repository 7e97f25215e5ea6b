"""The API's contract for errors, scope and optimistic concurrency (docs/api.md)."""

import pytest

from core.tokens import token_issue
from patients.models import Patient
from tests.factories import PatientFactory
from trial.models import Site


@pytest.fixture
def api(client):  # type: ignore[no-untyped-def]
    def as_user(user):  # type: ignore[no-untyped-def]
        _, key = token_issue(user=user, name="test")
        client.defaults["HTTP_AUTHORIZATION"] = f"Token {key}"
        return client

    return as_user


def _register(client, **overrides):  # type: ignore[no-untyped-def]
    body = {
        "trial": "TRIAL-T",
        "site": "SA",
        "subject_id": "SA-010",
        "sex": "male",
        "race": "asian",
        "birth_year": 1960,
    }
    return client.post("/api/v1/patients/", {**body, **overrides}, content_type="application/json")


def test_register_and_read_back(world, api):  # type: ignore[no-untyped-def]
    client = api(world["coordinator_a"])
    response = _register(client)
    assert response.status_code == 201, response.json()
    assert response["ETag"] == '"1"'
    detail = client.get(f"/api/v1/patients/{response.json()['id']}/").json()
    assert detail["subject_id"] == "SA-010" and detail["site"] == "SA" and detail["version"] == 1


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"sex": "unknown"}, "sex", "not a valid choice"),
        ({"birth_year": 1800}, "birth_year", "greater than or equal to 1900"),
        ({"subject_id": "XX-001"}, "subject_id", "start with 'SA-'"),
        ({"site": "SB"}, "site", "only at your own site"),
        ({"subject_id": ""}, "subject_id", "may not be blank"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(world, api, overrides, field, text):  # type: ignore[no-untyped-def]
    response = _register(api(world["coordinator_a"]), **overrides)
    assert response.status_code == 400
    body = response.json()
    assert set(body) >= {"detail", "errors"} and text in " ".join(body["errors"][field])
    assert not Patient.objects.exists()


def test_duplicate_subject_id(world, api):  # type: ignore[no-untyped-def]
    client = api(world["coordinator_a"])
    assert _register(client).status_code == 201
    response = _register(client)
    assert response.status_code == 400 and "already registered" in response.json()["errors"]["subject_id"][0]
    assert Patient.objects.count() == 1


def test_edit_needs_reason_and_current_version(world, api):  # type: ignore[no-untyped-def]
    client = api(world["coordinator_a"])
    pid = _register(client).json()["id"]
    url = f"/api/v1/patients/{pid}/"
    no_reason = client.patch(url, {"birth_year": 1961, "version": 1}, content_type="application/json")
    assert no_reason.status_code == 400 and "reason_for_change" in no_reason.json()["errors"]
    no_version = client.patch(url, {"birth_year": 1961, "reason_for_change": "typo"}, content_type="application/json")
    assert no_version.status_code == 400 and "version" in no_version.json()["errors"]
    ok = client.patch(
        url, {"birth_year": 1961, "reason_for_change": "typo"}, content_type="application/json", HTTP_IF_MATCH='"1"'
    )
    assert ok.status_code == 200 and ok["ETag"] == '"2"'
    stale = client.patch(
        url, {"birth_year": 1962, "reason_for_change": "other"}, content_type="application/json", HTTP_IF_MATCH='"1"'
    )
    assert stale.status_code == 409 and stale.json()["current_version"] == 2
    assert Patient.objects.get().birth_year == 1961


def test_out_of_scope_answers_404_and_sponsor_cannot_write(world, api):  # type: ignore[no-untyped-def]
    patient_b = PatientFactory(site=world["site_b"], trial=world["trial"])
    client = api(world["coordinator_a"])
    assert client.get(f"/api/v1/patients/{patient_b.pk}/").status_code == 404
    assert client.get(f"/api/v1/trials/{world['other'].pk}/").status_code == 404
    sponsor = api(world["sponsor"])
    assert sponsor.get("/api/v1/patients/").json()["count"] == 0
    assert _register(sponsor).status_code == 403  # a sponsor never writes
    assert not Patient.objects.filter(subject_id="SA-010").exists()


def test_investigator_reads_all_sites_but_cannot_edit(world, api):  # type: ignore[no-untyped-def]
    PatientFactory(site=world["site_a"], trial=world["trial"])
    patient_b = PatientFactory(site=world["site_b"], trial=world["trial"])
    client = api(world["investigator"])
    assert client.get("/api/v1/patients/").json()["count"] == 2
    response = client.patch(
        f"/api/v1/patients/{patient_b.pk}/", {"birth_year": 1961, "reason_for_change": "x", "version": 1},
        content_type="application/json",
    )  # fmt: skip
    assert response.status_code == 403


def test_openapi_schema_is_served(world, api):  # type: ignore[no-untyped-def]
    response = api(world["investigator"]).get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    assert "/api/v1/patients/{id}/" in response.json()["paths"]


def test_trial_detail_lists_configuration(world, api):  # type: ignore[no-untyped-def]
    from tests.factories import DoseLevelFactory

    DoseLevelFactory(trial=world["trial"], level=1)
    body = api(world["investigator"]).get(f"/api/v1/trials/{world['trial'].pk}/").json()
    assert body["code"] == "TRIAL-T" and body["dose_levels"] == [{"level": 1, "dose_mg_m2": 0.3}]
    assert {s["code"] for s in body["sites"]} == {"SA", "SB"}
    # The country a sponsor's SDTM DM.COUNTRY comes from ("" when not recorded).
    Site.objects.filter(trial=world["trial"], code="SA").update(country="FRA")
    body = api(world["investigator"]).get(f"/api/v1/trials/{world['trial'].pk}/").json()
    assert {s["code"]: s["country"] for s in body["sites"]} == {"SA": "FRA", "SB": ""}
