"""Source data verification: a monitor marks one version of a record verified (worksheet,
record pages, API); an edit afterwards clears the mark and the record says so."""

import datetime
import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from cleaning.models import SourceVerification
from cleaning.selectors import sdv_casebook, sdv_index, sdv_status
from cleaning.services import record_verify
from core.tokens import token_issue
from safety.services import ae_update
from tests.factories import AdverseEventFactory, LabPanelFactory, PatientFactory, TransplantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient(world):  # type: ignore[no-untyped-def]
    return PatientFactory(site=world["site_a"], trial=world["trial"])


@pytest.fixture
def ae(patient):  # type: ignore[no-untyped-def]
    return AdverseEventFactory(patient=patient, grade=3, onset=datetime.date(2024, 4, 20))


@pytest.fixture
def api(client):  # type: ignore[no-untyped-def]
    def as_user(user):  # type: ignore[no-untyped-def]
        _, key = token_issue(user=user, name="test")
        client.defaults["HTTP_AUTHORIZATION"] = f"Token {key}"
        return client

    return as_user


def _edit_grade(world, ae, grade):  # type: ignore[no-untyped-def]
    return ae_update(user=world["coordinator_a"], ae=ae, changes={"grade": grade}, reason="source says otherwise")


# --- the service and the derived mark ------------------------------------------------


def test_monitor_verifies_the_current_version_and_an_edit_clears_it(world, ae):  # type: ignore[no-untyped-def]
    assert sdv_status(ae).state == "none"
    mark = record_verify(user=world["monitor"], target=ae, expected_version=ae.version)
    assert (mark.record_version, mark.verified_by, mark.patient_id, mark.site_id) == (
        1,
        world["monitor"],
        ae.patient_id,
        world["site_a"].pk,
    )
    status = sdv_status(ae)
    assert status.state == "verified"
    assert status.text.startswith("Source verified by ") and "(version 1)" in status.text

    edited = _edit_grade(world, ae, 2)
    status = sdv_status(edited)
    assert status.state == "cleared"
    edit_time = edited.history.get(version=2).history_date
    assert status.cleared_version == 2 and status.cleared_at == edit_time
    assert status.text.startswith(f"Verification cleared by the edit of {edit_time:%Y-%m-%d %H:%M} UTC, version 2")
    # The mark itself is untouched: the state is derived, no write hook.
    mark.refresh_from_db()
    assert mark.record_version == 1 and mark.version == 1


def test_cleared_names_the_first_edit_after_the_mark_even_after_more_edits(world, ae):  # type: ignore[no-untyped-def]
    record_verify(user=world["monitor"], target=ae)
    _edit_grade(world, ae, 2)
    ae.refresh_from_db()
    latest = _edit_grade(world, ae, 1)
    status = sdv_status(latest)
    assert (status.state, status.version, status.cleared_version) == ("cleared", 3, 2)
    assert status.cleared_at == latest.history.get(version=2).history_date
    # The page index gives the same answer.
    assert sdv_index(ae.patient).status(latest) == status


def test_verifying_again_after_the_edit_makes_it_current(world, ae):  # type: ignore[no-untyped-def]
    record_verify(user=world["monitor"], target=ae)
    edited = _edit_grade(world, ae, 2)
    record_verify(user=world["monitor"], target=edited, expected_version=2)
    assert sdv_status(edited).state == "verified"
    assert SourceVerification.objects.filter(object_id=ae.pk).count() == 2


def test_verifying_the_same_version_twice_keeps_one_mark(world, ae):  # type: ignore[no-untyped-def]
    first = record_verify(user=world["monitor"], target=ae)
    assert record_verify(user=world["monitor"], target=ae) == first
    assert SourceVerification.objects.count() == 1


def test_a_stale_version_is_refused_naming_the_versions(world, ae):  # type: ignore[no-untyped-def]
    _edit_grade(world, ae, 2)
    with pytest.raises(ValidationError) as exc:
        record_verify(user=world["monitor"], target=ae, expected_version=1)
    assert "version 2 now, you saw version 1" in str(exc.value.message_dict["version"])
    assert not SourceVerification.objects.exists()


@pytest.mark.parametrize("role", ["coordinator_a", "investigator", "data_manager", "sponsor"])
def test_only_monitors_verify(world, ae, role):  # type: ignore[no-untyped-def]
    with pytest.raises(PermissionDenied):
        record_verify(user=world[role], target=ae)
    assert not SourceVerification.objects.exists()


def test_casebook_worksheet_lists_every_record_with_its_state(world, patient, ae):  # type: ignore[no-untyped-def]
    panel = LabPanelFactory(patient=patient)
    TransplantFactory(patient=patient)
    record_verify(user=world["monitor"], target=panel)
    record_verify(user=world["monitor"], target=ae)
    _edit_grade(world, ae, 2)
    rows = {row.key: row for row in sdv_casebook(patient)}
    assert rows[f"dosing.labpanel:{panel.pk}"].status.state == "verified"
    assert rows[f"safety.adverseevent:{ae.pk}"].status.state == "cleared"
    assert rows[f"patients.patient:{patient.pk}"].status.state == "none"
    assert {row.kind for row in rows.values()} >= {"patient", "transplant", "lab panel", "adverse event"}


def test_worksheet_costs_a_bounded_number_of_queries(world, patient, django_assert_max_num_queries):  # type: ignore[no-untyped-def]
    def grow(n):  # type: ignore[no-untyped-def]
        for _ in range(n):
            ae = AdverseEventFactory(patient=patient)
            record_verify(user=world["monitor"], target=ae)
            _edit_grade(world, ae, 2)

    grow(2)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        sdv_casebook(patient)
    grow(20)
    with django_assert_max_num_queries(len(few.captured_queries)):
        sdv_casebook(patient)


# --- the browser pages ---------------------------------------------------------------


def test_monitor_marks_a_record_on_the_worksheet_and_the_safety_tab_shows_it(world, login, patient, ae):  # type: ignore[no-untyped-def]
    client = login(world["monitor"])
    url = f"/patients/{patient.pk}/source-verification/"
    page = client.get(url).content.decode()
    assert "Mark verified" in page and "0 of" in page
    response = client.post(url, {"record": f"safety.adverseevent:{ae.pk}", "version": "1"})
    assert response.status_code == 302
    assert SourceVerification.objects.get().object_id == ae.pk
    page = client.get(url).content.decode()
    assert "Source verified by" in page


def test_worksheet_says_when_an_edit_cleared_the_mark(world, login, patient, ae):  # type: ignore[no-untyped-def]
    record_verify(user=world["monitor"], target=ae)
    edited = _edit_grade(world, ae, 2)
    page = login(world["coordinator_a"]).get(f"/patients/{patient.pk}/source-verification/").content.decode()
    when = edited.history.get(version=2).history_date
    assert f"Verification cleared by the edit of {when:%Y-%m-%d %H:%M} UTC, version 2" in page
    assert "Mark verified" not in page  # a coordinator sees the marks, has no button


def test_worksheet_refuses_a_stale_version_and_a_foreign_record(world, login, patient, ae):  # type: ignore[no-untyped-def]
    client = login(world["monitor"])
    url = f"/patients/{patient.pk}/source-verification/"
    _edit_grade(world, ae, 2)
    response = client.post(url, {"record": f"safety.adverseevent:{ae.pk}", "version": "1"})
    assert response.status_code == 400
    assert "changed after you opened it" in response.content.decode()
    other = AdverseEventFactory(patient=PatientFactory(site=world["site_b"], trial=world["trial"]))
    response = client.post(url, {"record": f"safety.adverseevent:{other.pk}", "version": "1"})
    assert response.status_code == 400
    assert "not in this patient&#x27;s casebook" in response.content.decode()
    response = client.post(url, {"record": "auth.user:1", "version": "1"})
    assert response.status_code == 400
    assert not SourceVerification.objects.exists()


def test_coordinator_cannot_post_a_mark(world, login, patient, ae):  # type: ignore[no-untyped-def]
    response = login(world["coordinator_a"]).post(
        f"/patients/{patient.pk}/source-verification/", {"record": f"safety.adverseevent:{ae.pk}"}
    )
    assert response.status_code == 403
    assert not SourceVerification.objects.exists()


def test_post_returns_to_the_record_page_it_came_from(world, login, patient, ae):  # type: ignore[no-untyped-def]
    client = login(world["monitor"])
    back = f"/patients/{patient.pk}/safety/"
    response = client.post(
        f"/patients/{patient.pk}/source-verification/",
        {"record": f"safety.adverseevent:{ae.pk}", "version": "1", "next": back},
    )
    assert response["Location"] == back
    response = client.post(
        f"/patients/{patient.pk}/source-verification/",
        {"record": f"patients.patient:{patient.pk}", "version": "1", "next": "https://evil.example/"},
    )
    assert response["Location"] == f"/patients/{patient.pk}/source-verification/"


# --- the API -------------------------------------------------------------------------


def test_api_verify_and_list_with_current_flag(world, api, ae):  # type: ignore[no-untyped-def]
    client = api(world["monitor"])
    response = client.post(
        "/api/v1/source-verifications/",
        {"target_type": "safety.adverseevent", "target_id": ae.pk, "version": 1},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["target_type"], body["target_id"], body["record_version"], body["current"]) == (
        "safety.adverseevent",
        ae.pk,
        1,
        True,
    )
    _edit_grade(world, ae, 2)
    (row,) = client.get("/api/v1/source-verifications/").json()["results"]
    assert row["current"] is False


def test_api_refuses_stale_versions_other_roles_and_unknown_records(world, api, ae):  # type: ignore[no-untyped-def]
    _edit_grade(world, ae, 2)
    monitor = api(world["monitor"])
    stale = monitor.post(
        "/api/v1/source-verifications/",
        {"target_type": "safety.adverseevent", "target_id": ae.pk, "version": 1},
        content_type="application/json",
    )
    assert stale.status_code == 400 and "version" in stale.json()["errors"]
    missing = monitor.post(
        "/api/v1/source-verifications/",
        {"target_type": "safety.adverseevent", "target_id": 999999},
        content_type="application/json",
    )
    assert missing.status_code == 400 and "target_id" in missing.json()["errors"]
    bad_type = monitor.post(
        "/api/v1/source-verifications/",
        {"target_type": "auth.user", "target_id": 1},
        content_type="application/json",
    )
    assert bad_type.status_code == 400 and "target_type" in bad_type.json()["errors"]
    coordinator = api(world["coordinator_a"]).post(
        "/api/v1/source-verifications/",
        {"target_type": "safety.adverseevent", "target_id": ae.pk},
        content_type="application/json",
    )
    assert coordinator.status_code == 400  # not a record where the coordinator verifies: no leak
    assert not SourceVerification.objects.exists()


def test_api_list_is_scoped(world, api, ae):  # type: ignore[no-untyped-def]
    record_verify(user=world["monitor"], target=ae)
    other = AdverseEventFactory(patient=PatientFactory(site=world["site_b"], trial=world["trial"]))
    record_verify(user=world["monitor"], target=other)
    ids = {r["target_id"] for r in api(world["coordinator_a"]).get("/api/v1/source-verifications/").json()["results"]}
    assert ids == {ae.pk}


def test_casebook_tab_links_the_worksheet(world, login, patient):  # type: ignore[no-untyped-def]
    page = login(world["monitor"]).get(f"/patients/{patient.pk}/").content.decode()
    assert re.search(rf'href="/patients/{patient.pk}/source-verification/"', page)


def test_page_index_reads_marks_once_and_history_once_per_record_type(world, patient, django_assert_num_queries):  # type: ignore[no-untyped-def]
    aes = [AdverseEventFactory(patient=patient) for _ in range(3)]
    for ae in aes:
        record_verify(user=world["monitor"], target=ae)
    edited = [_edit_grade(world, ae, 2) for ae in aes[:2]]
    with django_assert_num_queries(2):  # the marks, then the AE history for the cleared ones
        index = sdv_index(patient)
        states = [index.status(ae).state for ae in [*edited, aes[2]]]
    assert states == ["cleared", "cleared", "verified"]
    assert index.status(edited[0]) == sdv_status(edited[0])


# --- the marks on the casebook pages ----------------------------------------------------


def test_safety_tab_shows_the_mark_and_the_button_for_monitors(world, login, patient, ae):  # type: ignore[no-untyped-def]
    url = f"/patients/{patient.pk}/safety/"
    monitor = login(world["monitor"])
    assert "Mark source verified" in monitor.get(url).content.decode()
    record_verify(user=world["monitor"], target=ae)
    page = monitor.get(url).content.decode()
    assert f'data-sdv="safety.adverseevent:{ae.pk}"' in page and "Source verified" in page
    edited = _edit_grade(world, ae, 2)
    when = edited.history.get(version=2).history_date
    page = login(world["coordinator_a"]).get(url).content.decode()
    assert f"Verification cleared by the edit of {when:%Y-%m-%d %H:%M} UTC, version 2" in page
    assert "Mark source verified" not in page  # coordinators see marks, not the button


@pytest.mark.parametrize(
    "path", ["/patients/{p}/", "/patients/{p}/safety/", "/patients/{p}/dosing/", "/patients/{p}/source-verification/"]
)
def test_pages_with_marks_cost_a_fixed_number_of_queries(world, login, patient, path, django_assert_max_num_queries):  # type: ignore[no-untyped-def]
    client = login(world["monitor"])
    url = path.format(p=patient.pk)

    def grow(n):  # type: ignore[no-untyped-def]
        for _ in range(n):
            ae = AdverseEventFactory(patient=patient)
            record_verify(user=world["monitor"], target=ae)
            _edit_grade(world, ae, 2)
            record_verify(user=world["monitor"], target=LabPanelFactory(patient=patient))

    grow(1)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    grow(10)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(url).status_code == 200


# --- locks: a frozen casebook still takes marks, a locked one refuses them --------------


def test_frozen_casebook_takes_marks_locked_refuses_them(world, login, patient, ae):  # type: ignore[no-untyped-def]
    from patients.services import casebook_freeze, casebook_lock
    from tests.factories import PASSWORD

    casebook_freeze(user=world["data_manager"], patient=patient, password=PASSWORD)
    client = login(world["monitor"])
    url = f"/patients/{patient.pk}/source-verification/"
    response = client.post(url, {"record": f"safety.adverseevent:{ae.pk}", "version": "1"})
    assert response.status_code == 302
    assert SourceVerification.objects.count() == 1

    casebook_lock(user=world["data_manager"], patient=patient, password=PASSWORD)
    page = client.get(url).content.decode()
    assert "Mark verified" not in page  # no button on a locked casebook
    response = client.post(url, {"record": f"patients.patient:{patient.pk}", "version": str(patient.version)})
    assert response.status_code in (400, 423)
    assert "is locked" in response.content.decode()
    with pytest.raises(ValidationError, match="is locked"):
        record_verify(user=world["monitor"], target=patient)
    assert SourceVerification.objects.count() == 1


def test_api_refuses_a_mark_on_a_locked_casebook_with_423(world, api, patient, ae):  # type: ignore[no-untyped-def]
    from patients.services import casebook_lock
    from tests.factories import PASSWORD

    casebook_lock(user=world["data_manager"], patient=patient, password=PASSWORD)
    response = api(world["monitor"]).post(
        "/api/v1/source-verifications/",
        {"target_type": "safety.adverseevent", "target_id": ae.pk},
        content_type="application/json",
    )
    assert response.status_code == 423
    assert "is locked" in response.json()["detail"]
    assert not SourceVerification.objects.exists()
