"""A coordinator records an AE with the search-as-you-type term picker, is told the grade
the term does not define next to the field, corrects it and sees the AE on the Safety tab."""

import re

import pytest
from playwright.sync_api import expect

from safety.models import AdverseEvent
from tests.browser.conftest import ARTIFACTS
from tests.factories import PASSWORD
from tests.integration.test_safety_services import make_patient

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_record_an_ae_with_the_term_picker(page, world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("coord_a")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"/patients/{patient.pk}/safety/")
    page.get_by_role("link", name="Record an adverse event").click()

    page.get_by_label("Search the CTCAE dictionary").fill("platelet")
    term = page.get_by_label("CTCAE term")
    expect(term.locator("option").first).to_contain_text("Platelet count decreased")
    expect(page.get_by_text(re.compile(r"\d+ matching term"))).to_be_visible()
    term.select_option(index=0)
    page.get_by_label("Grade").select_option("5")
    page.get_by_label("Onset").fill("2024-04-15")
    page.get_by_label("Attribution to INO").select_option("possible")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#id_grade-error")).to_contain_text("Grade 5 is not defined for 'Platelet count decreased'")
    assert not AdverseEvent.objects.exists()

    page.get_by_label("Grade").select_option("3")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(rf"/patients/{patient.pk}/safety/$"))
    expect(page.get_by_role("cell", name="Platelet count decreased 10035528")).to_be_visible()
    expect(page.get_by_role("cell", name="C1", exact=True)).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "safety-ae-recorded.png"), full_page=True)
    assert AdverseEvent.objects.get().grade == 3
