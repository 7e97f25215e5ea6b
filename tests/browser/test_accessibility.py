"""Keyboard-only use and a tablet-width layout, in a real browser."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.factories import PASSWORD
from tests.integration.test_dashboard import _populate
from tests.page_walk import seed_world, walk

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


# ---------------------------------------------------------------- axe-core over every page
# Issue 19 acceptance: axe-core (vendored, tests/browser/vendor/axe.min.js, MPL-2.0) over
# every page of the app that a role reaches by links (not the vendored API docs): 0 serious
# or critical violations, with the experimental rules (label-content-name-mismatch) on.
# Issue 16 item 20: no page scrolls sideways on a 390 px phone.

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice", "experimental"]
AXE_RUN = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return result.violations.filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => v.id + " (" + v.impact + ", " + v.nodes.length + "): " + v.nodes.slice(0, 2).map(n => n.target.join(" ")).join("; "));
}"""


def _sign_in(page, username):  # type: ignore[no-untyped-def]
    page.context.clear_cookies()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your trials")).to_be_visible()


def _axe_walk(page, users, width):  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": width, "height": 900})
    problems, pages = [], 0
    for role, user in users.items():
        _sign_in(page, user.username)

        def fetch(path):  # type: ignore[no-untyped-def]
            response = page.goto(path)
            if response is None or response.status != 200 or "html" not in response.headers.get("content-type", ""):
                return None
            page.wait_for_load_state("networkidle")  # the dashboard's charts come from the API
            return page.content()

        for path, _ in walk(fetch, per_pattern_limit=1):
            pages += 1
            page.evaluate(AXE)  # through the debugging protocol: the pages' CSP is not loosened
            for violation in page.evaluate(AXE_RUN, AXE_TAGS):
                problems.append(f"{role} {path} @{width}px: {violation}")
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            if overflow > 0:
                problems.append(f"{role} {path} @{width}px: {overflow}px of sideways scrolling")
    return problems, pages


def test_axe_and_phone_width_over_every_page_as_every_role(page):  # type: ignore[no-untyped-def]
    _, users = seed_world()
    problems, pages = _axe_walk(page, users, 390)
    assert pages > 60, pages
    desktop, _ = _axe_walk(page, {"investigator": users["investigator"]}, 1280)
    assert not problems + desktop, "\n".join(problems + desktop)
