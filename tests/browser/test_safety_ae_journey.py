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


def _sign_in_and_open_ae_form(page, patient):  # type: ignore[no-untyped-def]
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("coord_a")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"/patients/{patient.pk}/safety/")
    page.get_by_role("link", name="Record an adverse event").click()


def _option_texts(select):  # type: ignore[no-untyped-def]
    return select.locator("option").all_inner_texts()


def _option_values(select):  # type: ignore[no-untyped-def]
    return [o.get_attribute("value") for o in select.locator("option").all()]


def test_record_an_ae_with_the_term_picker(page, world):  # type: ignore[no-untyped-def]
    """Issue 16 / 19.1: "thrombo" lists both terms, nothing is auto-selected, Enter in the
    search saves nothing, the grade starts blank and offers only the term's grades."""
    patient = make_patient(world)
    _sign_in_and_open_ae_form(page, patient)
    form_url = page.url
    term = page.get_by_label("CTCAE term")
    grade = page.get_by_label("Grade")
    expect(grade).to_have_value("")

    search = page.get_by_label("Search the CTCAE dictionary")
    search.fill("thrombo")
    expect(page.get_by_text(re.compile(r"\d+ matching terms"))).to_be_visible()
    texts = _option_texts(term)
    assert any(t.startswith("Platelet count decreased") for t in texts), texts
    assert any(t.startswith("Thromboembolic event") for t in texts), texts
    expect(term).to_have_value("")  # never auto-selected
    search.press("Enter")
    page.wait_for_timeout(500)
    assert page.url == form_url
    assert not AdverseEvent.objects.exists()  # Enter in the search box saved nothing

    term.select_option(label=next(t for t in texts if t.startswith("Platelet count decreased")))
    assert _option_values(grade) == ["", "1", "2", "3", "4"]  # Platelet count decreased stops at 4
    expect(grade).to_have_value("")
    page.get_by_label("Onset").fill("2024-04-15")
    page.get_by_label("Attribution to INO").select_option("possible")
    page.get_by_role("button", name="Save", exact=True).click()
    # No grade chosen: nothing saved, the grade is named.
    expect(page.locator("#id_grade-error")).to_be_visible()
    assert not AdverseEvent.objects.exists()

    page.get_by_label("Grade").select_option("3")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/patients/{patient.pk}/safety/$"))
    expect(page.get_by_role("cell", name="Platelet count decreased 10035528")).to_be_visible()
    expect(page.get_by_role("cell", name="C1", exact=True)).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "safety-ae-recorded.png"), full_page=True)
    assert AdverseEvent.objects.get().grade == 3


def test_vod_finds_sos_whose_grades_start_at_2_and_a_forged_grade_is_refused(page, world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    _sign_in_and_open_ae_form(page, patient)
    term = page.get_by_label("CTCAE term")
    grade = page.get_by_label("Grade")
    page.get_by_label("Search the CTCAE dictionary").fill("VOD")
    expect(term.locator("option").nth(1)).to_contain_text("Sinusoidal obstruction syndrome")
    expect(term).to_have_value("")
    term.select_option(index=1)
    assert _option_values(grade) == ["", "2", "3", "4", "5"]

    # A grade the term does not define, posted anyway (no such option offered): the
    # service refuses it, next to the field.
    page.get_by_label("Search the CTCAE dictionary").fill("platelet count")
    expect(term.locator("option").nth(1)).to_contain_text("Platelet count decreased")
    term.select_option(index=1)
    grade.evaluate("s => { const o = document.createElement('option'); o.value = '5'; o.text = '5'; s.add(o); }")
    grade.select_option("5")
    page.get_by_label("Onset").fill("2024-04-15")
    page.get_by_label("Attribution to INO").select_option("possible")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#id_grade-error")).to_contain_text("Grade 5 is not defined for 'Platelet count decreased'")
    assert _option_values(page.get_by_label("Grade")) == ["", "1", "2", "3", "4"]
    expect(page.get_by_label("Grade")).to_have_value("")
    assert not AdverseEvent.objects.exists()
