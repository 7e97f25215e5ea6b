"""Planning journey (issue 17): an investigator opens the planning page from the trial,
gives true DLT probabilities, compares 3+3 with BOIN and mTPI-2, starts the simulation and
watches the progress bar (polling, CSP-strict script) until the results appear side by
side, the real Celery worker doing the work."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.factories import PASSWORD, DoseLevelFactory

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_investigator_compares_designs_and_sees_the_progress_reach_the_results(page, world, real_worker):  # type: ignore[no-untyped-def]
    for level in (1, 2, 3, 4):
        DoseLevelFactory(trial=world["trial"], level=level, dose_mg_m2=str(0.2 * level))
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("inv")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="TRIAL-T").click()
    page.get_by_role("link", name="Compare designs").click()
    expect(page.get_by_text("The trial has 4 dose levels")).to_be_visible()
    page.get_by_label("True DLT probabilities").fill("0.05, 0.12, 0.25, 0.40")
    page.get_by_label("BOIN", exact=True).check()
    page.get_by_label("mTPI-2").check()
    # Big enough (~1-3 s of simulation) for the bar to be seen moving; small for CI.
    page.get_by_label("Simulated trials").fill("20000")
    page.get_by_role("button", name="Start the simulation").click()
    expect(page.get_by_role("heading", name="Operating characteristics")).to_have_count(0)
    expect(page.locator("progress#simulation-bar")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "planning-progress.png"), full_page=True)
    # planning.js polls the status and reloads the page once the worker is done.
    expect(page.get_by_role("heading", name="Operating characteristics")).to_be_visible(timeout=60_000)
    expect(page.locator("progress")).to_have_count(0)
    table = page.locator("table.oc-table")
    for label in ("3+3 (Storer A)", "BOIN (target 0.3, cohorts of 3, N 30)", "mTPI-2 (target 0.3, cohorts of 3, N 30)"):
        expect(table.get_by_role("columnheader", name=label)).to_be_visible()
    expect(table.get_by_text("agrees: every value within 4 SE")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "planning-results.png"), full_page=True)
    page.get_by_role("link", name="Planning: compare designs").first.click()
    expect(page.get_by_role("cell", name="Done")).to_be_visible()  # the earlier runs' list
