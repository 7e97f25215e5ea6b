"""Electronic signatures: bound to one version of one record, tamper-evident."""

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction

from core.models import Signature
from core.signatures import signature_apply, signature_verify, signatures_for
from patients.services import patient_update
from tests.factories import PASSWORD, PatientFactory


@pytest.fixture
def patient(world):  # type: ignore[no-untyped-def]
    return PatientFactory(site=world["site_a"], trial=world["trial"])


def test_sign_then_edit_invalidates_the_signature(world, patient, login):  # type: ignore[no-untyped-def]
    inv = world["investigator"]
    sig = signature_apply(patient, user=inv, password=PASSWORD, meaning=Signature.Meaning.REVIEWED)
    assert sig.printed_name == inv.get_full_name() and sig.record_version == patient.version
    assert signature_verify(sig).status == "valid"
    page = login(inv).get(f"/patients/{patient.pk}/").content.decode()
    assert inv.get_full_name() in page and "Reviewed and approved" in page and ">valid<" in page

    patient_update(user=world["coordinator_a"], patient=patient, changes={"birth_year": 1970}, reason="correction")
    patient.refresh_from_db()
    [(stored, check)] = signatures_for(patient)
    assert check.status == "invalidated" and "edited after signing" in check.message
    assert ">invalidated<" in login(inv).get(f"/patients/{patient.pk}/").content.decode()


def test_tampered_hash_fails_verification(world, patient):  # type: ignore[no-untyped-def]
    sig = signature_apply(patient, user=world["investigator"], password=PASSWORD, meaning="reviewed")
    sig.record_hash = "0" * 64  # as if someone rewrote the stored hash
    assert signature_verify(sig, patient).status == "tampered"


def test_signature_cannot_be_moved_to_another_record(world, patient):  # type: ignore[no-untyped-def]
    other = PatientFactory(site=world["site_a"], trial=world["trial"], birth_year=patient.birth_year)
    sig = signature_apply(patient, user=world["investigator"], password=PASSWORD, meaning="reviewed")
    sig.object_id = other.pk
    assert signature_verify(sig).status == "tampered"


def test_changed_meaning_fails_verification(world, patient):  # type: ignore[no-untyped-def]
    sig = signature_apply(patient, user=world["investigator"], password=PASSWORD, meaning="reviewed")
    sig.meaning = Signature.Meaning.ESCALATION
    assert signature_verify(sig, patient).status == "tampered"


def test_database_refuses_to_rewrite_a_signature(world, patient):  # type: ignore[no-untyped-def]
    signature_apply(patient, user=world["investigator"], password=PASSWORD, meaning="reviewed")
    with pytest.raises(DatabaseError), transaction.atomic():
        Signature.objects.update(record_hash="0" * 64)


def test_wrong_password_signs_nothing(world, patient, login):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="password is not correct"):
        signature_apply(patient, user=world["investigator"], password="guess", meaning="reviewed")
    response = login(world["investigator"]).post(f"/patients/{patient.pk}/sign/", {"password": "guess"})
    assert "password is not correct" in response.content.decode()
    assert not Signature.objects.exists()


def test_sign_screen_signs_with_the_screen_meaning(world, patient, login):  # type: ignore[no-untyped-def]
    client = login(world["investigator"])
    response = client.post(f"/patients/{patient.pk}/sign/", {"password": PASSWORD, "meaning": "escalation"})
    assert response.status_code == 302
    assert Signature.objects.get().meaning == Signature.Meaning.REVIEWED


def test_coordinator_cannot_sign(world, patient, login):  # type: ignore[no-untyped-def]
    assert (
        login(world["coordinator_a"]).post(f"/patients/{patient.pk}/sign/", {"password": PASSWORD}).status_code == 403
    )
    assert not Signature.objects.exists()
