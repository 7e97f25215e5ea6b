"""Journey 3 (issue 9): a sponsor signs in, finds the trial's exports and downloads the AE
dataset as CSV: de-identified, with SDTM column names. Then (issue 18) builds a CDISC package
and downloads it, and watches a build in progress reach "done" (the page polls the job).
Real browser, real downloads."""

import csv
import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from exchange.models import CdiscPackage
from tests.browser.conftest import ARTIFACTS
from tests.factories import PASSWORD, AdverseEventFactory, CdiscPackageFactory, PatientFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sponsor_downloads_the_ae_export(page, world, settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.CDISC_PACKAGE_ROOT = tmp_path / "packages"
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

    # A CDISC package (issue 18). The test's Celery runs in-process: the build is done when
    # the page comes back.
    page.get_by_role("link", name="CDISC packages").click()
    page.get_by_role("button", name="Build a new package").click()
    expect(page.get_by_text("Package version 1 is queued")).to_be_visible()
    with page.expect_download() as info:
        page.get_by_role("link", name="Download v1").click()
    body = Path(info.value.path()).read_bytes()
    built = CdiscPackage.objects.get(trial=world["trial"], number=1)
    assert hashlib.sha256(body).hexdigest() == built.sha256 and built.sha256 in page.content()
    assert {"ae.xpt", "ae.json", "define.xml", "conformance.txt"} <= set(zipfile.ZipFile(io.BytesIO(body)).namelist())
    # A build in progress (as a worker reports it): the bar moves, then the page shows the result.
    running = CdiscPackageFactory(trial=world["trial"], status="running", progress=0.4, step="writing AE")
    page.reload()
    bar = page.get_by_role("progressbar")
    expect(bar).to_have_attribute("value", "0.400")
    CdiscPackage.objects.filter(pk=running.pk).update(progress=0.7, step="writing ADSL")
    expect(page.get_by_text("writing ADSL")).to_be_visible()
    CdiscPackage.objects.filter(pk=running.pk).update(
        status="done", progress=1.0, step="done", file_name=built.file_name, size=built.size, sha256=built.sha256
    )
    expect(page.get_by_role("link", name=f"Download v{running.number}")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "sponsor-packages.png"), full_page=True)


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
