"""Issue 16 item 18 in a real browser: a coordinator registers a patient at the site that
comes preselected, goes through transplant, consent and screening with "Save and continue",
enrols from the "Enrol" button of the eligible screening, records cycle 1, its adverse
event and assessment the same way, then cycle 2, confirming the GVHD/SOS status carried
forward from cycle 1."""

import datetime

import pytest
from playwright.sync_api import expect

from dosing.models import Cycle
from patients.models import Assessment, Patient
from tests.browser.conftest import ARTIFACTS
from tests.factories import PASSWORD, DoseLevelFactory, ProtocolVersionFactory
from trial.models import Trial, TrialComputation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_register_to_cycle_2_with_save_and_continue(page, world):  # type: ignore[no-untyped-def]
    trial = world["trial"]
    # The screening must be valid today for its Enrol button, with cycle 2 already past:
    # longer windows than the seed trial's (labs valid 60 days, enrolment to day +130).
    Trial.objects.filter(pk=trial.pk).update(screening_lab_days=60, enrol_day_max=130)
    ProtocolVersionFactory(trial=trial, version="1", effective=datetime.date(2017, 7, 1))
    DoseLevelFactory(trial=trial, level=1)
    TrialComputation.objects.create(
        trial=trial, kind="escalation", request_seq=1, computed_seq=1,
        data={"open_slots": [{"dose_level": 1, "slots": 3}]},
    )  # fmt: skip
    today = trial.local_today()

    def day(n: int) -> str:
        return (today + datetime.timedelta(days=n)).isoformat()

    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("coord_a")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # Registration: coord_a has one site, already chosen.
    page.goto(f"/trials/{trial.pk}/patients/new/")
    expect(page.get_by_label("Site")).to_have_value(str(world["site_a"].pk))
    page.get_by_label("Subject ID").fill("SA-007")
    page.get_by_label("Sex").select_option("male")
    page.get_by_label("Birth year").fill("1980")
    page.get_by_label("Diagnosis").select_option("b_all")
    page.get_by_label("CD22 positive").select_option("true")
    page.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_text("SA-007 registered. Next: the transplant.")).to_be_visible()
    expect(page.get_by_role("heading", name="Transplant of SA-007")).to_be_visible()
    assert Patient.objects.get(subject_id="SA-007").site == world["site_a"]

    page.get_by_label("HCT date (day 0)").fill(day(-100))
    page.get_by_label("Disease status at HCT").select_option("cr1")
    page.locator("#id_conditioning").select_option("ric")
    page.get_by_label("MRD positive before HCT").select_option("false")
    page.get_by_label("MRD positive after HCT").select_option("false")
    page.get_by_label("CR confirmed at day +30").select_option("true")
    page.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_text("Transplant recorded. Next: the consent.")).to_be_visible()

    page.get_by_label("Protocol version consented to").select_option(index=1)
    page.get_by_label("Consent date").fill(day(-62))
    page.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_text("Next: the screening.")).to_be_visible()

    page.get_by_label("Screening date").fill(day(-58))
    page.get_by_label("Labs drawn on").fill(day(-59))
    page.get_by_label("Platelets (x10^9/L)").fill("133")
    page.get_by_label("ANC (x10^9/L)").fill("2.1")
    page.get_by_label("Active acute GVHD grade").fill("0")
    page.get_by_label("Active liver GVHD").select_option("false")
    page.get_by_label("History of SOS/VOD").select_option("false")
    page.get_by_role("button", name="Save", exact=True).click()  # plain Save: the result page
    expect(page.get_by_role("heading", name=f"Screening of {day(-58)}: Eligible")).to_be_visible()

    # The eligible screening, still valid today, offers the enrolment.
    page.get_by_role("link", name="Enrol SA-007").click()
    expect(page.locator("#enrolment-assignment")).to_contain_text("Saving enrols the patient at level 1")
    page.get_by_label("Enrolment date").fill(day(-57))
    page.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_text("SA-007 enrolled at L1")).to_be_visible()
    expect(page.get_by_role("heading", name="Record a cycle for SA-007")).to_be_visible()

    # Cycle 1: nothing to carry forward yet.
    expect(page.locator("#carried-forward")).to_have_count(0)
    page.get_by_label("Day 1 (dose date)").fill(day(-56))
    page.get_by_label("Labs drawn on").fill(day(-57))
    page.get_by_label("Platelets (x10^9/L)").fill("133")
    page.get_by_label("ANC (x10^9/L)").fill("2.1")
    page.get_by_label("Active acute GVHD grade").select_option("0")
    page.get_by_label("Active liver GVHD").select_option("false")
    page.get_by_label("SOS/VOD").select_option("false")
    page.get_by_label("Height (cm)").fill("180")
    page.get_by_label("Weight (kg)").fill("80")
    page.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_text("Cycle 1 recorded. Next: the adverse events of this visit.")).to_be_visible()

    page.get_by_label("Search the CTCAE dictionary").fill("nausea")
    term = page.get_by_label("CTCAE term")
    expect(term.locator("option").nth(1)).to_contain_text("Nausea")
    term.select_option(index=1)
    page.get_by_label("Grade").select_option("1")
    page.get_by_label("Onset").fill(day(-54))
    page.get_by_label("Attribution to INO").select_option("possible")
    page.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_text("Adverse event recorded: Nausea, grade 1. Next: the assessments due")).to_be_visible()

    # The last form of the visit: Save only.
    expect(page.get_by_role("button", name="Save and continue")).to_have_count(0)
    page.get_by_label("Kind").select_option("mrd")
    page.get_by_label("Date").fill(day(-50))
    page.get_by_label("Method").select_option("flow")
    page.get_by_label("Result").select_option("negative")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("recorded.")).to_be_visible()
    patient = Patient.objects.get(subject_id="SA-007")
    assert Assessment.objects.get(patient=patient).kind == "mrd"

    # Cycle 2: the status of the cycle 1 visit is proposed, to confirm.
    page.goto(f"/patients/{patient.pk}/cycles/new/")
    expect(page.locator("#carried-forward")).to_contain_text(f"the cycle 1 visit of {day(-56)}")
    expect(page.get_by_label("Active acute GVHD grade")).to_have_value("0")
    expect(page.get_by_label("Active liver GVHD")).to_have_value("false")
    expect(page.get_by_label("SOS/VOD")).to_have_value("false")
    page.get_by_label("Cycle number").fill("2")
    page.get_by_label("Day 1 (dose date)").fill(day(-28))
    page.get_by_label("Labs drawn on").fill(day(-29))
    page.get_by_label("Platelets (x10^9/L)").fill("140")
    page.get_by_label("ANC (x10^9/L)").fill("2.4")
    page.get_by_label("Height (cm)").fill("180")
    page.get_by_label("Weight (kg)").fill("80")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#id_status_confirmed-error")).to_contain_text("confirm it is still the status")
    assert not Cycle.objects.filter(patient=patient, number=2).exists()
    page.screenshot(path=str(ARTIFACTS / "cycle-2-carried-forward.png"), full_page=True)
    page.get_by_label("I confirm the GVHD/SOS status carried forward").check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Cycle 2 recorded.")).to_be_visible()
    cycle = Cycle.objects.get(patient=patient, number=2)
    assert (cycle.acute_gvhd_grade, cycle.liver_gvhd, cycle.sos) == (0, False, False)
