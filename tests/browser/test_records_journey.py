"""Issue 19 items 2, 4, 5, 8 in the browser: a coordinator corrects a lab panel on its
own page and voids an AE entered in error; the casebook audit trail shows both, filtered;
the data manager sees the pre-lock checklist and locks only with an acknowledged override;
the locked casebook's edit pages then show no form."""

import datetime
import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from dosing.models import LabPanel
from patients.models import CasebookLock
from safety.models import AdverseEvent
from tests.browser.test_query_journey import _sign_in, _sign_out
from tests.factories import PASSWORD, AdverseEventFactory
from tests.integration.test_safety_services import make_patient

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_lab_correction_void_audit_trail_and_lock_checklist(page, world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    panel = LabPanel.objects.create(patient=patient, date=datetime.date(2024, 4, 20), platelets=Decimal("80"))
    ae = AdverseEventFactory(patient=patient, grade=2)

    _sign_in(page, "coord_a")
    page.goto(f"/patients/{patient.pk}/dosing/")
    page.get_by_role("link", name="View and history").click()
    expect(page).to_have_url(re.compile(rf"/labs/{panel.pk}/$"))
    page.get_by_role("link", name="Correct these labs").click()
    page.get_by_label("platelets (x10^9/L)").fill("8")
    page.get_by_label("Reason for change").fill("lab report says 8")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/labs/{panel.pk}/$"))
    expect(page.locator("table.history")).to_contain_text("lab report says 8")
    assert LabPanel.objects.get(pk=panel.pk).platelets == Decimal("8.0")

    page.goto(f"/patients/{patient.pk}/safety/")
    page.get_by_role("link", name="Void (entered in error)").first.click()
    page.get_by_label("Reason for voiding").fill("entered on the wrong patient")
    page.get_by_role("button", name="Void this record").click()
    expect(page).to_have_url(re.compile(rf"/patients/{patient.pk}/safety/$"))
    assert AdverseEvent.all_objects.get(pk=ae.pk).void_reason == "entered on the wrong patient"
    voided = page.get_by_test_id("voided-safety.adverseevent")
    expect(voided).to_contain_text("entered on the wrong patient")
    expect(voided.locator("del")).to_have_count(1)

    page.goto(f"/patients/{patient.pk}/history/")
    table = page.locator("table.casebook-history")
    expect(table).to_contain_text("voided: entered on the wrong patient")
    expect(table).to_contain_text("lab report says 8")
    page.get_by_label("Record type").select_option("dosing.labpanel")
    page.get_by_role("button", name="Filter").click()
    expect(table).to_contain_text("lab report says 8")
    expect(table).not_to_contain_text("voided: entered on the wrong patient")
    _sign_out(page)

    _sign_in(page, "dman")
    page.goto(f"/patients/{patient.pk}/lock/")
    checklist = page.get_by_test_id("lock-checklist")
    expect(checklist).to_contain_text("not source verified")
    expect(checklist).to_contain_text("no valid investigator review signature")
    page.get_by_label("Locked: nothing changes").check()
    page.get_by_label("Re-enter your password to sign").fill(PASSWORD)
    page.get_by_role("button", name="Sign and apply").click()
    expect(page.get_by_role("alert").first).to_contain_text("The pre-lock checklist is not clear")
    assert not CasebookLock.objects.filter(patient=patient).exists()
    page.get_by_label("Locked: nothing changes").check()
    page.get_by_label("I acknowledge the open checklist items and lock anyway").check()
    page.get_by_label("Reason for locking over the checklist").fill("site closed; sponsor memo 12")
    page.get_by_label("Re-enter your password to sign").fill(PASSWORD)
    page.get_by_role("button", name="Sign and apply").click()
    expect(page.get_by_test_id("lock-state")).to_have_text("locked")
    assert "site closed; sponsor memo 12" in CasebookLock.objects.get(patient=patient).reason
    _sign_out(page)

    _sign_in(page, "coord_a")
    page.goto(f"/labs/{panel.pk}/correct/")
    expect(page.get_by_role("heading", name="This casebook cannot be edited")).to_be_visible()
    assert page.locator("main form[method=post]").count() == 0
