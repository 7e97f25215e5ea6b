"""Writes for the trial app: configuration, role grants, trial-level recomputation."""

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from trial import access
from trial.configuration import DoseLevelSpec, dose_level_problems
from trial.models import RoleGrant, Site, Trial, TrialComputation


def dose_levels_validate(trial: Trial, specs: list[DoseLevelSpec]) -> None:
    problems = dose_level_problems(specs)
    if problems:
        raise ValidationError({"dose_levels": problems})


def role_grant(*, user: Any, trial: Trial, role: str, site: Site | None = None, by: Any, reason: str) -> RoleGrant:
    """Give ``user`` a role in ``trial`` (a coordinator: at ``site``). Audited with reason."""
    if not reason.strip():
        raise ValidationError({"reason": ["Say why the role is granted."]})
    grant = RoleGrant(user=user, trial=trial, role=role, site=site, granted_by=by)
    grant.full_clean()
    with transaction.atomic():
        grant._history_user = by  # type: ignore[attr-defined]
        grant._change_reason = reason.strip()  # type: ignore[attr-defined]
        grant.save()
    access.forget_grants(user)
    return grant


def role_revoke(grant: RoleGrant, *, by: Any, reason: str) -> RoleGrant:
    if not reason.strip():
        raise ValidationError({"reason": ["Say why the role is revoked."]})
    with transaction.atomic():
        grant = RoleGrant.objects.select_for_update().get(pk=grant.pk)
        if grant.revoked_at is None:
            grant.revoked_at = timezone.now()
            grant.revoked_by = by
            grant._history_user = by  # type: ignore[attr-defined]
            grant._change_reason = reason.strip()  # type: ignore[attr-defined]
            grant.save()
    access.forget_grants(grant.user)
    return grant


def escalation_open_slots(trial: Trial) -> dict[int, int]:
    """Open slots per dose level number, as signed into effect (PROTOCOL s6).

    Read from the latest escalation computation; the enrolment service assigns the dose
    level from here. Empty when nothing is open (or nothing was computed yet).
    """
    computation = TrialComputation.objects.filter(trial=trial, kind=TrialComputation.Kind.ESCALATION).first()
    if computation is None or not computation.data:
        return {}
    return {row["dose_level"]: row["slots"] for row in computation.data.get("open_slots", []) if row["slots"] > 0}


# --- trial-level recomputation -------------------------------------------------------


def _enrolment_summary(trial: Trial) -> dict[str, Any]:
    # The trial-level recomputation reads the patients app through its selectors
    # (STYLE.md: trial <- patients <- dosing <- safety).
    from patients.selectors import enrolment_counts

    return enrolment_counts(trial)


COMPUTATIONS: dict[str, Callable[[Trial], dict[str, Any]]] = {
    TrialComputation.Kind.ENROLMENT: _enrolment_summary,
}


def computation_request(trial_id: int, kind: str) -> None:
    """Mark a trial-level result out of date and enqueue its recomputation after commit.

    Call inside the transaction that changes the data: the request commits with the
    data (or not at all), and the task is sent only once the data are visible to a
    worker (never ``.delay()`` inside an open transaction).
    """
    from trial.tasks import trial_recompute

    updated = TrialComputation.objects.filter(trial_id=trial_id, kind=kind).update(
        request_seq=F("request_seq") + 1, requested_at=timezone.now()
    )
    if not updated:
        TrialComputation.objects.get_or_create(trial_id=trial_id, kind=kind)
    transaction.on_commit(lambda: trial_recompute.delay(trial_id, kind))


def computation_run(trial_id: int, kind: str) -> TrialComputation:
    """Recompute one result if it is stale. Idempotent: a second run finds it fresh.

    Bursts coalesce: the first run answers every request made before it took the row
    lock, and the queued runs behind it find nothing to do.
    """
    with transaction.atomic():
        TrialComputation.objects.get_or_create(trial_id=trial_id, kind=kind)
        computation = (
            TrialComputation.objects.select_for_update().select_related("trial").get(trial_id=trial_id, kind=kind)
        )
        if not computation.stale:
            return computation
        computation.data = COMPUTATIONS[kind](computation.trial)
        computation.computed_seq = computation.request_seq
        computation.computed_at = timezone.now()
        computation.runs += 1
        computation.save(update_fields=["data", "computed_seq", "computed_at", "runs"])
    return computation


def computation_relay_stale() -> int:
    """Enqueue every stale result: the periodic safety net for a request whose message was
    lost (broker down at commit time, worker killed). Returns how many were enqueued."""
    from trial.tasks import trial_recompute

    stale = TrialComputation.objects.filter(computed_seq__lt=F("request_seq")).values_list("trial_id", "kind")
    count = 0
    for trial_id, kind in stale:
        trial_recompute.delay(trial_id, kind)
        count += 1
    return count
