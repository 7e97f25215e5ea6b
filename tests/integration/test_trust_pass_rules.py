"""Issue 16 (trust pass): the bundle import refuses, with the record's JSON path and
nothing written, a future AE onset, pre-dose platelets typed in cells/uL and a consent
to a superseded protocol version (unless the bundle carries the investigator's reason)."""

import copy
import datetime

import pytest

from exchange.bundle import BundleInvalid, bundle_export, bundle_import
from exchange.generate import generate_trial
from patients.models import Consent
from tests.integration.test_bundle import table_counts

pytestmark = pytest.mark.django_db


def refused(bundle: dict) -> list[str]:
    before = table_counts()
    with pytest.raises(BundleInvalid) as exc:
        bundle_import(bundle)
    assert table_counts() == before
    return exc.value.problems


def test_bundle_refuses_a_future_ae_onset_by_path() -> None:
    bundle = generate_trial(15, seed=1)
    future = (datetime.date.today() + datetime.timedelta(days=60)).isoformat()
    for i, onset in ((0, future), (1, "9999-12-31")):
        bundle["patients"][i]["adverse_events"].append(
            {"term": "Nausea", "meddra_code": "10028813", "grade": 1, "onset": onset, "attribution": "unrelated"}
        )
    problems = refused(bundle)
    for i in (0, 1):
        k = len(bundle["patients"][i]["adverse_events"]) - 1
        assert any(
            p.startswith(f"patients[{i}].adverse_events[{k}].onset: The AE onset") and "in the future" in p
            for p in problems
        ), problems


def test_bundle_refuses_predose_platelets_typed_per_microlitre() -> None:
    bundle = generate_trial(15, seed=1)
    bundle["patients"][2]["cycles"][0]["labs"]["platelets"] = 50000
    problems = refused(bundle)
    assert any(
        p.startswith("patients[2].cycles[0].labs.platelets: Platelets 50000 x10^9/L is not plausible")
        and "did you mean 50 x10^9/L" in p
        for p in problems
    ), problems


def test_bundle_refuses_a_lab_panel_dated_before_birth() -> None:
    bundle = generate_trial(15, seed=1)
    bundle["patients"][3]["labs"] = [{"date": "0001-01-01", "platelets": 100}]
    problems = refused(bundle)
    assert any(p.startswith("patients[3].labs[0].date: The lab date 0001-01-01 is before") for p in problems), problems


def _superseded(bundle: dict) -> int:
    """Version 2 takes effect on the day of the last patient's (v1) consent: that
    consent is to a version already superseded; everyone before consented to the current v1."""
    index = max(range(len(bundle["patients"])), key=lambda i: bundle["patients"][i]["consents"][0]["date"])
    consent = bundle["patients"][index]["consents"][0]
    assert consent["protocol_version"] == "1"
    effective = datetime.date.fromisoformat(consent["date"])
    bundle["trial"]["protocol_versions"][1]["effective"] = effective.isoformat()
    others = [p["consents"][0]["date"] for i, p in enumerate(bundle["patients"]) if i != index]
    assert max(others) < effective.isoformat()
    return index


def test_bundle_refuses_consent_to_a_superseded_version_by_path() -> None:
    bundle = generate_trial(22, seed=7)
    index = _superseded(bundle)
    problems = refused(bundle)
    assert any(
        p.startswith(f"patients[{index}].consents[0].protocol_version: Version 1 was superseded by version 2")
        for p in problems
    ), problems


def test_bundle_keeps_an_investigators_reason_for_a_superseded_version() -> None:
    bundle = generate_trial(22, seed=7)
    index = _superseded(bundle)
    bundle["patients"][index]["consents"][0]["version_override_reason"] = "Site IRB had not approved v2 yet."
    bundle["patients"][index].pop("events", None)
    try:
        trial = bundle_import(copy.deepcopy(bundle))
    except BundleInvalid as exc:  # only the consent is allowed to matter here
        assert not any(".consents[" in p for p in exc.problems), exc.problems
        return
    consent = Consent.objects.get(patient__trial=trial, patient__subject_id=bundle["patients"][index]["subject_id"])
    assert consent.version_override_reason == "Site IRB had not approved v2 yet."
    exported = bundle_export(trial)
    subject = bundle["patients"][index]["subject_id"]
    (p,) = [p for p in exported["patients"] if p["subject_id"] == subject]
    assert p["consents"][0]["version_override_reason"] == "Site IRB had not approved v2 yet."


@pytest.mark.parametrize(
    ("subject", "expected"),
    [("UHC-001\n", "is not in its normal form"), ("UHC-0001", "looks like patients[0].subject_id")],
)
def test_bundle_refuses_subject_id_aliases(subject: str, expected: str) -> None:
    bundle = generate_trial(15, seed=1)
    assert bundle["patients"][0]["subject_id"] == "UHC-001"
    bundle["patients"][3]["subject_id"] = subject
    bundle["patients"][3]["site"] = "UHC"
    with pytest.raises(BundleInvalid) as exc:
        bundle_import(bundle)
    assert any(p.startswith("patients[3].subject_id: ") and expected in p for p in exc.value.problems), (
        exc.value.problems
    )


# --- the same rules through the API and the forms ------------------------------------


@pytest.fixture
def setup(world, client):  # type: ignore[no-untyped-def]
    from tests.factories import PatientFactory, ProtocolVersionFactory, TransplantFactory

    ProtocolVersionFactory(trial=world["trial"], version="1", effective=datetime.date(2017, 7, 1))
    ProtocolVersionFactory(trial=world["trial"], version="2", effective=datetime.date(2020, 8, 17), max_cycles=12)
    patient = PatientFactory(site=world["site_a"], trial=world["trial"], subject_id="SA-901")
    TransplantFactory(patient=patient, date=datetime.date(2024, 1, 10))
    return patient


def _api(client, user):  # type: ignore[no-untyped-def]
    from core.tokens import token_issue

    _, key = token_issue(user=user, name="test")
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {key}"
    return client


def test_api_refuses_consent_to_a_superseded_version_unless_an_investigator_says_why(world, client, setup):  # type: ignore[no-untyped-def]
    url = f"/api/v1/patients/{setup.pk}/consents/"
    body = {"protocol_version": "1", "date": "2024-02-20"}
    coordinator = _api(client, world["coordinator_a"])
    refused = coordinator.post(url, body, content_type="application/json")
    assert refused.status_code == 400
    assert "superseded by version 2" in refused.json()["errors"]["protocol_version"][0]
    override = {**body, "version_override_reason": "IRB approval of v2 pending at the site."}
    assert coordinator.post(url, override, content_type="application/json").status_code == 403
    investigator = _api(client, world["investigator"])
    created = investigator.post(url, override, content_type="application/json")
    assert created.status_code == 201, created.json()
    assert Consent.objects.get(patient=setup).version_override_reason == "IRB approval of v2 pending at the site."


def test_api_refuses_lab_panel_platelets_per_microlitre_and_dates_out_of_range(world, client, setup):  # type: ignore[no-untyped-def]
    api = _api(client, world["coordinator_a"])
    url = f"/api/v1/patients/{setup.pk}/lab-panels/"
    refused = api.post(url, {"date": "2024-02-01", "platelets": "50000"}, content_type="application/json")
    assert refused.status_code == 400
    assert "did you mean 50 x10^9/L" in refused.json()["errors"]["platelets"][0]
    for drawn in ("0001-01-01", "9999-12-31"):
        refused = api.post(url, {"date": drawn, "platelets": "80"}, content_type="application/json")
        assert refused.status_code == 400 and refused.json()["errors"]["date"], refused.json()


def test_api_refuses_a_look_alike_subject_id(world, client, setup):  # type: ignore[no-untyped-def]
    api = _api(client, world["coordinator_a"])
    body = {"trial": "TRIAL-T", "site": "SA", "subject_id": "SA-0901", "sex": "male", "birth_year": 1960}
    refused = api.post("/api/v1/patients/", body, content_type="application/json")
    assert refused.status_code == 400
    assert "looks like SA-901" in refused.json()["errors"]["subject_id"][0]


def test_form_refuses_consent_to_a_superseded_version(world, login, setup):  # type: ignore[no-untyped-def]
    from django.urls import reverse

    client = login(world["coordinator_a"])
    version = setup.trial.protocol_versions.get(version="1")
    response = client.post(
        reverse("consent_create", kwargs={"patient_id": setup.pk}),
        {"protocol_version": version.pk, "date": "2024-02-20"},
    )
    assert response.status_code == 200
    assert "superseded by version 2" in response.content.decode()
    assert not Consent.objects.filter(patient=setup).exists()
