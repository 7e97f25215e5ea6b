"""Reads for the trial app's views and API."""

from typing import Any

from django.db.models import Prefetch, QuerySet

from trial import access
from trial.models import DoseLevel, ProtocolVersion, Site, Trial, TrialComputation


def trial_list(user) -> QuerySet[Trial]:  # type: ignore[no-untyped-def]
    return access.trials_for(user).prefetch_related(
        Prefetch("sites", queryset=Site.objects.order_by("code")),
        Prefetch("dose_levels", queryset=DoseLevel.objects.order_by("level")),
        Prefetch("protocol_versions", queryset=ProtocolVersion.objects.order_by("effective")),
    )


def trial_get(user, trial_id: int) -> Trial:  # type: ignore[no-untyped-def]
    return access.get_scoped_or_404(user, trial_list(user), "view_trial", pk=trial_id)  # type: ignore[return-value]


def computation_get(trial: Trial, kind: str) -> TrialComputation | None:
    """The stored result; a trial that never had one gets it computed on this first read
    (trial.services.computation_ensure, issue 16 item 6)."""
    from trial.services import computation_ensure

    return computation_ensure(trial, kind)


def computation_payload(trial: Trial, kind: str) -> dict[str, Any]:
    """A stored trial-level result with when it was computed and whether it is stale."""
    computation = computation_get(trial, kind)
    if computation is None:
        return {"computed_at": None, "stale": True}
    return {**computation.data, "computed_at": computation.computed_at, "stale": computation.stale}


def escalation_open_slots(trial: Trial) -> dict[int, int]:
    """Open slots per dose level number, as signed into effect (PROTOCOL s6).

    Read from the stored escalation result (computed on this first read if it never was,
    ``computation_get``); the enrolment service assigns the dose level from here. Empty
    when nothing is open (or nothing can be computed yet).
    """
    computation = computation_get(trial, TrialComputation.Kind.ESCALATION)
    if computation is None or not computation.data:
        return {}
    return {row["dose_level"]: row["slots"] for row in computation.data.get("open_slots", []) if row["slots"] > 0}


def escalation_backfill_slots(trial: Trial) -> dict[int, int]:
    """Open backfill places per dose level number (issue 17: ``backfill_slots`` of the
    stored escalation result, read like ``escalation_open_slots``); the enrolment service
    reads it. Empty when none."""
    computation = computation_get(trial, TrialComputation.Kind.ESCALATION)
    if computation is None or not computation.data:
        return {}
    return {row["dose_level"]: row["slots"] for row in computation.data.get("backfill_slots", []) if row["slots"] > 0}


# Parts of the stored results that list patients by subject ID.
_PATIENT_ROWS = {"patients", "excluded", "data_problems"}


def without_patient_rows(payload: Any) -> Any:
    """The payload with every list of subject IDs removed (recursively)."""
    if isinstance(payload, dict):
        return {k: without_patient_rows(v) for k, v in payload.items() if k not in _PATIENT_ROWS}
    if isinstance(payload, list):
        return [without_patient_rows(v) for v in payload]
    return payload
