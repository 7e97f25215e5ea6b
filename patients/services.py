"""Writes for patients: registration and edits, each audited, each checked for scope."""

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from core.audit import record_create, record_update
from patients.models import Patient
from trial import access
from trial.models import Trial, TrialComputation
from trial.services import computation_request

EDITABLE_FIELDS = ("sex", "race", "birth_year")


def patient_register(*, user: Any, trial: Trial, data: dict[str, Any]) -> Patient:
    """Register a patient at a site where ``user`` enters data. Nothing is written on error."""
    if not access.can(user, "enter_data", trial):
        raise PermissionDenied("You do not enter data in this trial.")
    site = data.get("site")
    if site is None or not access.sites_for(user, trial).filter(pk=site.pk).exists():
        raise ValidationError({"site": ["You can register patients only at your own site(s)."]})
    patient = Patient(trial=trial, **{k: v for k, v in data.items() if k in {"site", "subject_id", *EDITABLE_FIELDS}})
    if Patient.objects.filter(trial=trial, subject_id=patient.subject_id).exists():
        raise ValidationError({"subject_id": [f"Subject ID {patient.subject_id} is already registered in this trial."]})
    try:
        with transaction.atomic():
            record_create(patient, user=user)
            computation_request(trial.pk, TrialComputation.Kind.ENROLMENT)
    except IntegrityError as exc:  # a concurrent registration of the same ID
        raise ValidationError({"subject_id": ["This subject ID was registered meanwhile."]}) from exc
    return patient


def patient_update(
    *, user: Any, patient: Patient, changes: dict[str, Any], reason: str | None, expected_version: int | None = None
) -> Patient:
    """Edit demographics after first entry: needs a reason; a stale version is refused."""
    if not access.can(user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("You do not enter data for this patient.")
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({field: ["This field cannot be changed here."] for field in sorted(unknown)})
    with transaction.atomic():
        patient = record_update(patient, changes, user=user, reason=reason, expected_version=expected_version)
        computation_request(patient.trial_id, TrialComputation.Kind.ENROLMENT)
    return patient  # type: ignore[return-value]
