"""Issue 16 item 1: the clinical-date rule on every path.

"Today" is the trial's (Trial.time_zone); future AE dates and absurd last-contact dates
are refused by the form and the API naming the field, with nothing written; the SAE
report time is checked against now and the AE onset (service, so form, API and bundle
import); a birth-year edit is checked against the dates already entered."""

import datetime
import html
from datetime import UTC

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from dosing.models import LabPanel
from exchange.bundle import BundleInvalid, bundle_import
from exchange.generate import generate_trial
from patients.models import Patient, PatientEvent
from patients.services import patient_update
from safety import services
from safety.models import AdverseEvent
from tests.factories import LabPanelFactory, PatientFactory, TransplantFactory
from tests.integration.test_bundle import table_counts
from tests.integration.test_safety_api import ae_body
from tests.integration.test_safety_services import ae_data, make_patient
from tests.integration.test_safety_views import form_body
from trial.models import Trial

pytestmark = pytest.mark.django_db

JSON = "application/json"
# 12:00 UTC on 10 March 2026: already 11 March in Auckland (UTC+13), still the 10th in
# Los Angeles (UTC-7) and in UTC.
NOW = datetime.datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
AUCKLAND_TODAY = datetime.date(2026, 3, 11)
FUTURE = (timezone.now() + datetime.timedelta(days=30)).date().isoformat()


@pytest.fixture
def api(client):  # type: ignore[no-untyped-def]
    from core.tokens import token_issue

    def as_user(user):  # type: ignore[no-untyped-def]
        _, key = token_issue(user=user, name="test")
        client.defaults["HTTP_AUTHORIZATION"] = f"Token {key}"
        return client

    return as_user


def _error_next_to(body: str, field: str, text: str) -> bool:
    body = html.unescape(body)
    marker = f'id="id_{field}-error"'
    start = body.find(marker)
    return start != -1 and text in body[start : start + 600]


def _zone(trial: Trial, zone: str) -> None:
    Trial.objects.filter(pk=trial.pk).update(time_zone=zone)
    trial.time_zone = zone


# --- whose "today" ---------------------------------------------------------------------


@pytest.mark.parametrize(("zone", "accepted"), [("Pacific/Auckland", True), ("America/Los_Angeles", False)])
def test_the_trials_time_zone_decides_what_today_is(world, monkeypatch, zone, accepted) -> None:  # type: ignore[no-untyped-def]
    _zone(world["trial"], zone)
    patient = make_patient(world)
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    data = ae_data(onset=AUCKLAND_TODAY)
    if accepted:
        ae = services.ae_record(user=world["coordinator_a"], patient=patient, data=data)
        assert AdverseEvent.objects.get().pk == ae.pk
        return
    with pytest.raises(ValidationError) as exc:
        services.ae_record(user=world["coordinator_a"], patient=patient, data=data)
    assert exc.value.message_dict["onset"] == [
        "The AE onset 2026-03-11 is in the future: enter a date up to today (2026-03-10, America/Los_Angeles)."
    ]
    assert not AdverseEvent.objects.exists()


# --- future AE dates, absurd last-contact dates: form and API ---------------------------


@pytest.mark.parametrize(("field", "label"), [("onset", "AE onset"), ("resolved", "resolution date")])
def test_the_ae_form_refuses_a_future_date_next_to_its_field(world, login, field, label) -> None:  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    client = login(world["coordinator_a"])
    response = client.post(f"/patients/{patient.pk}/adverse-events/new/", form_body(**{field: FUTURE}))
    assert response.status_code == 200
    assert _error_next_to(response.content.decode(), field, f"The {label} {FUTURE} is in the future")
    assert not AdverseEvent.objects.exists()


@pytest.mark.parametrize(("field", "label"), [("onset", "AE onset"), ("resolved", "resolution date")])
def test_the_ae_api_refuses_a_future_date_naming_the_field(world, api, field, label) -> None:  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    response = api(world["coordinator_a"]).post(
        "/api/v1/adverse-events/", ae_body(patient, **{field: FUTURE}), content_type=JSON
    )
    assert response.status_code == 400
    assert response.json()["errors"][field][0].startswith(f"The {label} {FUTURE} is in the future")
    assert not AdverseEvent.objects.exists()


def test_a_follow_up_with_a_future_resolution_is_refused_and_changes_nothing(world, api) -> None:  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    ae = services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data())
    response = api(world["coordinator_a"]).patch(
        f"/api/v1/adverse-events/{ae.pk}/",
        {"resolved": FUTURE, "reason_for_change": "resolved"},
        content_type=JSON,
        HTTP_IF_MATCH='"1"',
    )
    assert response.status_code == 400 and "is in the future" in response.json()["errors"]["resolved"][0]
    ae.refresh_from_db()
    assert ae.version == 1 and ae.resolved is None


@pytest.fixture
def transplanted(world):  # type: ignore[no-untyped-def]
    patient = PatientFactory(site=world["site_a"], trial=world["trial"], birth_year=1975)
    TransplantFactory(patient=patient, date=datetime.date(2024, 1, 10))
    return patient


FAR_DATES = [
    ("0001-01-01", "The event date 0001-01-01 is before the patient's birth year (1975)."),
    ("9999-12-31", "The event date 9999-12-31 is in the future"),
]


@pytest.mark.parametrize(("day", "message"), FAR_DATES)
def test_the_event_form_refuses_a_last_contact_far_outside_life(world, login, transplanted, day, message) -> None:  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    response = client.post(f"/patients/{transplanted.pk}/events/new/", {"kind": "last_contact", "date": day})
    assert response.status_code == 200
    assert _error_next_to(response.content.decode(), "date", message)
    assert not PatientEvent.objects.exists()


@pytest.mark.parametrize(("day", "message"), FAR_DATES)
def test_the_event_api_refuses_a_last_contact_far_outside_life(world, api, transplanted, day, message) -> None:  # type: ignore[no-untyped-def]
    body = {"patient": transplanted.pk, "kind": "last_contact", "date": day}
    response = api(world["coordinator_a"]).post("/api/v1/patient-events/", body, content_type=JSON)
    assert response.status_code == 400
    assert any(m.startswith(message) for m in response.json()["errors"]["date"]), response.json()
    assert not PatientEvent.objects.exists()


# --- the SAE report time -----------------------------------------------------------------


def test_the_service_refuses_an_sae_report_time_in_the_future_in_the_trials_zone(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _zone(world["trial"], "Pacific/Auckland")
    patient = make_patient(world)
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    data = ae_data(onset=datetime.date(2026, 3, 1), sae_reported_at=NOW + datetime.timedelta(hours=2))
    with pytest.raises(ValidationError) as exc:
        services.ae_record(user=world["coordinator_a"], patient=patient, data=data)
    assert exc.value.message_dict["sae_reported_at"] == [
        "The SAE report time 2026-03-11 03:00 (Pacific/Auckland) is in the future: "
        "enter a time up to now (2026-03-11 01:00, Pacific/Auckland)."
    ]
    assert not AdverseEvent.objects.exists()
    ok = services.ae_record(user=world["coordinator_a"], patient=patient, data={**data, "sae_reported_at": NOW})
    assert ok.sae_reported_at == NOW


def test_an_sae_report_before_the_onset_is_refused_and_an_onset_edit_past_it_too(world) -> None:  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    early = datetime.datetime(2024, 4, 9, 9, 0, tzinfo=UTC)
    with pytest.raises(ValidationError) as exc:
        services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(sae_reported_at=early))
    assert exc.value.message_dict["sae_reported_at"][0].startswith("The SAE report time 2024-04-09 09:00")
    assert "is before the AE onset (2024-04-10)" in exc.value.message_dict["sae_reported_at"][0]
    assert not AdverseEvent.objects.exists()
    reported = datetime.datetime(2024, 4, 11, 9, 0, tzinfo=UTC)
    ae = services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(sae_reported_at=reported))
    with pytest.raises(ValidationError) as exc:
        services.ae_update(
            user=world["coordinator_a"], ae=ae, changes={"onset": datetime.date(2024, 4, 12)}, reason="typo"
        )
    assert "is before the AE onset (2024-04-12)" in exc.value.message_dict["sae_reported_at"][0]
    ae.refresh_from_db()
    assert ae.version == 1 and ae.onset == datetime.date(2024, 4, 10)


def test_the_form_and_the_api_refuse_a_future_sae_report_time(world, login, api) -> None:  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    later = timezone.now() + datetime.timedelta(days=2)
    page = login(world["coordinator_a"]).post(
        f"/patients/{patient.pk}/adverse-events/new/", form_body(sae_reported_at=f"{later:%Y-%m-%dT%H:%M}")
    )
    assert page.status_code == 200
    assert _error_next_to(page.content.decode(), "sae_reported_at", "is in the future: enter a time up to now")
    answer = api(world["coordinator_a"]).post(
        "/api/v1/adverse-events/", ae_body(patient, sae_reported_at=later.isoformat()), content_type=JSON
    )
    assert answer.status_code == 400
    assert "is in the future" in answer.json()["errors"]["sae_reported_at"][0]
    assert not AdverseEvent.objects.exists()


def test_the_bundle_import_refuses_a_future_sae_report_time_by_path() -> None:
    bundle = generate_trial(15, seed=1)
    later = (timezone.now() + datetime.timedelta(days=2)).isoformat()
    patient = bundle["patients"][0]
    patient["adverse_events"].append(
        {
            "term": "Nausea",
            "meddra_code": "10028813",
            "grade": 1,
            "onset": patient["consents"][0]["date"],
            "attribution": "unrelated",
            "sae_reported_at": later,
        }
    )
    before = table_counts()
    with pytest.raises(BundleInvalid) as exc:
        bundle_import(bundle)
    assert table_counts() == before
    k = len(patient["adverse_events"]) - 1
    assert any(
        p.startswith(f"patients[0].adverse_events[{k}].sae_reported_at: The SAE report time") and "in the future" in p
        for p in exc.value.problems
    ), exc.value.problems


# --- a birth-year edit against the dates already entered -----------------------------------


def test_a_birth_year_after_an_existing_clinical_date_is_refused_naming_the_record(world) -> None:  # type: ignore[no-untyped-def]
    patient = make_patient(world)  # consent 2024-03-20, enrolment 2024-03-25, cycles from 2024-04-01
    panel = LabPanelFactory(patient=patient, date=datetime.date(2023, 11, 2))  # the earliest: a dosing record
    LabPanelFactory(
        patient=patient, date=datetime.date(2022, 5, 5), voided_at=timezone.now(), void_reason="entered in error"
    )
    with pytest.raises(ValidationError) as exc:
        patient_update(user=world["coordinator_a"], patient=patient, changes={"birth_year": 2024}, reason="typo")
    (message,) = exc.value.message_dict["birth_year"]
    assert message.startswith(f"The birth year 2024 is after the lab date 2023-11-02 (lab panel #{panel.pk}:")
    stored = Patient.objects.get(pk=patient.pk)
    assert stored.birth_year == 1975 and stored.version == patient.version
    # The voided panel (2022) is not data: 2023 is as late as the birth year may go.
    updated = patient_update(user=world["coordinator_a"], patient=stored, changes={"birth_year": 2023}, reason="typo")
    assert updated.birth_year == 2023 and LabPanel.all_objects.count() == 2


def test_a_birth_year_edit_through_the_api_is_checked_against_an_ae_onset(world, api) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(site=world["site_a"], trial=world["trial"], birth_year=1975)
    ae = services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(onset=datetime.date(2021, 6, 1)))
    response = api(world["coordinator_a"]).patch(
        f"/api/v1/patients/{patient.pk}/",
        {"birth_year": 2022, "reason_for_change": "typo"},
        content_type=JSON,
        HTTP_IF_MATCH=f'"{patient.version}"',
    )
    assert response.status_code == 400
    assert response.json()["errors"]["birth_year"] == [
        f"The birth year 2022 is after the AE onset 2021-06-01 (adverse event #{ae.pk}: {ae}): "
        "correct that record first, or keep the birth year."
    ]
    assert Patient.objects.get(pk=patient.pk).birth_year == 1975


def test_the_bundle_import_refuses_a_historic_adjudication_signed_in_the_future() -> None:
    """The one date a service took without the rule: a historic DLT decision's signing date."""
    bundle = generate_trial(15, seed=1)
    i = next(i for i, p in enumerate(bundle["patients"]) if p.get("dlt_adjudications"))
    bundle["patients"][i]["dlt_adjudications"][0]["at"] = "9999-12-31"
    before = table_counts()
    with pytest.raises(BundleInvalid) as exc:
        bundle_import(bundle)
    assert table_counts() == before
    assert any(
        p.startswith(f"patients[{i}].dlt_adjudications[0].at: The signing date 9999-12-31 is in the future")
        for p in exc.value.problems
    ), exc.value.problems
