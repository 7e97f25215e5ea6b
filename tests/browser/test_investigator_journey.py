"""Journey 2 (issue 9): an investigator adjudicates a DLT candidate, signs the escalation
decision, and the ladder on the dashboard updates. Real browser, real pages."""

import datetime
import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from analysis.services import computation_run
from safety.models import CtcaeTerm
from tests.browser.conftest import ARTIFACTS
from tests.factories import (
    PASSWORD,
    AdverseEventFactory,
    CycleFactory,
    DoseLevelFactory,
    PatientEventFactory,
    PatientFactory,
    TransplantFactory,
)
from trial.services import computation_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
START = datetime.date(2024, 3, 1)


def _trial(world):  # type: ignore[no-untyped-def]
    levels = [
        DoseLevelFactory(trial=world["trial"], level=n, dose_mg_m2=Decimal(d)) for n, d in ((1, "0.3"), (2, "0.4"))
    ]
    patients = []
    for i in range(3):
        p = PatientFactory(site=world["site_a"], trial=world["trial"], dose_level=levels[0], enrolled_on=START)
        TransplantFactory(patient=p, date=START - datetime.timedelta(days=70))
        for number, offset in ((1, 0), (2, 28)):
            CycleFactory(
                patient=p, number=number, dose_level=levels[0], day1=START + datetime.timedelta(days=offset + i)
            )
        PatientEventFactory(patient=p, kind="last_contact", date=START + datetime.timedelta(days=200))
        patients.append(p)
    AdverseEventFactory(
        patient=patients[0], term=CtcaeTerm.objects.get(term="Nausea"), grade=3, attribution="possible",
        onset=START + datetime.timedelta(days=5), resolved=START + datetime.timedelta(days=8),
    )  # fmt: skip
    for kind in ("escalation", "survival"):
        computation_request(world["trial"].pk, kind)
        computation_run(world["trial"].pk, kind)
    return patients


def test_adjudicate_then_sign_escalation(page, world):  # type: ignore[no-untyped-def]
    patients = _trial(world)
    trial_id = world["trial"].pk
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("inv")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.goto(f"/trials/{trial_id}/dashboard/")
    expect(page.get_by_role("heading", name="DLT candidates awaiting adjudication")).to_be_visible()
    expect(
        page.locator("section", has_text="DLT candidates awaiting").get_by_role("link", name=patients[0].subject_id)
    ).to_be_visible()

    page.goto(f"/trials/{trial_id}/dlt/")
    page.get_by_role("link", name="Adjudicate").first.click()
    page.get_by_label("Rejected: not a DLT").check()
    page.get_by_label("Rationale").fill("Nausea resolved in 3 days with antiemetics; not dose-limiting.")
    page.get_by_label("Re-enter your password to sign").fill(PASSWORD)
    page.get_by_role("button", name="Sign the adjudication").click()
    expect(page.get_by_text(re.compile("rejected", re.I)).first).to_be_visible()

    page.goto(f"/trials/{trial_id}/escalation/")
    expect(page.get_by_role("heading", name=re.compile("Awaiting signature: escalate", re.IGNORECASE))).to_be_visible()
    page.get_by_label("Basis of the decision").fill("SRC meeting 2024-05-10: L1 0/3 DLT")
    page.get_by_label("Re-enter your password to sign").fill(PASSWORD)
    page.get_by_role("button", name="Sign decision").click()
    expect(page.get_by_text("Decision signed")).to_be_visible()

    page.goto(f"/trials/{trial_id}/dashboard/")
    ladder = page.locator("table.ladder")
    expect(ladder.locator("tr", has_text="L2")).to_contain_text("3")  # three open slots at level 2
    expect(page.locator("#chart-os canvas, #chart-os .u-over").first).to_be_attached()
    page.screenshot(path=str(ARTIFACTS / "investigator-dashboard.png"), full_page=True)
