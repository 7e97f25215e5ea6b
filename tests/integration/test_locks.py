"""Casebook and trial locks (issue 12): states, signatures, audit, the central guard."""

import datetime
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from core.errors import RecordLocked
from core.locks import lock_info_of, lock_patient_path, lock_state_of
from core.models import Signature
from core.signatures import signatures_for
from core.tokens import token_issue
from patients import services
from patients.models import Assessment, CasebookLock, Patient
from safety.models import AdverseEvent
from tests.factories import PASSWORD, AdverseEventFactory, AssessmentFactory, PatientFactory, grant
from trial.access import forget_grants
from trial.models import TrialLock

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient(world):  # type: ignore[no-untyped-def]
    return PatientFactory(site=world["site_a"], trial=world["trial"], subject_id="SA-001")


def _edit(record, reason="fix"):  # type: ignore[no-untyped-def]
    record._change_reason = reason
    record.save()


def test_lock_paths_are_derived_from_the_scope_paths():  # type: ignore[no-untyped-def]
    from dosing.models import Cycle
    from trial.models import DoseLevel, Trial

    assert lock_patient_path(Patient) == ""
    assert lock_patient_path(Assessment) == "patient"
    assert lock_patient_path(Cycle) == "patient"
    assert lock_patient_path(AdverseEvent) == "patient"
    assert lock_patient_path(Trial) is None and lock_patient_path(DoseLevel) is None
    assert lock_patient_path(CasebookLock) is None and lock_patient_path(TrialLock) is None


def test_freeze_lock_unlock_signed_and_audited(world, patient):  # type: ignore[no-untyped-def]
    dm = world["data_manager"]
    assert lock_state_of(patient) == "open"
    lock = services.casebook_freeze(user=dm, patient=patient, password=PASSWORD)
    assert lock.state == "frozen" and lock_state_of(patient) == "frozen"
    lock = services.casebook_lock(user=dm, patient=patient, password=PASSWORD)
    assert lock_state_of(AssessmentFactory.build(patient=patient)) == "locked"
    with pytest.raises(ValidationError) as err:
        services.casebook_unlock(user=dm, patient=patient, password=PASSWORD, reason=" ")
    assert "reason" in err.value.message_dict
    lock = services.casebook_unlock(user=dm, patient=patient, password=PASSWORD, reason="late lab correction")
    assert lock.state == "open" and lock_state_of(patient) == "open"

    everything = list(lock.history.order_by("history_date", "history_id"))
    # Each change is followed by the row that links it to its signature (same version).
    signed = [h for h in everything if h.history_change_reason.startswith("signed:")]
    history = [h for h in everything if h not in signed]
    assert [(h.state, h.version) for h in signed] == [("frozen", 1), ("locked", 2), ("open", 3)]
    assert [h.state for h in history] == ["frozen", "locked", "open"]
    assert [h.history_user_id for h in everything] == [dm.pk] * 6
    assert history[-1].history_change_reason == "late lab correction"
    sigs = Signature.objects.filter(meaning=Signature.Meaning.LOCK)
    assert sigs.count() == 3 and {s.record_version for s in sigs} == {1, 2, 3}
    # The current state carries a valid signature (the earlier ones sign earlier versions).
    assert [v.status for _, v in signatures_for(lock)][-1] == "valid"
    assert lock.signature_id == sigs.last().pk


def test_only_data_managers_lock_and_the_password_is_checked(world, patient):  # type: ignore[no-untyped-def]
    for role in ("coordinator_a", "investigator", "monitor", "sponsor"):
        with pytest.raises(PermissionDenied):
            services.casebook_lock(user=world[role], patient=patient, password=PASSWORD)
    with pytest.raises(ValidationError) as err:
        services.casebook_lock(user=world["data_manager"], patient=patient, password="wrong")
    assert "password" in err.value.message_dict
    assert not CasebookLock.objects.exists() and not Signature.objects.exists()


def test_frozen_refuses_data_and_locked_refuses_everything(world, patient):  # type: ignore[no-untyped-def]
    assessment = AssessmentFactory(patient=patient)
    services.casebook_freeze(user=world["data_manager"], patient=patient, password=PASSWORD)
    with pytest.raises(RecordLocked) as err:
        _edit(assessment)
    assert str(err.value).startswith("Casebook SA-001 is frozen (")
    assert "queries can still be answered" in str(err.value)
    with pytest.raises(RecordLocked):
        AssessmentFactory(patient=patient)  # a new record of a frozen casebook too
    with pytest.raises(RecordLocked):
        _edit(Patient.objects.get(pk=patient.pk))
    assert lock_info_of(assessment).refuses("query") is False  # a query thread may still move

    services.casebook_lock(user=world["data_manager"], patient=patient, password=PASSWORD)
    info = lock_info_of(assessment)
    assert info.refuses("query") and info.refuses("data")
    assert "is locked (" in info.message and "by " in info.message and "no changes are allowed" in info.message
    assert Assessment.objects.filter(patient=patient).count() == 1


def test_service_refusal_is_a_field_free_message_not_a_crash(world, patient):  # type: ignore[no-untyped-def]
    services.casebook_lock(user=world["data_manager"], patient=patient, password=PASSWORD)
    with pytest.raises(ValidationError) as err:
        services.assessment_record(
            user=world["coordinator_a"],
            patient=patient,
            data={"kind": "mrd", "date": datetime.date.today(), "method": "flow", "result": "negative"},
        )
    assert list(err.value.message_dict) == ["__all__"]
    assert "Casebook SA-001 is locked" in err.value.message_dict["__all__"][0]
    assert not Assessment.objects.exists()


def test_trial_lock_locks_every_casebook_and_new_patients(world, patient):  # type: ignore[no-untyped-def]
    dm = world["data_manager"]
    other_site = PatientFactory(site=world["site_b"], trial=world["trial"], subject_id="SB-001")
    elsewhere = PatientFactory(site=world["site_c"], trial=world["other"], subject_id="SC-001")
    services.casebook_freeze(user=dm, patient=patient, password=PASSWORD)
    services.trial_lock(user=dm, trial=world["trial"], password=PASSWORD)
    assert lock_state_of(patient) == "locked" and lock_state_of(other_site) == "locked"
    assert lock_state_of(elsewhere) == "open"
    assert "trial TRIAL-T is locked" in lock_info_of(other_site).message
    with pytest.raises(RecordLocked):
        PatientFactory(site=world["site_a"], trial=world["trial"], subject_id="SA-002")
    with pytest.raises(ValidationError) as err:  # casebooks stay as they are under a trial lock
        services.casebook_unlock(user=dm, patient=patient, password=PASSWORD, reason="x")
    assert "unlock the trial" in str(err.value)
    with pytest.raises(ValidationError):
        services.trial_unlock(user=dm, trial=world["trial"], password=PASSWORD, reason="")
    services.trial_unlock(user=dm, trial=world["trial"], password=PASSWORD, reason="database reopened for a query")
    assert lock_state_of(patient) == "frozen" and lock_state_of(other_site) == "open"
    history = TrialLock.objects.get().history.order_by("history_id")
    assert [h.state for h in history.exclude(history_change_reason__startswith="signed:")] == ["locked", "open"]


def test_api_answers_423_with_the_lock_message(client, world, patient):  # type: ignore[no-untyped-def]
    ae = AdverseEventFactory(patient=patient)
    services.casebook_lock(user=world["data_manager"], patient=patient, password=PASSWORD)
    _, key = token_issue(user=world["coordinator_a"], name="t")
    response = client.patch(
        f"/api/v1/adverse-events/{ae.pk}/",
        {"grade": 2, "reason_for_change": "x"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
        HTTP_IF_MATCH=f'"{ae.version}"',
    )
    assert response.status_code == 423, response.content
    assert "Casebook SA-001 is locked" in response.json()["detail"]
    state = client.get(f"/api/v1/patients/{patient.pk}/", HTTP_AUTHORIZATION=f"Token {key}").json()
    assert state["lock"]["state"] == "locked"


def test_exports_state_the_lock_state_and_time(client, world, patient):  # type: ignore[no-untyped-def]
    frozen = PatientFactory(site=world["site_a"], trial=world["trial"], subject_id="SA-002")
    PatientFactory(site=world["site_a"], trial=world["trial"], subject_id="SA-003")
    services.casebook_lock(user=world["data_manager"], patient=patient, password=PASSWORD)
    services.casebook_freeze(user=world["data_manager"], patient=frozen, password=PASSWORD)
    lock = CasebookLock.objects.get(patient=patient)
    _, key = token_issue(user=world["sponsor"], name="t")
    url = f"/api/v1/exports/dm/?trial={world['trial'].code}&format=json"
    response = client.get(url, HTTP_AUTHORIZATION=f"Token {key}")
    document = json.loads(b"".join(response.streaming_content))
    rows = {r["SUBJID"]: r for r in document["rows"]}
    assert rows["SA-001"]["LOCKSTAT"] == "LOCKED"
    assert rows["SA-001"]["LOCKDTC"] == lock.changed_at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert rows["SA-002"]["LOCKSTAT"] == "FROZEN" and rows["SA-003"]["LOCKSTAT"] == "OPEN"
    assert rows["SA-003"]["LOCKDTC"] in (None, "")
    assert response["X-Export-Trial-Lock"] == "open"
    assert response["X-Export-Casebook-Locks"] == "locked=1; frozen=1; open=1"
    assert document["lock"]["casebooks"] == {"locked": 1, "frozen": 1, "open": 1}

    services.trial_lock(user=world["data_manager"], trial=world["trial"], password=PASSWORD)
    trial_lock = TrialLock.objects.get()
    response = client.get(url.replace("json", "csv"), HTTP_AUTHORIZATION=f"Token {key}")
    body = b"".join(response.streaming_content).decode()
    assert response["X-Export-Trial-Lock"] == f"locked; since {trial_lock.changed_at.isoformat()}"
    assert response["X-Export-Casebook-Locks"] == "locked=3; frozen=0; open=0"
    assert body.count("LOCKED") == 3
    # A lock change brings the patient's dm row back in an incremental pull.
    since = (trial_lock.changed_at - datetime.timedelta(seconds=1)).isoformat().replace("+", "%2B")
    response = client.get(f"{url}&updated_since={since}", HTTP_AUTHORIZATION=f"Token {key}")
    assert len(json.loads(b"".join(response.streaming_content))["rows"]) == 3


def test_bundle_carries_the_locks_and_the_import_keeps_them(world):  # type: ignore[no-untyped-def]
    from exchange.bundle import bundle_export, bundle_import
    from exchange.generate import generate_trial
    from trial.models import Trial

    trial = bundle_import(generate_trial(15, seed=2, code="LOCKED-1"))
    dm = world["data_manager"]
    grant(dm, trial, "data_manager")
    forget_grants(dm)
    first, second = Patient.objects.filter(trial=trial).order_by("subject_id")[:2]
    services.casebook_freeze(user=dm, patient=first, password=PASSWORD)
    services.casebook_lock(user=dm, patient=second, password=PASSWORD)
    services.trial_lock(user=dm, trial=trial, password=PASSWORD, reason="database lock for the analysis")
    document = json.loads(json.dumps(bundle_export(trial)))
    assert document["trial_lock"]["state"] == "locked" and document["trial_lock"]["by"]
    patients = {p["subject_id"]: p for p in document["patients"]}
    assert patients[first.subject_id]["lock"]["state"] == "frozen"
    assert patients[second.subject_id]["lock"]["state"] == "locked"

    document["trial"]["code"] = "LOCKED-2"
    copy = bundle_import(document)
    copied = {p.subject_id: p for p in Patient.objects.filter(trial=copy)}
    assert all(lock_state_of(p) == "locked" for p in copied.values())
    assert lock_info_of(copied[first.subject_id]).by_trial
    assert TrialLock.objects.get(trial=copy).changed_at == TrialLock.objects.get(trial=trial).changed_at
    again = json.loads(json.dumps(bundle_export(Trial.objects.get(pk=copy.pk))))
    again["trial"]["code"] = "LOCKED-1"
    assert again == document | {"trial": {**document["trial"], "code": "LOCKED-1"}}
    # Unlocking the copy's trial leaves each casebook in its own imported state.
    grant(dm, copy, "data_manager")
    forget_grants(dm)
    services.trial_unlock(user=dm, trial=copy, password=PASSWORD, reason="reopened")
    assert lock_state_of(copied[first.subject_id]) == "frozen"
    assert lock_state_of(copied[second.subject_id]) == "locked"


def test_lock_screens(client, world, patient):  # type: ignore[no-untyped-def]
    url = f"/patients/{patient.pk}/lock/"
    client.force_login(world["coordinator_a"], backend="django.contrib.auth.backends.ModelBackend")
    assert client.get(url).status_code == 403
    assert client.post(url, {"action": "locked", "password": PASSWORD}).status_code == 403
    client.force_login(world["data_manager"], backend="django.contrib.auth.backends.ModelBackend")
    page = client.get(url).content.decode()
    assert 'value="frozen"' in page and 'value="locked"' in page
    # Nothing verified, no review signature: locking needs the acknowledged override (issue 19).
    override = {"override": "on", "override_reason": "test casebook"}
    wrong = client.post(url, {"action": "locked", "password": "nope", **override})
    assert wrong.status_code == 200 and "password is not correct" in wrong.content.decode()
    assert lock_state_of(patient) == "open"
    assert client.post(url, {"action": "locked", "password": PASSWORD, **override}).status_code == 302
    page = client.get(url).content.decode()
    assert lock_state_of(patient) == "locked" and "Casebook SA-001 is locked" in page
    assert "Casebook frozen/locked" in page and "valid" in page  # the signature, verified
    no_reason = client.post(url, {"action": "open", "password": PASSWORD})
    assert "A reason is required to unlock" in no_reason.content.decode()
    assert client.post(url, {"action": "open", "password": PASSWORD, "reason": "typo in AE"}).status_code == 302
    assert lock_state_of(patient) == "open"

    trial_url = f"/trials/{world['trial'].pk}/lock/"
    assert client.post(trial_url, {"action": "locked", "password": PASSWORD}).status_code == 302
    detail = client.get(f"/trials/{world['trial'].pk}/").content.decode()
    assert "Trial TRIAL-T is locked" in detail
    casebook = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "trial TRIAL-T is locked" in casebook
    client.force_login(world["investigator"], backend="django.contrib.auth.backends.ModelBackend")
    assert client.get(trial_url).status_code == 403


def test_registering_into_a_locked_trial_is_refused_with_the_message(client, world):  # type: ignore[no-untyped-def]
    services.trial_lock(user=world["data_manager"], trial=world["trial"], password=PASSWORD)
    client.force_login(world["coordinator_a"], backend="django.contrib.auth.backends.ModelBackend")
    data = {"site": world["site_a"].pk, "subject_id": "SA-123", "sex": "male", "race": "white", "birth_year": 1970}
    response = client.post(f"/trials/{world['trial'].pk}/patients/new/", data)
    assert response.status_code == 200 and "trial TRIAL-T is locked" in response.content.decode()
    _, key = token_issue(user=world["coordinator_a"], name="t")
    response = client.post(
        "/api/v1/patients/",
        {"trial": "TRIAL-T", "site": "SA", "subject_id": "SA-124", "sex": "male", "birth_year": 1970},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )
    assert response.status_code == 423 and "trial TRIAL-T is locked" in response.json()["detail"]
    assert not Patient.objects.exists()


def test_a_frozen_casebook_can_be_signed_as_reviewed_a_locked_one_not(client, world, patient):  # type: ignore[no-untyped-def]
    services.casebook_freeze(user=world["data_manager"], patient=patient, password=PASSWORD)
    client.force_login(world["investigator"], backend="django.contrib.auth.backends.ModelBackend")
    assert client.post(f"/patients/{patient.pk}/sign/", {"password": PASSWORD}).status_code == 302
    services.casebook_lock(user=world["data_manager"], patient=patient, password=PASSWORD)
    refused = client.post(f"/patients/{patient.pk}/sign/", {"password": PASSWORD})
    assert refused.status_code == 423 and "Casebook SA-001 is locked" in refused.content.decode()
    assert Signature.objects.filter(meaning=Signature.Meaning.REVIEWED).count() == 1
