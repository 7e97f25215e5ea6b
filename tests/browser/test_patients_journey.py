"""Journey 1 (issue 9): a coordinator registers a patient, records the transplant and
consent, screens (correcting a unit slip the form catches), enrols, records cycle 1 with
its labs and dose, then an adverse event: in a real browser."""

import datetime
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from patients.models import Patient
from tests.browser.conftest import ARTIFACTS
from tests.factories import PASSWORD, DoseLevelFactory, ProtocolVersionFactory
from trial.models import TrialComputation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_register_transplant_consent_screen_enrol(page, world):  # type: ignore[no-untyped-def]
    trial = world["trial"]
    ProtocolVersionFactory(trial=trial, version="1", effective=datetime.date(2017, 7, 1))
    DoseLevelFactory(trial=trial, level=1)
    TrialComputation.objects.create(
        trial=trial,
        kind="escalation",
        request_seq=1,
        computed_seq=1,
        data={"open_slots": [{"dose_level": 1, "slots": 3}]},
    )

    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("coord_a")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"/trials/{trial.pk}/patients/new/")
    page.get_by_label("Site").select_option(label="SA — Site A hospital")
    page.get_by_label("Subject ID").fill("SA-007")
    page.get_by_label("Sex").select_option("male")
    page.get_by_label("Birth year").fill("1980")
    page.get_by_label("Diagnosis").select_option("b_all")
    page.get_by_label("CD22 positive").select_option("true")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("heading", name="SA-007")).to_be_visible()

    page.get_by_role("link", name="Transplant & eligibility").click()
    page.get_by_role("link", name="Record the transplant").click()
    page.get_by_label("HCT date (day 0)").fill("2024-01-10")
    page.get_by_label("Disease status at HCT").select_option("cr1")
    page.locator("#id_conditioning").select_option("ric")
    page.get_by_label("MRD positive before HCT").select_option("false")
    page.get_by_label("MRD positive after HCT").select_option("false")
    page.get_by_label("CR confirmed at day +30").select_option("true")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Transplant recorded.")).to_be_visible()

    page.get_by_role("link", name="Record consent or re-consent").click()
    page.get_by_label("Protocol version consented to").select_option(index=1)
    page.get_by_label("Consent date").fill("2024-02-20")
    page.get_by_role("button", name="Save", exact=True).click()

    page.get_by_role("link", name="Screen").click()
    page.get_by_label("Screening date").fill("2024-03-01")
    page.get_by_label("Labs drawn on").fill("2024-02-28")
    page.get_by_label("Platelets (x10^9/L)").fill("50000")
    page.get_by_label("ANC (x10^9/L)").fill("2.1")
    page.get_by_label("Active acute GVHD grade").fill("0")
    page.get_by_label("Active liver GVHD").select_option("false")
    page.get_by_label("History of SOS/VOD").select_option("false")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#id_platelets_10e9_l-error")).to_contain_text("did you mean 50 x10^9/L?")
    page.get_by_label("Platelets (x10^9/L)").fill("133")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("heading", name="Screening of 2024-03-01: Eligible")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "patients-screening.png"), full_page=True)

    page.get_by_role("link", name="transplant and eligibility").click()
    page.get_by_role("link", name="Enrol").click()
    page.get_by_label("Enrolment date").fill("2024-03-02")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("SA-007 enrolled at L1")).to_be_visible()
    patient = Patient.objects.get(subject_id="SA-007")
    assert patient.enrolled_on == datetime.date(2024, 3, 2) and patient.dose_level.level == 1

    # Cycle 1: labs, pre-dose safety check, the dose arithmetic, then save.
    page.get_by_role("link", name="Dosing").first.click()
    page.get_by_role("link", name="Record a cycle").click()
    page.get_by_label("Day 1 (dose date)").fill("2024-03-04")
    page.get_by_label("Labs drawn on").fill("2024-03-03")
    page.get_by_label("Platelets (x10^9/L)").fill("133")
    page.get_by_label("ANC (x10^9/L)").fill("2.1")
    page.get_by_label("Haemoglobin (g/L)").fill("112")
    page.get_by_label("Active acute GVHD grade").select_option("0")
    page.get_by_label("Active liver GVHD").select_option("false")
    page.get_by_label("SOS/VOD").select_option("false")
    page.get_by_label("Height (cm)").fill("180")
    page.get_by_label("Weight (kg)").fill("80")
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_text("0.3 mg/m² x 2.00 m²").first).to_be_visible()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("cell", name="2024-03-04").first).to_be_visible()
    patient.refresh_from_db()
    cycle = patient.cycles.get()
    assert (cycle.number, cycle.bsa_m2, cycle.dose_mg) == (1, Decimal("2.00"), Decimal("0.60"))

    # An adverse event, found with the term picker.
    page.get_by_role("link", name="Safety").first.click()
    page.get_by_role("link", name="Record an adverse event").click()
    page.get_by_label("Search the CTCAE dictionary").fill("nausea")
    term = page.get_by_label("CTCAE term")
    # The picker never chooses for the coordinator: a blank first option, then the matches.
    expect(term.locator("option").nth(1)).to_contain_text("Nausea")
    term.select_option(index=1)
    page.get_by_label("Grade").select_option("1")
    page.get_by_label("Onset").fill("2024-03-06")
    page.get_by_label("Attribution to INO").select_option("possible")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("cell", name="Nausea").first).to_be_visible()
    assert patient.adverse_events.get().term.term == "Nausea"
    page.screenshot(path=str(ARTIFACTS / "coordinator-safety-tab.png"), full_page=True)
