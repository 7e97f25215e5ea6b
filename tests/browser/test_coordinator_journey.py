"""A coordinator signs in, registers a patient, corrects it with a reason, reads the
audit trail and signs out: in a real browser."""

import re

import pytest
from playwright.sync_api import expect

from patients.models import Patient
from tests.browser.conftest import ARTIFACTS
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_register_edit_with_reason_and_read_history(page, world):  # type: ignore[no-untyped-def]
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Username").fill("coord_a")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="TRIAL-T").click()
    page.get_by_role("link", name="Patients").click()
    page.get_by_role("link", name="Register a patient").click()

    # Only the coordinator's own site is offered.
    options = page.get_by_label("Site").locator("option").all_inner_texts()
    assert any("Site A hospital" in o for o in options) and not any("Site B" in o for o in options)
    page.get_by_label("Site").select_option(label="SA — Site A hospital")
    page.get_by_label("Subject ID").fill("SA-042")
    page.get_by_label("Sex").select_option("female")
    page.get_by_label("Birth year").fill("1977")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("heading", name="SA-042")).to_be_visible()

    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Birth year").fill("1976")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#id_reason_for_change-error")).to_contain_text(
        "A reason for change is required"
    )  # next to the field
    assert Patient.objects.get(subject_id="SA-042").birth_year == 1977

    page.get_by_label("Reason for change").fill("Source document shows 1976")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("link", name="Audit trail").click()
    row = page.locator("table.history tbody tr").first
    expect(row).to_contain_text("Source document shows 1976")
    expect(row.locator("td.old")).to_have_text("1977")
    expect(row.locator("td.new")).to_have_text("1976")
    page.screenshot(path=str(ARTIFACTS / "coordinator-audit-trail.png"), full_page=True)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.go_back()
    page.reload()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
