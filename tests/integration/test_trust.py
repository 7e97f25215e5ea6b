"""Issue 16 ("Trust pass"), the API and infrastructure items: each a walk over the
project's own URL patterns or OpenAPI document where it can be, so a new endpoint is
covered without editing this file."""

import re
from html.parser import HTMLParser

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.core.management import call_command
from django.db import DatabaseError, transaction
from django.test import Client

from core.errors import SignatureRefused
from core.middleware import CONTENT_SECURITY_POLICY
from core.models import Signature
from core.signatures import signature_apply, signatures_for
from core.tokens import token_issue
from dosing.models import Cycle, LabPanel
from patients.models import Patient, Transplant
from patients.services import patient_update
from safety import services as safety_services
from safety.models import DltAdjudication
from tests.factories import (
    PASSWORD,
    SCOPED_FACTORIES,
    LabPanelFactory,
    PatientFactory,
    TransplantFactory,
    UserFactory,
    grant,
)
from tests.integration.test_safety_api import adjudication_body
from tests.integration.test_safety_services import ae_data, make_patient
from tests.integration.test_security import _login, _urls
from trial.models import RoleGrant


@pytest.fixture
def own_objects(world):  # type: ignore[no-untyped-def]
    """One object of every scoped model in trial T at site A (as test_security's)."""
    return {model: make(world["trial"], world["site_a"]) for model, make in SCOPED_FACTORIES.items()}


@pytest.fixture
def crawler(world):  # type: ignore[no-untyped-def]
    """A user holding every role of trial T (coordinator at site A): sees every page."""
    user = UserFactory(username="crawler")
    for role in RoleGrant.Role.values:
        grant(user, world["trial"], role, world["site_a"] if role == RoleGrant.Role.COORDINATOR else None)
    return user


# --- item 13: Content-Security-Policy and no-store -----------------------------------------


class _Inline(HTMLParser):
    """What a strict CSP (script-src/style-src 'self') would block in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        attributes = dict(attrs)
        if tag == "script" and not attributes.get("src") and attributes.get("type") != "application/json":
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("inline <style>")
        for name, value in attrs:
            if name == "style":
                self.problems.append(f"style attribute on <{tag}>")
            if name.startswith("on"):
                self.problems.append(f"event handler {name} on <{tag}>")
            if name in {"href", "src", "action"} and (value or "").lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL on <{tag}>")


def _policy(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    header = response.get("Content-Security-Policy", "")
    return {part.split()[0]: part for part in (p.strip() for p in header.split(";")) if part}


@pytest.mark.django_db
def test_every_page_has_a_strict_csp_uses_no_inline_code_and_is_not_stored(world, own_objects, crawler):  # type: ignore[no-untyped-def]
    client = _login(Client(), crawler)
    _, key = token_issue(user=crawler, name="headers")
    problems, pages, api = [], 0, 0
    for url, name, is_api, _ in _urls(own_objects):
        if name in {"logout"}:
            continue
        if is_api:
            response = client.get(url, HTTP_AUTHORIZATION=f"Token {key}")
        else:
            _login(client, crawler)
            response = client.get(url)
        policy = _policy(response)
        if policy.get("script-src") != "script-src 'self'" or policy.get("object-src") != "object-src 'none'":
            problems.append(f"{url}: Content-Security-Policy {response.get('Content-Security-Policy')!r}")
        if "no-store" not in response.get("Cache-Control", ""):
            problems.append(f"{url}: Cache-Control {response.get('Cache-Control')!r} ({response.status_code})")
        api += is_api
        if response.status_code == 200 and "html" in response.get("Content-Type", ""):
            pages += 1
            if not url.startswith("/api/"):
                assert policy["style-src"] == "style-src 'self'", url
            parser = _Inline()
            parser.feed(response.content.decode(errors="replace"))
            problems += [f"{url}: {problem}" for problem in sorted(set(parser.problems))]
    assert not problems, "\n".join(problems)
    assert pages > 30 and api > 20, (pages, api)


@pytest.mark.django_db
def test_the_api_docs_run_under_the_csp_and_exports_are_not_stored(client, world):  # type: ignore[no-untyped-def]
    _login(client, world["sponsor"])
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200
    assert _policy(page)["script-src"] == "script-src 'self'"
    parser = _Inline()
    parser.feed(page.content.decode())
    assert not parser.problems
    script_url = re.search(r'<script src="([^"]*script=[^"]*)"', page.content.decode()).group(1)
    script = client.get(script_url.replace("&amp;", "&"))
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()
    _, key = token_issue(user=world["sponsor"], name="export")
    export = Client().get(f"/api/v1/exports/dm/?trial={world['trial'].code}", HTTP_AUTHORIZATION=f"Token {key}")
    assert export.status_code == 200 and "no-store" in export["Cache-Control"]
    login = Client().get("/accounts/login/")
    assert login["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


# --- item 10: the e-signature password is counted, locked out and logged like a sign-in -----


def _adjudicate(client, key, patient, ae, password):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/dlt-adjudications/",
        adjudication_body(patient, adverse_event=ae.pk, password=password),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
        REMOTE_ADDR="10.9.9.9",
    )


@pytest.mark.django_db
def test_wrong_signature_passwords_lock_the_account_and_are_logged(client, world, settings):  # type: ignore[no-untyped-def]
    settings.AXES_FAILURE_LIMIT = 5
    patient = make_patient(world)
    ae = safety_services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(grade=3))
    _, key = token_issue(user=world["investigator"], name="oracle")
    for _ in range(4):
        wrong = _adjudicate(client, key, patient, ae, "guess")
        assert wrong.status_code == 400 and "not correct" in str(wrong.json()["errors"]["password"])
    fifth = _adjudicate(client, key, patient, ae, "guess")
    assert fifth.status_code == 400 and fifth["Content-Type"] == "application/json"
    assert "locked" in str(fifth.json()["errors"]["password"])
    # The right password no longer signs, and the account no longer signs in.
    # (The lockout also refuses the account's API token itself: 403 before any signature check.)
    right = _adjudicate(client, key, patient, ae, PASSWORD)
    assert right.status_code == 403 and "locked" in right.json()["detail"]
    assert not DltAdjudication.objects.exists()
    sign_in = Client().post("/accounts/login/", {"username": "inv", "password": PASSWORD}, REMOTE_ADDR="10.1.1.1")
    assert sign_in.status_code == 429 and "_auth_user_id" not in sign_in.client.session
    failures = AccessFailureLog.objects.filter(username="inv", path_info="/api/v1/dlt-adjudications/")
    # Five wrong signature passwords (the fifth locks out) and the refused token request after them.
    assert failures.count() == 6
    assert AccessFailureLog.objects.filter(username="inv", path_info="/accounts/login/", locked_out=True).exists()
    assert failures.filter(locked_out=True).count() == 2


@pytest.mark.django_db
def test_failed_sign_ins_and_signature_passwords_count_together(client, world, settings, login):  # type: ignore[no-untyped-def]
    settings.AXES_FAILURE_LIMIT = 5
    patient = PatientFactory(site=world["site_a"], trial=world["trial"])
    page = login(world["investigator"])  # a sign-in (it resets the count), then someone guesses
    for _ in range(3):
        Client().post("/accounts/login/", {"username": "inv", "password": "guess"}, REMOTE_ADDR="10.2.2.2")
    for _ in range(2):
        response = page.post(f"/patients/{patient.pk}/sign/", {"password": "guess"})
        assert response.status_code == 200  # the form again, with the refusal
    assert "locked" in response.content.decode()
    with pytest.raises(SignatureRefused, match="locked"):
        signature_apply(patient, user=world["investigator"], password=PASSWORD, meaning=Signature.Meaning.REVIEWED)
    assert not Signature.objects.exists()
    assert AccessFailureLog.objects.filter(username="inv").count() == 5


# --- item 14: replayed signatures, the failed sign-in log, the signature link's history ------


@pytest.mark.django_db
def test_a_replayed_sign_form_makes_one_signature(world, login):  # type: ignore[no-untyped-def]
    patient = PatientFactory(site=world["site_a"], trial=world["trial"])
    page = login(world["investigator"])
    first = page.post(f"/patients/{patient.pk}/sign/", {"password": PASSWORD})
    assert first.status_code == 302
    replay = page.post(f"/patients/{patient.pk}/sign/", {"password": PASSWORD})
    assert replay.status_code == 200 and "already signed version 1" in replay.content.decode()
    assert Signature.objects.count() == 1
    # Another investigator, or the same one after an edit, signs again.
    signature_apply(patient, user=world["admin"], password=PASSWORD, meaning=Signature.Meaning.REVIEWED)
    patient_update(user=world["coordinator_a"], patient=patient, changes={"birth_year": 1970}, reason="typo")
    assert page.post(f"/patients/{patient.pk}/sign/", {"password": PASSWORD}).status_code == 302
    assert Signature.objects.count() == 3


@pytest.mark.django_db
def test_failed_sign_ins_are_kept_whatever_resets_the_counters(client, world, admin_client):  # type: ignore[no-untyped-def]
    for _ in range(2):
        client.post("/accounts/login/", {"username": "coord_a", "password": "guess"})
    assert AccessFailureLog.objects.filter(username="coord_a").count() == 2
    client.post("/accounts/login/", {"username": "coord_a", "password": PASSWORD})  # success resets the counter
    call_command("axes_reset")
    assert not AccessAttempt.objects.exists()
    assert AccessFailureLog.objects.filter(username="coord_a").count() == 2  # the log stays
    assert AccessLog.objects.filter(username="coord_a").exists()
    for command in ("axes_reset_failure_logs", "axes_reset_logs"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            call_command(command, age=0)
    assert AccessFailureLog.objects.filter(username="coord_a").count() == 2
    # The admin lists them and offers no change or delete.
    failure = AccessFailureLog.objects.first()
    sign_in = AccessLog.objects.first()
    for model, row in ((AccessFailureLog, failure), (AccessLog, sign_in)):
        model_admin = admin.site._registry[model]
        request = admin_client.get("/admin/").wsgi_request
        assert not model_admin.has_delete_permission(request, row) and not model_admin.has_change_permission(request)
        url = f"/admin/axes/{model._meta.model_name}/{row.pk}/delete/"
        assert admin_client.post(url, {"post": "yes"}).status_code == 403
        changelist = admin_client.post(
            f"/admin/axes/{model._meta.model_name}/",
            {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"},
        )
        assert changelist.status_code in {200, 302, 403}
    assert AccessFailureLog.objects.count() == 2 and AccessLog.objects.filter(pk=sign_in.pk).exists()


@pytest.mark.django_db
def test_the_adjudications_signature_link_has_a_history_row(world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    ae = safety_services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(grade=3))
    adjudication = safety_services.adjudication_sign(
        user=world["investigator"],
        patient=patient,
        data={"adverse_event": ae, "rule": "non_hematologic_grade3_related", "event_date": ae.onset,
              "is_dlt": True, "rationale": "grade 3 related"},
        password=PASSWORD,
    )  # fmt: skip
    adjudication.refresh_from_db()
    history = list(adjudication.history.order_by("history_id"))
    assert [h.signature_id for h in history] == [None, adjudication.signature_id]
    assert [h.version for h in history] == [1, 1] and adjudication.version == 1
    assert history[-1].history_user_id == world["investigator"].pk
    assert history[-1].history_change_reason.startswith("signed:")
    assert signatures_for(adjudication)[0][1].valid


# --- item 8: unknown or read-only fields are refused; a no-op edit writes nothing -------------

# Endpoints that refuse every body whatever it holds (so they name no field).
REFUSE_EVERY_BODY = {
    ("patch", "dlt-adjudication-detail"): "a signed adjudication is never edited (supersede it)",
    ("put", "dlt-adjudication-detail"): "a signed adjudication is never edited (supersede it)",
}


@pytest.mark.django_db
def test_every_api_write_refuses_fields_it_does_not_take(world, own_objects, crawler):  # type: ignore[no-untyped-def]
    """Every routed unsafe method of every API URL pattern, as a user holding every role of
    the trial, with a body of one unknown field and some read-only ones: 400 naming each."""
    # The nested URLs name one patient: make it the patient of the cycle, with a transplant.
    own_objects[Patient] = own_objects[Cycle].patient
    own_objects[LabPanel] = LabPanelFactory(patient=own_objects[Patient])
    if not Transplant.objects.filter(patient=own_objects[Patient]).exists():
        TransplantFactory(patient=own_objects[Patient])
    client = Client()
    _, key = token_issue(user=crawler, name="strict")
    problems, checked = [], 0
    body = {"not_a_field": 1, "site": world["site_b"].pk, "trial": world["other"].pk, "created_at": "2020-01-01"}
    for url, name, is_api, methods in _urls(own_objects):
        if not is_api:
            continue
        for method in methods:
            if method == "delete":
                continue
            response = getattr(client, method)(
                url, body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}"
            )
            checked += 1
            if (method, name) in REFUSE_EVERY_BODY:
                if response.status_code != 400:
                    problems.append(f"{method.upper()} {url}: {response.status_code}")
                continue
            errors = response.json().get("errors", {}) if response.status_code == 400 else {}
            errors = errors.get("bundle", errors)  # the bundle import lists its problems by path
            if response.status_code != 400 or "not_a_field" not in str(errors):
                problems.append(f"{method.upper()} {url} ({name}): {response.status_code} {response.content[:300]!r}")
    assert not problems, "\n".join(problems)
    assert checked >= 15, checked


@pytest.mark.django_db
def test_a_patch_that_changes_nothing_keeps_the_version_and_writes_no_history(client, world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    ae = safety_services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(grade=2))
    _, key = token_issue(user=world["coordinator_a"], name="noop")
    auth = {"HTTP_AUTHORIZATION": f"Token {key}", "content_type": "application/json"}
    for url, record, same in (
        (f"/api/v1/patients/{patient.pk}/", patient, {"birth_year": patient.birth_year, "sex": patient.sex}),
        (f"/api/v1/adverse-events/{ae.pk}/", ae, {"grade": 2, "onset": ae.onset.isoformat()}),
    ):
        history = record.history.count()
        version = type(record).objects.get(pk=record.pk).version
        response = client.patch(url, {**same, "reason_for_change": "re-saved", "version": version}, **auth)
        assert response.status_code == 200, response.content
        assert response.json()["version"] == version and response["ETag"] == f'"{version}"'
        assert record.history.count() == history
        # A read-only field sent along is a 400, and nothing is written.
        moved = client.patch(
            url, {**same, "site": world["site_b"].code, "reason_for_change": "x", "version": version}, **auth
        )
        assert moved.status_code == 400 and "site" in moved.json()["errors"]
        assert record.history.count() == history
