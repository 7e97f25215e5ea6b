"""Every protocol deviation the system records, of every kind, is in the one deviation
list (trial page, the patient's dosing tab) and in the ``dv`` export (issue 16 item 4):
Deviation rows an investigator records, the enrolment at a level with no open slot
(investigator's override), and a bundle import's off-slot enrolment."""

import csv
import io
import json

import pytest
from django.urls import reverse

from dosing import selectors as dosing_selectors
from dosing import services as dosing_services
from exchange.bundle import bundle_import
from exchange.generate import generate_trial
from patients import services as patient_services
from tests.factories import grant
from tests.integration.test_exports import _body, _get
from tests.integration.test_patients_services import D, consented, levels, open_slots, registered, screened  # noqa: F401
from trial.models import RoleGrant


@pytest.fixture
def override(world, screened, levels):  # type: ignore[no-untyped-def]  # noqa: F811
    """An investigator enrols at L2 while no level has an open slot; and records a delay."""
    open_slots(world["trial"], {})
    patient = patient_services.patient_enrol(
        user=world["investigator"],
        patient=screened,
        on=D(2024, 3, 2),
        dose_level=levels[1],
        deviation_reason="DSMB allowed a replacement patient",
    )
    dosing_services.deviation_record(
        user=world["investigator"],
        patient=patient,
        data={"kind": "delay", "date": D(2024, 4, 10), "reason": "cytopenia, 10 days late", "cycle_number": 2},
    )
    return patient


def test_the_enrolment_override_is_on_the_deviation_list_and_the_dosing_tab(world, override, login):  # type: ignore[no-untyped-def]
    rows = dosing_selectors.deviation_list(world["investigator"], world["trial"])
    assert [(r.kind, r.date, r.cycle_number) for r in rows] == [
        ("enrolment", D(2024, 3, 2), None),
        ("delay", D(2024, 4, 10), 2),
    ]
    assert rows[0].reason == "Enrolled at L2 (no open slot): DSMB allowed a replacement patient"
    browser = login(world["investigator"])
    page = browser.get(reverse("trial_deviations", args=[world["trial"].pk])).content.decode()
    assert "Enrolment outside the open slot" in page and "DSMB allowed a replacement patient" in page
    assert "Dose delayed beyond the allowance" in page
    dosing = browser.get(reverse("patient_dosing", args=[override.pk])).content.decode()
    assert "Enrolment outside the open slot" in dosing and "DSMB allowed a replacement patient" in dosing
    # The other site's coordinator sees neither (scope).
    assert dosing_selectors.deviation_list(world["coordinator_b"], world["trial"]) == []


def test_the_dv_export_has_every_deviation(client, world, override):  # type: ignore[no-untyped-def]
    response = _get(client, world["sponsor"], f"/api/v1/exports/dv/?trial={world['trial'].code}&format=csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(_body(response))))
    assert [(r["DVDECOD"], r["DVSTDTC"], r["VISITNUM"]) for r in rows] == [
        ("ENROLMENT OUTSIDE THE OPEN SLOT", "2024-03-02", ""),
        ("DOSE DELAYED BEYOND THE ALLOWANCE", "2024-04-10", "2"),
    ]
    assert rows[0]["DVSPID"] == f"ENROLMENT-{override.pk}" and rows[0]["USUBJID"] == f"TRIAL-T-{override.subject_id}"
    document = json.loads(
        _body(_get(client, world["sponsor"], f"/api/v1/exports/dv/?trial={world['trial'].code}&format=json"))
    )
    assert [r["DVCAT"] for r in document["rows"]] == ["PROTOCOL DEVIATION"] * 2
    assert document["rows"][1]["VISITNUM"] == 2


@pytest.mark.django_db
def test_a_bundle_imports_off_slot_enrolment_is_on_the_list_and_in_the_export(client, world):  # type: ignore[no-untyped-def]
    bundle = generate_trial(15, seed=5, code="DEV-TRIAL")
    first = bundle["patients"][0]
    first["dose_level"] = 2  # at L2, a level nobody had opened then
    for cycle in first["cycles"]:
        cycle["dose_mg_m2"] = 0.4
    trial = bundle_import(bundle)
    grant(world["sponsor"], trial, RoleGrant.Role.SPONSOR)
    grant(world["investigator"], trial, RoleGrant.Role.INVESTIGATOR)
    listed = {r.patient.subject_id: r for r in dosing_selectors.deviation_list(world["investigator"], trial)}
    row = listed[first["subject_id"]]
    assert row.kind == "enrolment" and "Enrolled at L2" in row.reason
    rows = list(
        csv.DictReader(io.StringIO(_body(_get(client, world["sponsor"], f"/api/v1/exports/dv/?trial={trial.code}"))))
    )
    exported = {r["USUBJID"] for r in rows if r["DVDECOD"] == "ENROLMENT OUTSIDE THE OPEN SLOT"}
    assert f"DEV-TRIAL-{first['subject_id']}" in exported
    assert exported == {f"DEV-TRIAL-{s}" for s, r in listed.items() if r.kind == "enrolment"}
