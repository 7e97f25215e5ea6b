"""Reads for views, API and exports: scoped, with the related rows fetched up front."""

from typing import Any

from django.db.models import Count, Q, QuerySet

from patients.models import Patient
from trial import access
from trial.models import Trial


def patient_list(user, trial: Trial | None = None) -> QuerySet[Patient]:  # type: ignore[no-untyped-def]
    qs = access.scope(user, Patient.objects.select_related("trial", "site", "dose_level"))
    return qs.filter(trial=trial) if trial is not None else qs


def patient_get(user, patient_id: int) -> Patient:  # type: ignore[no-untyped-def]
    return access.get_scoped_or_404(  # type: ignore[return-value]
        user, Patient.objects.select_related("trial", "site", "dose_level"), pk=patient_id
    )


def enrolment_counts(trial: Trial) -> dict[str, Any]:
    """Registered and enrolled patients per site and per dose level (unscoped: for the
    trial-level computation; views show it only to users who may see the trial)."""
    enrolled = Q(patients__enrolled_on__isnull=False)
    sites = trial.sites.order_by("code").annotate(
        registered=Count("patients"), enrolled=Count("patients", filter=enrolled)
    )
    levels = trial.dose_levels.order_by("level").annotate(enrolled=Count("patients", filter=enrolled))
    return {
        "sites": [{"code": s.code, "registered": s.registered, "enrolled": s.enrolled} for s in sites],
        "dose_levels": [
            {"dose_level": lv.level, "dose_mg_m2": float(lv.dose_mg_m2), "enrolled": lv.enrolled} for lv in levels
        ],
        "registered": sum(s.registered for s in sites),
        "enrolled": sum(s.enrolled for s in sites),
    }
