"""Issue 12 acceptance: a monitor raises a query on an AE grade, the site coordinator
corrects the grade with a reason on the query page, the monitor closes the query; the
audit trail links the three (the AE's history row names the query, the thread names
that history row)."""

import re

import pytest
from playwright.sync_api import expect

from cleaning.models import DataQuery, QueryMessage
from safety.models import AdverseEvent
from tests.browser.conftest import ARTIFACTS
from tests.factories import PASSWORD, AdverseEventFactory
from tests.integration.test_safety_services import make_patient

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, username):  # type: ignore[no-untyped-def]
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def _sign_out(page):  # type: ignore[no-untyped-def]
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))


def test_monitor_raises_coordinator_corrects_monitor_closes(page, world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    ae = AdverseEventFactory(patient=patient, grade=3)

    # The monitor raises a query on the AE's grade from the Safety tab.
    _sign_in(page, "mon")
    page.goto(f"/patients/{patient.pk}/safety/")
    page.get_by_role("link", name="Raise query").first.click()
    page.get_by_label("On", exact=True).select_option("grade")
    page.get_by_label("Question").fill("The source document says grade 2: please check.")
    page.get_by_role("button", name="Raise query").click()
    query = DataQuery.objects.get()
    expect(page).to_have_url(re.compile(rf"/queries/{query.pk}/$"))
    expect(page.locator("h1 .badge")).to_have_text("Open")
    _sign_out(page)

    # The coordinator sees the badge on the grade and corrects it with a reason.
    _sign_in(page, "coord_a")
    page.goto(f"/patients/{patient.pk}/safety/")
    badge = page.locator(f'a[data-query="{query.pk}"][data-field="grade"]')
    expect(badge).to_be_visible()
    badge.click()
    expect(page).to_have_url(re.compile(rf"/queries/{query.pk}/$"))
    page.get_by_role("textbox", name="Answer").fill("Transcription error from the nursing notes.")
    page.get_by_label("New value of grade").fill("9")
    page.get_by_label("Reason for change").fill("transcription error")
    page.get_by_role("button", name="Send answer").click()
    expect(page.get_by_role("alert").first).to_contain_text("Grade")  # refused, named; nothing written
    assert AdverseEvent.objects.get().grade == 3
    page.get_by_label("New value of grade").fill("2")
    page.get_by_role("button", name="Send answer").click()
    expect(page.locator("h1 .badge")).to_have_text("Answered")
    expect(page.locator(".correction")).to_contain_text("3 → 2")
    assert AdverseEvent.objects.get().grade == 2
    _sign_out(page)

    # The monitor closes it; the thread links the AE's history row, whose reason names the query.
    _sign_in(page, "mon")
    page.goto(f"/queries/{query.pk}/")
    page.get_by_label("Closing note").fill("Verified against the source.")
    page.get_by_role("button", name="Close query").click()
    expect(page.locator("h1 .badge")).to_have_text("Closed")
    correction = QueryMessage.objects.get(kind="correction")
    history = AdverseEvent.history.get(history_id=correction.target_history_id)
    assert history.history_change_reason == f"Query #{query.pk}: transcription error" and history.grade == 2
    expect(page.locator(".correction")).to_contain_text(f"audit trail entry #{history.history_id}")
    page.screenshot(path=str(ARTIFACTS / "query-closed.png"), full_page=True)
    page.locator(f'a[data-history-id="{history.history_id}"]').click()
    expect(page).to_have_url(re.compile(rf"/adverse-events/{ae.pk}/history/$"))
    expect(page.get_by_role("cell", name=f"Query #{query.pk}: transcription error")).to_be_visible()
    assert [m.kind for m in QueryMessage.objects.filter(query=query)] == ["question", "correction", "close"]
