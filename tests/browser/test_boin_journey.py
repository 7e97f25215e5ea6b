"""Issue 17's journey in a real browser with the real Celery worker: an admin sets up a BOIN
trial in the Django admin (design, target, cohort size, dose levels, site, protocol
version, role grants); the investigator signs the escalation to level 2; a coordinator
enrols the second cohort at level 2 as the enrolment page offers it and enters cycle 1
and an adverse event; the investigator adjudicates it a DLT, which changes the decision
(computed by the worker) from escalate to stay; the investigator signs it; the
dose-transition pathways show every outcome of the next cohort.

BOIN, target 0.3, cohort size 3 (Liu & Yuan 2015; R BOIN get.boundary(0.3)): lambda_e =
0.236, lambda_d = 0.358. With 3 patients: escalate if DLTs <= floor(0.236 x 3) = 0,
de-escalate if >= ceiling(0.358 x 3) = 2, eliminate at 3 (P(p > 0.3 | Beta(4, 1)) =
0.992 > 0.95). With 6: escalate if <= 1, de-escalate if >= 3, eliminate at 4.
"""

import datetime
import re
import time

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS
from tests.factories import (
    PASSWORD,
    ConsentFactory,
    CycleFactory,
    PatientFactory,
    ScreeningFactory,
    TransplantFactory,
    UserFactory,
)
from trial.models import Trial, TrialComputation
from trial.services import computation_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DAY = datetime.timedelta(days=1)


def sign_in(page: Page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def reload_until(page: Page, url: str, text: str | re.Pattern[str], timeout: float = 30) -> None:
    """The worker recomputes after each write (seconds): reload the page until it shows ``text``
    and is not marked stale."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        if page.get_by_text(text).count() and not page.locator(".badge.stale").count():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not show {text!r} within {timeout} s:\n{page.inner_text('main')}")
        time.sleep(0.3)


def test_boin_trial_from_admin_setup_to_a_signed_stay(page, real_worker, live_server) -> None:  # type: ignore[no-untyped-def]
    today = timezone.localdate()  # the trial has no time zone of its own: the server's

    def day(n: int) -> str:
        return (today + datetime.timedelta(days=n)).isoformat()

    UserFactory(username="root", is_staff=True, is_superuser=True)
    UserFactory(username="coord", first_name="Cora", last_name="Coordinator")
    UserFactory(username="inv", first_name="Ivy", last_name="Investigator")

    # --- the admin sets the trial up in the Django admin ---------------------------------
    sign_in(page, "root")
    page.goto("/admin/trial/trial/add/")
    page.get_by_label("Code:", exact=True).fill("BOIN-1")
    page.get_by_label("Title:", exact=True).fill("Low-dose INO after allo-SCT, BOIN")
    page.get_by_label("Design:", exact=True).select_option("boin")
    page.get_by_label("Target DLT rate:", exact=True).fill("0.3")
    page.get_by_label("Cohort size:", exact=True).fill("3")
    page.get_by_label("Maximum sample size:", exact=True).fill("18")
    page.get_by_label("DLT window (cycles):", exact=True).fill("1")
    page.get_by_role("button", name="Add another Site").click()
    page.locator("#id_sites-0-code").fill("SA")
    page.locator("#id_sites-0-name").fill("Site A hospital")
    for i, dose in enumerate(("0.3", "0.4", "0.5", "0.6")):
        page.get_by_role("button", name="Add another Dose level").click()
        page.locator(f"#id_dose_levels-{i}-level").fill(str(i + 1))
        page.locator(f"#id_dose_levels-{i}-dose_mg_m2").fill(dose)
    page.get_by_role("button", name="Add another Protocol version").click()
    page.locator("#id_protocol_versions-0-version").fill("1")
    page.locator("#id_protocol_versions-0-effective").fill(day(-400))
    page.locator("#id_protocol_versions-0-max_cycles").fill("4")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    trial = Trial.objects.get(code="BOIN-1")
    assert (trial.design, trial.target_dlt_rate, trial.cohort_size, trial.max_sample_size) == ("boin", 0.3, 3, 18)
    assert [str(d) for d in trial.dose_levels.order_by("level").values_list("dose_mg_m2", flat=True)] == [
        "0.300", "0.400", "0.500", "0.600",
    ]  # fmt: skip
    site = trial.sites.get()
    for username, role, site_label in (("coord", "coordinator", str(site)), ("inv", "investigator", None)):
        page.goto("/admin/trial/rolegrant/add/")
        page.get_by_label("User:", exact=True).select_option(label=username)
        page.get_by_label("Trial:", exact=True).select_option(label="BOIN-1")
        page.get_by_label("Role:", exact=True).select_option(role)
        if site_label:
            page.get_by_label("Site:", exact=True).select_option(label=site_label)
        page.get_by_label("Reason:", exact=True).fill("Delegation log, BOIN-1")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    # --- the trial's history: cohort 1, 0 DLTs in 3 at level 1 (windows closed); cohort 2's
    # three patients screened eligible, ready to enrol.
    level1 = trial.dose_levels.get(level=1)
    for k in range(3):
        p = PatientFactory(site=site, subject_id=f"SA-00{k + 1}", dose_level=level1, enrolled_on=today - 150 * DAY)
        CycleFactory(patient=p, number=1, dose_level=level1, due_date=today - 148 * DAY, day1=today - 148 * DAY)
    waiting = []
    for k in range(3):
        p = PatientFactory(site=site, subject_id=f"SA-01{k + 1}", diagnosis="b_all", cd22_positive=True)
        TransplantFactory(patient=p, date=today - 100 * DAY)
        ConsentFactory(patient=p, date=today - 45 * DAY)
        ScreeningFactory(patient=p, date=today - 42 * DAY, lab_date=today - 43 * DAY)
        waiting.append(p)
    computation_request(trial.pk, TrialComputation.Kind.ESCALATION)  # the worker computes it

    # --- the investigator signs the escalation to level 2 ---------------------------------
    investigator = page.context.browser.new_page(base_url=live_server.url)
    sign_in(investigator, "inv")
    escalation = f"/trials/{trial.pk}/escalation/"
    reload_until(investigator, escalation, re.compile(r"Awaiting signature: Escalate \(level 2\)"))
    # 0 DLTs in 3 <= floor(0.236 x 3) = 0: escalate.
    expect(investigator.get_by_text("escalate if DLTs <= 0, de-escalate if >= 2: escalate")).to_be_visible()
    investigator.get_by_label("Basis of the decision").fill("SRC: level 1, 0 of 3 DLTs")
    investigator.get_by_label("Re-enter your password to sign").fill(PASSWORD)
    investigator.get_by_role("button", name="Sign decision").click()
    expect(investigator.get_by_text("Decision signed")).to_be_visible()

    # --- the coordinator enrols cohort 2 where the page says: level 2 ---------------------
    page.context.clear_cookies()  # the admin's session ends
    sign_in(page, "coord")
    for k, p in enumerate([*waiting[1:], waiting[0]]):
        reload_until(page, f"/patients/{p.pk}/enrol/", "Saving enrols the patient at level 2")
        expect(page.locator("#slots-h")).to_have_text("Dose assignment: BOIN (Liu & Yuan 2015)")
        expect(page.locator("#enrolment-assignment")).to_contain_text(f"level 2 (0.4 mg/m²): {3 - k}")
        page.get_by_label("Enrolment date").fill(day(-40))
        page.get_by_role("button", name="Save and continue").click()
        expect(page.get_by_text(f"{p.subject_id} enrolled at L2")).to_be_visible()
        page.get_by_label("Day 1 (dose date)").fill(day(-38))
        page.get_by_label("Labs drawn on").fill(day(-39))
        page.get_by_label("Platelets (x10^9/L)").fill("133")
        page.get_by_label("ANC (x10^9/L)").fill("2.1")
        page.get_by_label("Active acute GVHD grade").select_option("0")
        page.get_by_label("Active liver GVHD").select_option("false")
        page.get_by_label("SOS/VOD").select_option("false")
        page.get_by_label("Height (cm)").fill("170")
        page.get_by_label("Weight (kg)").fill("70")
        page.get_by_role("button", name="Save and continue").click()
        expect(page.get_by_text("Cycle 1 recorded.")).to_be_visible()

    # 0 DLTs in 3 at level 2 (windows closed): the worker's decision is to escalate to 3.
    reload_until(investigator, escalation, re.compile(r"Awaiting signature: Escalate \(level 3\)"))

    # The last page the flow opened: the adverse events of SA-011's cycle 1 visit.
    page.get_by_label("Search the CTCAE dictionary").fill("nausea")
    term = page.get_by_label("CTCAE term")
    expect(term.locator("option").nth(1)).to_contain_text("Nausea")
    term.select_option(index=1)
    page.get_by_label("Grade").select_option("3")
    page.get_by_label("Onset").fill(day(-30))
    page.get_by_label("Attribution to INO").select_option("probable")
    page.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_text("Adverse event recorded: Nausea, grade 3")).to_be_visible()
    # A DLT candidate awaiting adjudication: SA-011 cannot be counted yet.
    reload_until(investigator, escalation, re.compile(r"Current decision: Wait for DLT evaluation"))

    # --- the investigator adjudicates the DLT; the worker's decision changes ---------------
    investigator.goto(f"/trials/{trial.pk}/dlt/")
    investigator.get_by_role("link", name="Adjudicate").first.click()
    expect(investigator.get_by_role("heading", name="DLT adjudication: SA-011")).to_be_visible()
    investigator.get_by_label("Confirmed: this is a DLT").check()
    investigator.get_by_label("Rationale").fill("Grade 3 nausea on day 9 of cycle 1, probably related.")
    investigator.get_by_label("Re-enter your password to sign").fill(PASSWORD)
    investigator.get_by_role("button", name="Sign the adjudication").click()
    expect(investigator.get_by_text(re.compile("confirmed", re.I)).first).to_be_visible()

    # 1 DLT in 3 at level 2: above 0 (no escalation), below 2 (no de-escalation): stay.
    reload_until(investigator, escalation, re.compile(r"Awaiting signature: Stay at the current level \(level 2\)"))
    expect(investigator.get_by_text("escalate if DLTs <= 0, de-escalate if >= 2: stay")).to_be_visible()
    investigator.get_by_label("Basis of the decision").fill("SRC: level 2, 1 of 3 DLTs")
    investigator.get_by_label("Re-enter your password to sign").fill(PASSWORD)
    investigator.get_by_role("button", name="Sign decision").click()
    expect(investigator.get_by_text("Decision signed")).to_be_visible()
    reload_until(investigator, escalation, re.compile(r"Open slots: level 2: 3\."))

    # --- the pathways: the next cohort of 3 at level 2, with 1 DLT in 3 there already ------
    tree = investigator.locator("#pathways > ul.pathways > li")
    expect(tree).to_have_count(4)
    for i, (decision, after) in enumerate(
        (
            ("Escalate", ", next level 3"),  # 1 in 6 <= floor(0.236 x 6) = 1
            ("Stay at the current level", ", next level 2"),  # 2 in 6
            ("De-escalate", ", next level 1"),  # 3 in 6 >= ceiling(0.358 x 6) = 3
            ("De-escalate", ", next level 1 (eliminated: 2, 3, 4)"),  # 4 in 6: P(p > 0.3) > 0.95
        )
    ):
        expect(tree.nth(i)).to_contain_text(f"{i} DLT{'' if i == 1 else 's'} of 3 at level 2 → {decision}{after}")
        expect(tree.nth(i).locator("ul.pathways > li")).to_have_count(4)  # the cohort after
    investigator.screenshot(path=str(ARTIFACTS / "boin-escalation-pathways.png"), full_page=True)
    investigator.close()
    state = TrialComputation.objects.get(trial=trial, kind="escalation").data
    assert (state["decision"], state["recommended_dose_level"], state["open_slots"]) == (
        "stay", 2, [{"dose_level": 2, "slots": 3}],
    )  # fmt: skip
    assert [h["decision"] for h in state["history"]] == ["escalate", "stay"]
