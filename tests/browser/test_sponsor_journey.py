"""Journey 3 (issue 9): a sponsor signs in, finds the trial's exports and downloads the AE
dataset as CSV: de-identified, with SDTM column names. Real browser, real download."""

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.factories import PASSWORD, AdverseEventFactory, PatientFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sponsor_downloads_the_ae_export(page, world):  # type: ignore[no-untyped-def]
    patient = PatientFactory(site=world["site_b"], trial=world["trial"])
    AdverseEventFactory(patient=patient, grade=3)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("spon")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="TRIAL-T").click()
    expect(page.get_by_role("link", name="Patients")).to_have_count(0)  # no casebooks for a sponsor
    page.get_by_role("link", name="Exports").click()
    page.screenshot(path=str(ARTIFACTS / "sponsor-exports.png"), full_page=True)
    with page.expect_download() as info:
        page.get_by_role("link", name="AE CSV").click()
    download = info.value
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert len(rows) == 1
    row = rows[0]
    assert {"STUDYID", "USUBJID", "AETERM", "AEDECOD", "AETOXGR", "AESTDTC"} <= set(row)
    assert row["AETERM"] == "Platelet count decreased" and row["AETOXGR"] == "3"
    assert patient.subject_id in row["USUBJID"]
    assert world["coordinator_a"].last_name not in str(rows)  # no user names


def test_api_docs_render_under_the_content_security_policy(page, world):  # type: ignore[no-untyped-def]
    """Swagger UI (vendored, sidecar) draws the operations with the strict CSP on
    (issue 16 item 13); a violation fails the page fixture."""
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("spon")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/api/v1/docs/")
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() > 20
