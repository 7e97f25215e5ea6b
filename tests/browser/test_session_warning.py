"""The idle-session warning in a real browser: it appears before the limit, "Stay signed
in" keeps the session, and doing nothing ends on the sign-in page."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_idle_warning_then_stay_then_sign_out(page, world, settings):  # type: ignore[no-untyped-def]
    settings.SESSION_IDLE_TIMEOUT = timedelta(seconds=6)
    settings.SESSION_IDLE_WARNING = timedelta(seconds=5)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("inv")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    warning = page.get_by_role("alertdialog")
    expect(warning).to_be_visible(timeout=5000)
    expect(warning).to_contain_text("You will be signed out in")
    page.screenshot(path=str(ARTIFACTS / "idle-session-warning.png"))
    page.get_by_role("button", name="Stay signed in").click()
    expect(warning).to_be_hidden(timeout=2000)
    # Nothing more: the page itself sends the user to sign in once the limit passes,
    # and the server has ended the session too.
    expect(page).to_have_url(re.compile(r"/accounts/login/"), timeout=15000)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
