"""Stored CDISC packages (issue 18): the request (versions, one open build per trial), the
build (zip contents read back, sha256, conformance report, failure leaves nothing, a
redelivered task takes over), the API and page with their scope walls, and one build
by the real Celery worker. docs/exports.md "CDISC packages"."""

import datetime
import hashlib
import io
import json
import time
import zipfile
from pathlib import Path

import pyreadstat
import pytest
from django.core.exceptions import PermissionDenied
from lxml import etree

from core.tokens import token_issue
from exchange import services
from exchange.models import CdiscPackage
from tests.factories import AdverseEventFactory, CdiscPackageFactory, PatientFactory, TrialFactory, UserFactory, grant
from trial.models import RoleGrant

API = "/api/v1/trials/{trial}/cdisc-packages/"


@pytest.fixture
def package_root(tmp_path, settings, monkeypatch):  # type: ignore[no-untyped-def]
    """A private package folder for the test (and for a real worker started after it)."""
    root = tmp_path / "packages"
    settings.CDISC_PACKAGE_ROOT = root
    monkeypatch.setenv("CDISC_PACKAGE_ROOT", str(root))
    return root


@pytest.fixture
def casebooks(world):  # type: ignore[no-untyped-def]
    a = PatientFactory(site=world["site_a"], trial=world["trial"], subject_id="SA-001")
    b = PatientFactory(site=world["site_b"], trial=world["trial"], subject_id="SB-001")
    AdverseEventFactory(patient=a, grade=3, onset=datetime.date(2024, 4, 20))
    AdverseEventFactory(patient=b, grade=2, onset=datetime.date(2024, 4, 22))
    return {"a": a, "b": b}


def _api(client, user):  # type: ignore[no-untyped-def]
    _, key = token_issue(user=user, name="packages")
    return {"HTTP_AUTHORIZATION": f"Token {key}"}


def _zip_files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


# --- the request ---------------------------------------------------------------------------


def test_versions_count_per_trial_and_an_open_build_is_returned_not_doubled(world):  # type: ignore[no-untyped-def]
    first, created = services.cdisc_package_request(world["trial"], world["sponsor"])
    assert created and first.number == 1 and first.status == "queued"
    assert first.requested_by_role == "sponsor"
    history = list(first.history.all())
    assert [h.history_change_reason for h in history] == ["CDISC package requested"]
    again, created = services.cdisc_package_request(world["trial"], world["investigator"])
    assert (again.pk, created) == (first.pk, False)  # one build at a time: the open one comes back
    CdiscPackage.objects.filter(pk=first.pk).update(status="done")
    second, created = services.cdisc_package_request(world["trial"], world["investigator"])
    assert created and second.number == 2 and second.requested_by_role == "investigator"
    other_sponsor = UserFactory(username="sponsor_u")
    grant(other_sponsor, world["other"], RoleGrant.Role.SPONSOR)
    other, _ = services.cdisc_package_request(world["other"], other_sponsor)
    assert other.number == 1  # numbered per trial


@pytest.mark.parametrize("role", ["coordinator_a", "data_manager", "monitor", "admin", "nobody"])
def test_only_exporters_may_ask(world, role):  # type: ignore[no-untyped-def]
    with pytest.raises(PermissionDenied):
        services.cdisc_package_request(world["trial"], world[role])
    assert not CdiscPackage.objects.exists()


def test_the_database_refuses_two_open_builds_of_one_trial(world):  # type: ignore[no-untyped-def]
    from django.db import IntegrityError, transaction

    CdiscPackageFactory(trial=world["trial"], status="running")
    with pytest.raises(IntegrityError), transaction.atomic():
        CdiscPackageFactory(trial=world["trial"], status="queued")


# --- the build (in-process) ------------------------------------------------------------------


@pytest.fixture
def built(world, casebooks, package_root):  # type: ignore[no-untyped-def]
    package, _ = services.cdisc_package_request(world["trial"], world["sponsor"])
    assert services.cdisc_package_build(package.pk) == "done"
    package.refresh_from_db()
    return package


def test_the_build_writes_a_zip_with_every_dataset_define_and_the_report(built, package_root):  # type: ignore[no-untyped-def]
    path = services.cdisc_package_path(built)
    assert path is not None and path.parent.parent == package_root.resolve()
    assert built.status == "done" and built.progress == 1.0 and built.size == path.stat().st_size
    assert built.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    files = _zip_files(path)
    for name in built.dataset_counts:
        assert f"{name.lower()}.xpt" in files and f"{name.lower()}.json" in files
    assert {"define.xml", "conformance.json", "conformance.txt"} <= set(files)
    assert built.dataset_counts["DM"] == 2 and built.dataset_counts["AE"] == 2
    ae = path.parent / "ae.xpt"
    ae.write_bytes(files["ae.xpt"])
    frame, meta = pyreadstat.read_xport(str(ae))
    assert meta.table_name == "AE" and sorted(frame["AETOXGR"]) == ["2", "3"]
    assert set(frame["USUBJID"]) == {"TRIAL-T-SA-001", "TRIAL-T-SB-001"}
    define = etree.fromstring(files["define.xml"])
    names = {e.get("Name") for e in define.iter("{http://www.cdisc.org/ns/odm/v1.3}ItemGroupDef")}
    assert names == set(built.dataset_counts)
    report = json.loads(files["conformance.json"])
    assert report["datasets"]["AE"]["records"] == 2
    # Counts agree (XPT rows counted back), define.xml is schema-valid, codes and dates conform; what is
    # left is Req variables the factories' casebooks leave empty (no site country, no consent: no AGE).
    assert {f["check"] for f in report["findings"]} <= {"TD-REQ-NULL"}, report["findings"]
    assert {"TD-REQ-NULL", "TD-SEQ-UNIQUE", "TD-DTC-ISO8601", "TD-CT", "TD-RECORDS", "TD-DEFINE-XSD"} <= set(
        report["checks"]
    )
    assert "not run" not in report["checks"]["TD-DEFINE-XSD"]  # the XSD ships with odmlib: the check ran
    assert report["core"] is None
    assert built.conformance["errors"] == report["errors"] and built.conformance["datasets"] == report["datasets"]
    assert b"Conformance report" in files["conformance.txt"]
    assert [h.history_change_reason for h in built.history.order_by("history_id")] == [
        "CDISC package requested", "CDISC package built",
    ]  # fmt: skip
    assert not list(package_root.glob(".build-*"))  # the staging folder is gone


def test_a_redelivered_build_of_a_finished_job_does_nothing(built):  # type: ignore[no-untyped-def]
    before = (built.sha256, built.file_name, built.version)
    assert services.cdisc_package_build(built.pk) == "nothing to do"
    built.refresh_from_db()
    assert (built.sha256, built.file_name, built.version) == before


def test_a_redelivery_takes_over_and_the_old_worker_stops(world, casebooks, package_root):  # type: ignore[no-untyped-def]
    package, _ = services.cdisc_package_request(world["trial"], world["sponsor"])
    old = services._claim(package.pk)  # the first worker, then presumed dead
    assert old is not None
    assert services.cdisc_package_build(package.pk) == "done"  # the redelivered task
    with pytest.raises(services.Superseded):
        services._progress(package.pk, old, "writing AE", 0.5)
    assert not services._finish(package.pk, old, "late", status="failed")
    package.refresh_from_db()
    assert package.status == "done" and len(list(package_root.rglob("*.zip"))) == 1


def test_a_failure_leaves_the_job_failed_with_why_and_no_file(world, casebooks, package_root, monkeypatch):  # type: ignore[no-untyped-def]
    real = services.package_write

    def breaks_after_writing(*args, **kwargs):  # type: ignore[no-untyped-def]
        real(*args, **kwargs)  # the files are written, then something goes wrong
        raise ValueError("AE.AETERM (record 7): 201 characters, longer than its length 200")

    monkeypatch.setattr(services, "package_write", breaks_after_writing)
    package, _ = services.cdisc_package_request(world["trial"], world["sponsor"])
    assert services.cdisc_package_build(package.pk) == "failed"
    package.refresh_from_db()
    assert package.status == "failed" and "AE.AETERM (record 7)" in package.error
    assert package.file_name == "" and package.sha256 == "" and services.cdisc_package_path(package) is None
    assert [p for p in package_root.rglob("*") if p.is_file()] == []  # nothing half-written kept
    assert package.history.first().history_change_reason == "CDISC package build failed"
    again, created = services.cdisc_package_request(world["trial"], world["sponsor"])
    assert created and again.number == 2  # a failed build does not block the next


# --- API and page ----------------------------------------------------------------------------


def test_api_request_list_detail_and_download(client, world, built):  # type: ignore[no-untyped-def]
    headers = _api(client, world["sponsor"])
    url = API.format(trial=world["trial"].pk)
    listed = client.get(url, **headers).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == built.pk
    detail = client.get(f"{url}{built.pk}/", **headers).json()
    assert detail["status"] == "done" and detail["sha256"] == built.sha256 and detail["requested_by"] == "sponsor"
    assert world["sponsor"].last_name not in json.dumps(detail)  # a sponsor sees roles, not names
    response = client.get(detail["download"], **headers)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    body = b"".join(response.streaming_content)
    assert hashlib.sha256(body).hexdigest() == built.sha256 == response["X-Content-SHA256"]
    assert f'filename="TRIAL-T-cdisc-v{built.number}.zip"' in response["Content-Disposition"]
    assert "define.xml" in zipfile.ZipFile(io.BytesIO(body)).namelist()
    created = client.post(url, {}, content_type="application/json", **headers)
    assert created.status_code == 202 and created.json()["number"] == 2 and created.json()["status"] == "queued"
    again = client.post(url, {}, content_type="application/json", **headers)
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]
    not_built = client.get(f"{url}{created.json()['id']}/download/", **headers)
    assert not_built.status_code == 404
    inv = client.get(f"{url}{built.pk}/", **_api(client, world["investigator"])).json()
    assert inv["requested_by"].endswith("(sponsor)") and world["sponsor"].last_name in inv["requested_by"]


@pytest.mark.parametrize("role", ["sponsor", "investigator"])
def test_the_list_costs_the_same_queries_for_one_or_many_packages(client, world, role):  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    headers = _api(client, world[role])
    url = API.format(trial=world["trial"].pk)
    CdiscPackageFactory(trial=world["trial"])
    client.get(url, **headers)  # warm the per-process caches
    with CaptureQueriesContext(connection) as one:
        assert client.get(url, **headers).json()["count"] == 1
    for _ in range(4):
        CdiscPackageFactory(trial=world["trial"], requested_by=UserFactory())
    with CaptureQueriesContext(connection) as five:
        assert client.get(url, **headers).json()["count"] == 5
    assert len(five) == len(one)


def test_api_refuses_an_unknown_field(client, world):  # type: ignore[no-untyped-def]
    response = client.post(
        API.format(trial=world["trial"].pk), {"datasets": ["AE"]}, content_type="application/json",
        **_api(client, world["sponsor"]),
    )  # fmt: skip
    assert response.status_code == 400 and "datasets" in response.json()["errors"]
    assert not CdiscPackage.objects.exists()


@pytest.mark.parametrize("role", ["coordinator_a", "data_manager", "monitor", "admin", "nobody", "other_sponsor"])
def test_scope_walls_answer_404(client, world, built, role):  # type: ignore[no-untyped-def]
    if role == "other_sponsor":
        user = UserFactory(username="sponsor_u")
        grant(user, world["other"], RoleGrant.Role.SPONSOR)
    else:
        user = world[role]
    headers = _api(client, user)
    base = API.format(trial=world["trial"].pk)
    for url in (base, f"{base}{built.pk}/", f"{base}{built.pk}/download/"):
        assert client.get(url, **headers).status_code == 404, url
    assert client.post(base, {}, content_type="application/json", **headers).status_code == 404
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    page = f"/trials/{world['trial'].pk}/exports/packages/"
    assert client.get(page).status_code == 404 and client.post(page).status_code == 404
    assert CdiscPackage.objects.count() == 1


def test_a_package_of_another_trial_is_not_reachable_through_this_trial(client, world, built):  # type: ignore[no-untyped-def]
    other = TrialFactory(code="THIRD-V")
    grant(world["sponsor"], other, RoleGrant.Role.SPONSOR)
    url = API.format(trial=other.pk) + f"{built.pk}/download/"
    assert client.get(url, **_api(client, world["sponsor"])).status_code == 404


def test_the_page_lists_versions_and_asks_for_a_new_one(client, world, built):  # type: ignore[no-untyped-def]
    CdiscPackage.objects.filter(pk=built.pk).update(
        requested_by=world["investigator"], requested_by_role="investigator"
    )
    client.force_login(world["sponsor"], backend="django.contrib.auth.backends.ModelBackend")
    page = f"/trials/{world['trial'].pk}/exports/packages/"
    html = client.get(page).content.decode()
    assert "Build a new package" in html and f'SHA-256 <code class="sha256">{built.sha256}</code>' in html
    assert f"/api/v1/trials/{world['trial'].pk}/cdisc-packages/{built.pk}/download/" in html
    assert "by investigator" in html and world["investigator"].get_full_name() not in html  # a role, not a name
    response = client.post(page, follow=True)
    html = response.content.decode()
    assert "Package version 2 is queued" in html and "data-package-poll" in html and "js/packages.js" in html
    html = client.post(page, follow=True).content.decode()
    assert "Version 2 is still being built" in html
    assert CdiscPackage.objects.count() == 2
    exports = client.get(f"/trials/{world['trial'].pk}/exports/").content.decode()
    assert page in exports


# --- the real worker ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_real_worker_builds_the_package(client, world, casebooks, package_root, real_worker):  # type: ignore[no-untyped-def]
    headers = _api(client, world["sponsor"])
    url = API.format(trial=world["trial"].pk)
    job = client.post(url, {}, content_type="application/json", **headers).json()
    seen, deadline = set(), time.monotonic() + 60
    while time.monotonic() < deadline:
        state = client.get(f"{url}{job['id']}/", **headers).json()
        seen.add(state["status"])
        if state["status"] in {"done", "failed"}:
            break
        time.sleep(0.2)
    assert state["status"] == "done", (state, real_worker["log"].read_text()[-3000:])
    assert state["progress"] == 1.0 and state["size"] > 0
    body = b"".join(client.get(state["download"], **headers).streaming_content)
    assert hashlib.sha256(body).hexdigest() == state["sha256"]
    files = zipfile.ZipFile(io.BytesIO(body))
    dm = package_root / "dm.xpt"
    dm.write_bytes(files.read("dm.xpt"))
    frame, _ = pyreadstat.read_xport(str(dm))
    assert list(frame["USUBJID"]) == ["TRIAL-T-SA-001", "TRIAL-T-SB-001"]
    etree.fromstring(files.read("define.xml"))
    assert json.loads(files.read("conformance.json"))["datasets"]["DM"]["records"] == 2
