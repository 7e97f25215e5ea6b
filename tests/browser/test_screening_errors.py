"""Issue 19 item 7 in a real browser: a screening with several problems lists them all in
the error summary in one round (the form's own and the service's), and the result page
tells pass, fail and missing data apart by word, icon and colour, with axe-core clean."""

import datetime

import pytest
from playwright.sync_api import expect

from patients.models import Screening
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_accessibility import AXE, AXE_RUN, AXE_TAGS
from tests.factories import PASSWORD, ConsentFactory, PatientFactory, TransplantFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_screening_errors_in_one_round_and_outcomes_told_apart(page, world):  # type: ignore[no-untyped-def]
    patient = PatientFactory(
        trial=world["trial"], site=world["site_a"], subject_id="SA-001", diagnosis="b_all", cd22_positive=True
    )
    TransplantFactory(patient=patient, date=datetime.date(2024, 1, 10))
    ConsentFactory(patient=patient, date=datetime.date(2024, 2, 20))

    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("coord_a")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"/patients/{patient.pk}/screenings/new/")

    page.get_by_label("Screening date").fill("2024-03-01")
    page.get_by_label("Labs drawn on").fill("2024-03-05")  # after the screening date (service rule)
    page.get_by_label("Platelets (x10^9/L)").fill("50000")  # unit slip (service rule)
    page.get_by_label("ANC (x10^9/L)").fill("1200")  # unit slip (service rule)
    page.get_by_label("Active acute GVHD grade").fill("9")  # above 4 (the form's own check)
    page.get_by_role("button", name="Save", exact=True).click()

    summary = page.locator("[data-error-summary]")
    expect(summary).to_be_visible()
    expect(summary.get_by_role("heading")).to_have_text("Please correct 4 problems")
    items = summary.locator("li")
    expect(items).to_have_count(4)
    for text in ("Labs drawn on:", "Platelets (x10^9/L):", "ANC (x10^9/L):", "Active acute GVHD grade:"):
        expect(summary.get_by_role("link", name=text)).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "screening-errors-one-round.png"), full_page=True)
    assert not Screening.objects.exists()

    # Corrected: platelets too low (fail), ANC and liver GVHD not recorded (missing).
    page.get_by_label("Labs drawn on").fill("2024-02-28")
    page.get_by_label("Platelets (x10^9/L)").fill("30")
    page.get_by_label("ANC (x10^9/L)").fill("")
    page.get_by_label("Active acute GVHD grade").fill("0")
    page.get_by_label("History of SOS/VOD").select_option("false")
    page.get_by_role("button", name="Save", exact=True).click()
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text("Not eligible (screen failure): 1 criterion failed, 1 missing")

    colours = {}
    for css, word in (("pass", "Pass"), ("fail", "Fail"), ("missing", "Missing data")):
        badge = page.locator(f"table .outcome-{css}").first
        expect(badge).to_be_visible()
        expect(badge).to_have_text(f"{'✓✗?'[['pass', 'fail', 'missing'].index(css)]} {word}")
        colours[css] = badge.evaluate("e => getComputedStyle(e).backgroundColor + ' ' + getComputedStyle(e).color")
    assert len(set(colours.values())) == 3, colours  # three distinct colourings, each with its word
    page.evaluate(AXE)
    assert page.evaluate(AXE_RUN, AXE_TAGS) == []
    page.screenshot(path=str(ARTIFACTS / "screening-outcomes.png"), full_page=True)

    # The eligibility tab: the same words, and the criteria by their labels.
    page.get_by_role("link", name="transplant and eligibility").click()
    expect(page.locator("td .outcome-fail").first).to_contain_text("Not eligible (screen failure)")
    expect(page.locator("td .outcome-missing").first).to_contain_text("Missing data")
    expect(page.get_by_text("Graft function (platelets, ANC)")).to_be_visible()
    page.evaluate(AXE)
    assert page.evaluate(AXE_RUN, AXE_TAGS) == []
