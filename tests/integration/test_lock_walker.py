"""The lock walker (issue 12): every write to a locked casebook is refused, on every path.

Like the site-wall walker (whose helpers it reuses), it finds every URL pattern itself
and fills the object arguments, here with objects of LOCKED casebooks at the acting
user's own site, so only the lock can stop the write. As a coordinator of that site,
an investigator and a data manager (browser session and API token), every POST, PATCH,
PUT and DELETE must answer the lock message (423) or 403/404/405, and no audit
(Historical*) table may gain a row. A new endpoint is covered without editing this test.
"""

import datetime

import pytest
from django.apps import apps
from django.urls import get_resolver

from core.locks import lock_patient_path, lock_state_of, owner_pk_of
from core.tokens import token_issue
from patients import services as patient_services
from tests.factories import PASSWORD, SCOPED_FACTORIES, AdverseEventFactory, AssessmentFactory, PatientFactory
from tests.integration.test_site_walls import _fill, _model_for, _walk

pytestmark = pytest.mark.django_db

WRITES = ("post", "patch", "put", "delete")
ALLOWED = {403, 404, 405}
LOCK_SCREENS = {"casebook_lock", "trial_lock"}  # the lock's own screens (tested in test_locks)


def _history_counts() -> dict[str, int]:
    """Rows of every audit table, but the API tokens' (a request stamps the token's last use)."""
    return {
        m._meta.label: m._default_manager.count()
        for m in apps.get_models()
        if m.__name__.startswith("Historical") and m.__name__ != "HistoricalApiToken"
    }


@pytest.fixture
def locked_objects(world):  # type: ignore[no-untyped-def]
    """One object of every scoped model in the user's trial, at the user's own site A; every
    casebook they belong to is then locked by the data manager."""
    from patients.models import Patient

    objects = {model: make(world["trial"], world["site_a"]) for model, make in SCOPED_FACTORIES.items()}
    for pk in {owner_pk_of(obj) for obj in objects.values()} - {None}:
        patient_services.casebook_lock(
            user=world["data_manager"], patient=Patient.objects.get(pk=pk), password=PASSWORD
        )
    for obj in objects.values():
        if lock_patient_path(type(obj)) is not None:
            assert lock_state_of(obj) == "locked", obj
    return objects


def _walk_writes(client, user, objects, *, api_key):  # type: ignore[no-untyped-def]
    """Every write to every URL naming a casebook object; returns (checked, problems)."""
    api_headers = {"HTTP_AUTHORIZATION": f"Token {api_key}"}
    checked, problems = 0, []
    for regex, pattern in _walk(get_resolver()):
        if regex.startswith("admin/") or pattern.name in LOCK_SCREENS:
            continue
        values, casebook_objects = {}, []
        fillable = True
        for kwarg in pattern.pattern.regex.groupindex:
            if kwarg == "format":
                values[kwarg] = "json"
                continue
            model = _model_for(kwarg, pattern.callback)
            if model is None or model not in objects:
                fillable = False
                break
            values[kwarg] = objects[model].pk
            if lock_patient_path(model) is not None:
                casebook_objects.append(kwarg)
        if not fillable or not casebook_objects:
            continue
        url = _fill(regex, values)
        headers = api_headers if url.startswith("/api/") else {}
        for method in WRITES:
            if "_auth_user_id" not in client.session:
                client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
            response = getattr(client, method)(url, {}, content_type="application/json", **headers)
            checked += 1
            body = response.content.decode(errors="replace")
            if response.status_code in ALLOWED:
                continue
            if response.status_code == 423 and " is locked" in body and "no changes are allowed" in body:
                continue
            problems.append(f"{user.username} {method.upper()} {url}: {response.status_code} {body[:200]!r}")
    return checked, problems


@pytest.mark.parametrize("role", ["coordinator_a", "investigator", "data_manager"])
def test_every_write_to_a_locked_casebook_is_refused(client, world, locked_objects, role):  # type: ignore[no-untyped-def]
    user = world[role]
    _, key = token_issue(user=user, name="lock walker")
    before = _history_counts()
    checked, problems = _walk_writes(client, user, locked_objects, api_key=key)
    assert not problems, "\n".join(problems)
    assert checked > 60  # the walker really found the casebook URLs
    assert _history_counts() == before


def test_the_walker_can_fail_without_the_lock(client, world, locked_objects):  # type: ignore[no-untyped-def]
    """Sanity check of the walker itself: with the casebook of an assessment unlocked, its
    edit through the form goes through (so the walk above would see it)."""
    from patients.models import Assessment

    assessment = locked_objects[Assessment]
    patient_services.casebook_unlock(
        user=world["data_manager"], patient=assessment.patient, password=PASSWORD, reason="walker check"
    )
    client.force_login(world["coordinator_a"], backend="django.contrib.auth.backends.ModelBackend")
    data = {
        "kind": "mrd",
        "date": assessment.date.isoformat(),
        "method": "flow",
        "result": "negative",
        "reason_for_change": "walker check",
        "version": assessment.version,
    }
    response = client.post(f"/assessments/{assessment.pk}/edit/", data)
    assert response.status_code == 302, response.content.decode()[:500]


def test_locked_edit_page_shows_the_banner_and_no_save_button(client, world):  # type: ignore[no-untyped-def]
    patient = PatientFactory(site=world["site_a"], trial=world["trial"], subject_id="SA-010")
    assessment = AssessmentFactory(patient=patient)
    patient_services.casebook_lock(user=world["data_manager"], patient=patient, password=PASSWORD)
    client.force_login(world["coordinator_a"], backend="django.contrib.auth.backends.ModelBackend")
    page = client.get(f"/assessments/{assessment.pk}/edit/").content.decode()
    assert "Casebook SA-010 is locked" in page
    assert ">Save</button>" not in page
    overview = client.get(f"/patients/{patient.pk}/").content.decode()
    assert 'data-lock-state="locked"' in overview
    refused = client.post(
        f"/assessments/{assessment.pk}/edit/",
        {"kind": "mrd", "date": "2026-01-01", "reason_for_change": "x", "version": assessment.version},
    )
    assert refused.status_code == 423 and "Casebook SA-010 is locked" in refused.content.decode()


def test_frozen_casebook_refuses_data_but_queries_are_answerable(client, world):  # type: ignore[no-untyped-def]
    """Frozen: data writes refused (browser, API, service), the query thread still moves."""
    from cleaning import services as cleaning

    patient = PatientFactory(site=world["site_a"], trial=world["trial"], subject_id="SA-020")
    ae = AdverseEventFactory(patient=patient)
    query = cleaning.query_raise(user=world["monitor"], target=ae, field_name="grade", question="Grade 3 or 2?")
    patient_services.casebook_freeze(user=world["data_manager"], patient=patient, password=PASSWORD)
    before = _history_counts()

    # Data writes: the browser form, the API and a correction through the query answer.
    client.force_login(world["coordinator_a"], backend="django.contrib.auth.backends.ModelBackend")
    response = client.post(f"/patients/{patient.pk}/assessments/new/", {"kind": "mrd", "date": "2026-01-01"})
    assert response.status_code == 423 and "Casebook SA-020 is frozen" in response.content.decode()
    _, key = token_issue(user=world["coordinator_a"], name="t")
    response = client.patch(
        f"/api/v1/adverse-events/{ae.pk}/",
        {"grade": 2, "reason_for_change": "x"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )
    assert response.status_code == 423 and "is frozen" in response.json()["detail"]
    with pytest.raises(Exception) as err:
        cleaning.query_answer(
            user=world["coordinator_a"], query=query, text="It was 2", correction={"grade": 2}, reason="source"
        )
    assert "frozen" in str(err.value)
    assert _history_counts() == before

    # The query thread: answered (in the browser) and closed while frozen.
    client.force_login(world["coordinator_a"], backend="django.contrib.auth.backends.ModelBackend")
    response = client.post(f"/queries/{query.pk}/", {"action": "answer", "text": "Grade 3 confirmed at source."})
    assert response.status_code == 302, response.content.decode()[:300]
    query.refresh_from_db()
    assert query.state == "answered"
    cleaning.query_close(user=world["monitor"], query=query, note="OK")
    query.refresh_from_db()
    assert query.state == "closed"

    # Locked: the thread stops too.
    patient_services.casebook_lock(user=world["data_manager"], patient=patient, password=PASSWORD)
    with pytest.raises(Exception) as err:
        cleaning.query_reopen(user=world["monitor"], query=query, text="Once more")
    assert "is locked" in str(err.value)


def test_recomputation_runs_on_a_locked_trial(world):  # type: ignore[no-untyped-def]
    from decimal import Decimal

    from analysis.services import computation_run
    from tests.factories import DoseLevelFactory
    from trial.models import TrialComputation
    from trial.services import computation_request

    for level, dose in ((1, "0.6"), (2, "0.9")):
        DoseLevelFactory(trial=world["trial"], level=level, dose_mg_m2=Decimal(dose))
    PatientFactory(site=world["site_a"], trial=world["trial"], subject_id="SA-030")
    patient_services.trial_lock(user=world["data_manager"], trial=world["trial"], password=PASSWORD)
    for kind in TrialComputation.Kind.values:
        computation_request(world["trial"].pk, kind)
        result = computation_run(world["trial"].pk, kind)
        assert not result.stale and result.computed_at is not None
    assert datetime.date.today()  # computed on locked data: no write was refused
