"""Browser journeys of issue 16 items 2 and 18 / issue 19 item 3:

- a coordinator downgrades the AE a signed DLT rests on; the investigator sees the
  invalidated adjudication on the DLT review and the patient page, the escalation says
  it needs review, and the investigator re-adjudicates (supersedes) it;
- the coordinator's enrol page says before Save that the patient goes to the expansion
  slot at the signed MTD, and saving enrols there.
"""

import datetime
import re

import pytest
from playwright.sync_api import expect

from analysis.services import computation_run
from safety import services as safety_services
from tests.factories import PASSWORD
from tests.integration.test_enrolment_slots import _mtd_signed_at_level_4
from tests.integration.test_patients_services import consented, levels, registered, screened  # noqa: F401
from tests.integration.test_safety_services import adjudicate, ae_data, make_patient
from trial.models import TrialComputation
from trial.services import computation_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _recompute(trial) -> None:  # type: ignore[no-untyped-def]
    for kind in (TrialComputation.Kind.ESCALATION, TrialComputation.Kind.DASHBOARD):
        computation_request(trial.pk, kind)
        computation_run(trial.pk, kind)


def test_investigator_sees_the_invalidated_adjudication_and_re_adjudicates(page, world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    ae = safety_services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(grade=3))
    adj = adjudicate(world, patient, adverse_event=ae)
    safety_services.ae_update(user=world["coordinator_a"], ae=ae, changes={"grade": 2}, reason="source: grade 2")
    _recompute(world["trial"])
    trial_id = world["trial"].pk

    _sign_in(page, "inv")
    expect(page.get_by_text("Signed DLT decisions to re-adjudicate (AE edited after signing): 1")).to_be_visible()
    page.goto(f"/trials/{trial_id}/dlt/")
    review = page.locator("#readjudication")
    expect(review).to_contain_text("grade 3 -> 2")
    review.get_by_role("link", name=patient.subject_id).click()
    expect(page.locator("#readjudication")).to_contain_text("must re-adjudicate")
    row = page.locator("tr", has_text="no longer flagged by the rules")
    expect(row).to_contain_text("signature invalidated: AE edited (grade 3 -> 2)")

    page.goto(f"/trials/{trial_id}/escalation/")
    expect(page.locator("#needs-review")).to_contain_text("1 DLT adjudication to re-adjudicate")

    page.goto(f"/dlt-adjudications/{adj.pk}/")
    expect(page.get_by_text(re.compile("Record edited|edited after signing")).first).to_be_visible()
    page.get_by_role("link", name="Re-adjudicate").click()
    expect(page.get_by_text("The adverse event it rested on was edited after signing: grade 3 -> 2")).to_be_visible()
    page.get_by_label("Rejected: not a DLT").check()
    page.get_by_label("Rationale").fill("Grade 2 nausea per source: not dose-limiting.")
    page.get_by_label("Re-enter your password to sign").fill(PASSWORD)
    page.get_by_role("button", name="Sign the adjudication").click()
    expect(page.get_by_text("Adjudication signed.")).to_be_visible()
    expect(page.locator("#readjudication")).to_have_count(0)

    _recompute(world["trial"])
    page.goto(f"/trials/{trial_id}/escalation/")
    expect(page.locator("#needs-review")).to_have_count(0)
    page.screenshot(
        path=str(__import__("tests.browser.conftest", fromlist=["ARTIFACTS"]).ARTIFACTS / "readjudicated.png")
    )


def test_the_enrol_page_shows_the_slot_before_save(page, world, levels, screened):  # type: ignore[no-untyped-def]  # noqa: F811
    _mtd_signed_at_level_4(world, levels)
    _sign_in(page, "coord_a")
    page.goto(f"/patients/{screened.pk}/enrol/")
    slots = page.locator("#enrolment-assignment")
    expect(slots).to_contain_text("Open slots: level 4 (0.6 mg/m²): 2.")
    expect(slots).to_contain_text(
        "Saving enrols the patient at level 4 (0.6 mg/m²), an expansion place at the declared MTD"
    )
    page.get_by_label("Enrolment date").fill(datetime.date(2024, 3, 2).isoformat())
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text(f"{screened.subject_id} enrolled at L4")).to_be_visible()
