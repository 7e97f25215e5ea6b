"""Audit trail: reason for change, old and new values, and append-only audit tables."""

import pytest
from axes.models import AccessLog
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from core.audit_guard import audit_tables
from core.errors import ReasonRequired, SignatureRefused
from core.signatures import signature_apply
from core.tokens import token_issue, token_revoke
from patients.models import Patient
from patients.services import patient_register, patient_update
from tests.factories import PASSWORD, SCOPED_FACTORIES


@pytest.fixture
def patient(world):  # type: ignore[no-untyped-def]
    return patient_register(
        user=world["coordinator_a"],
        trial=world["trial"],
        data={"site": world["site_a"], "subject_id": "SA-001", "sex": "female", "race": "white", "birth_year": 1980},
    )


def test_edit_without_reason_is_refused_and_writes_nothing(world, patient):  # type: ignore[no-untyped-def]
    for reason in (None, "", "   "):
        with pytest.raises(ReasonRequired) as exc:
            patient_update(user=world["coordinator_a"], patient=patient, changes={"birth_year": 1981}, reason=reason)
        assert "reason for change is required" in str(exc.value)
    patient.refresh_from_db()
    assert (patient.birth_year, patient.version, patient.history.count()) == (1980, 1, 1)


def test_model_save_itself_refuses_an_edit_without_reason(world, patient):  # type: ignore[no-untyped-def]
    # Any write path that forgets the service (a shell, a future import) is caught too.
    patient.birth_year = 1990
    with pytest.raises(ReasonRequired):
        patient.save()


def test_history_shows_old_and_new_values_user_time_and_reason(world, patient, login):  # type: ignore[no-untyped-def]
    patient_update(
        user=world["coordinator_a"],
        patient=patient,
        changes={"birth_year": 1979},
        reason="Transcription error: source document says 1979",
        expected_version=1,
    )
    page = login(world["coordinator_a"]).get(f"/patients/{patient.pk}/history/").content.decode()
    assert "Transcription error: source document says 1979" in page
    assert '<td class="old">1980</td>' in page and '<td class="new">1979</td>' in page
    assert world["coordinator_a"].get_full_name() in page
    row = patient.history.first()  # newest
    assert row.history_user == world["coordinator_a"] and row.history_date.utcoffset().total_seconds() == 0


def test_browser_edit_without_reason_shows_message_next_to_field(world, patient, login):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    form = {"sex": "female", "race": "white", "birth_year": 1985, "version": 1, "reason_for_change": ""}
    response = client.post(f"/patients/{patient.pk}/edit/", form)
    assert response.status_code == 200
    assert "A reason for change is required" in response.content.decode()
    patient.refresh_from_db()
    assert patient.birth_year == 1980
    form["reason_for_change"] = "Corrected after source verification"
    assert client.post(f"/patients/{patient.pk}/edit/", form).status_code == 302
    patient.refresh_from_db()
    assert (patient.birth_year, patient.version) == (1985, 2)


def test_stale_version_is_refused(world, patient, login):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    form = {"sex": "female", "race": "white", "birth_year": 1985, "version": 1, "reason_for_change": "first fix"}
    assert client.post(f"/patients/{patient.pk}/edit/", form).status_code == 302
    form.update(birth_year=1986, reason_for_change="second editor, from an old page")
    response = client.post(f"/patients/{patient.pk}/edit/", form)
    assert "changed since you read it" in response.content.decode()
    patient.refresh_from_db()
    assert patient.birth_year == 1985


def test_clinical_records_cannot_be_deleted(world, patient):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError):
        patient.delete()
    assert Patient.objects.filter(pk=patient.pk).exists()


def test_every_audit_table_is_covered():  # type: ignore[no-untyped-def]
    tables = set(audit_tables())
    assert {
        "patients_historicalpatient",
        "trial_historicaltrial",
        "trial_historicalrolegrant",
        "core_signature",
    } <= tables


@pytest.mark.django_db
@pytest.mark.parametrize("table", audit_tables())
def test_database_refuses_update_and_delete_of_audit_rows(table, world):  # type: ignore[no-untyped-def]
    # One row in every audit table, so the row-level triggers have something to refuse.
    for make in SCOPED_FACTORIES.values():
        make(world["trial"], world["site_a"])
    token, _ = token_issue(user=world["sponsor"], name="t")
    token_revoke(token, by=world["admin"])
    signature_apply(world["trial"], user=world["investigator"], password=PASSWORD, meaning="reviewed")
    # The sign-in log and the failed-password log (a wrong signature password).
    AccessLog.objects.create(username="inv", ip_address="10.0.0.1", user_agent="t", attempt_time=timezone.now())
    with pytest.raises(SignatureRefused):
        signature_apply(world["trial"], user=world["investigator"], password="wrong", meaning="reviewed")
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT COUNT(*) FROM "{table}"')
        assert cursor.fetchone()[0] > 0, f"no row in {table}: the test would prove nothing"
        for statement in (
            f'UPDATE "{table}" SET {_first_column(table)} = {_first_column(table)}',
            f'DELETE FROM "{table}"',
        ):
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                cursor.execute(statement)


def _first_column(table: str) -> str:
    with connection.cursor() as cursor:
        return f'"{connection.introspection.get_table_description(cursor, table)[0].name}"'


@pytest.mark.django_db
def test_the_sign_in_log_takes_its_sign_out_time_and_nothing_else(world):  # type: ignore[no-untyped-def]
    """axes completes a sign-in row with the sign-out time (the one UPDATE the guard allows)."""
    row = AccessLog.objects.create(username="inv", ip_address="10.0.0.1", user_agent="t", attempt_time=timezone.now())
    AccessLog.objects.filter(pk=row.pk).update(logout_time=timezone.now())
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AccessLog.objects.filter(pk=row.pk).update(username="someone-else")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AccessLog.objects.filter(pk=row.pk).delete()
