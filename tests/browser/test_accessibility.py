"""Keyboard-only use and a tablet-width layout, in a real browser."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.factories import PASSWORD
from tests.integration.test_dashboard import _populate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_and_a_form_error_with_the_keyboard_only(page, world):  # type: ignore[no-untyped-def]
    page.goto("/accounts/login/")
    page.keyboard.press("Tab")  # skip past the brand link to the first field
    while page.evaluate("document.activeElement.id") != "id_username":
        page.keyboard.press("Tab")
    page.keyboard.type("coord_a")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your trials")).to_be_visible()

    page.goto(f"/trials/{world['trial'].pk}/patients/new/")
    page.get_by_label("Subject ID").focus()
    page.keyboard.type("SA-1")
    page.keyboard.press("Enter")  # submits the form from a text field
    error = page.locator("#id_subject_id-error")
    expect(error).to_be_visible()
    # The message is tied to its field: the label names the field, the error follows it.
    expect(page.locator(".field.has-error", has=page.get_by_label("Subject ID"))).to_contain_text(re.compile(r"\S"))


def test_dashboard_fits_a_tablet(page, world):  # type: ignore[no-untyped-def]
    _populate(world, 6)
    page.set_viewport_size({"width": 768, "height": 1024})
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("inv")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"/trials/{world['trial'].pk}/dashboard/")
    expect(page.locator("#chart-os .u-over")).to_be_attached()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a 768px tablet"
    page.screenshot(path=str(ARTIFACTS / "dashboard-tablet.png"), full_page=True)
