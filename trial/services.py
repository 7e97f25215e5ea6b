"""Writes for the trial app: configuration, role grants, and the outbox of the trial-level results.

The results themselves (escalation, survival, enrolment summary, dashboard lists) are
computed in the analysis app, above the apps whose data they read. This app sits below
them all: patients, dosing, safety and cleaning request a recomputation here
(``computation_request``) inside the transaction that changes the data, and the outbox
reaches the analysis code only by the names settings give it (``TRIAL_COMPUTATION_RUN``,
``TRIAL_RECOMPUTE_TASK``, config/settings.py): trial imports no analysis module.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from trial import access
from trial.configuration import (
    DESIGN_FIELDS,
    DoseLevelSpec,
    design_change_problems,
    design_problems,
    dose_level_problems,
)
from trial.models import DoseLevel, ProtocolVersion, RoleGrant, Site, Trial, TrialComputation

logger = logging.getLogger(__name__)


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


# --- the outbox of the trial-level results ------------------------------------------

# Results that change with the calendar alone (a DLT window closes, follow-up grows, an
# assessment becomes overdue): the periodic relay recomputes them once a day even when no
# data changed.
DATE_DEPENDENT = {TrialComputation.Kind.ESCALATION, TrialComputation.Kind.SURVIVAL, TrialComputation.Kind.DASHBOARD}
# The dashboard's lists read what these results read (cycles, AEs, events, transplants,
# adjudications, enrolment): every write that requests one of them marks the dashboard
# stale too, in the same transaction, here rather than at each call site; the worker that
# answers the request then brings the dashboard up to date (analysis.services.computation_run_followers),
# so a write still sends one task per result it asked for. Writes that only the dashboard
# reads (assessments, lab panels) request it themselves; enrolment-summary writes
# (registration, demographics) change none of its lists.
ALSO_REQUESTS = {
    TrialComputation.Kind.ESCALATION: TrialComputation.Kind.DASHBOARD,
    TrialComputation.Kind.SURVIVAL: TrialComputation.Kind.DASHBOARD,
}


# Set while a bulk write (the trial-bundle import) runs: requests are collected and made
# once each at the end, instead of one outbox bump and one task per record written.
_DEFERRED: ContextVar[set[tuple[int, str]] | None] = ContextVar("computation_requests_deferred", default=None)


@contextmanager
def computation_requests_deferred() -> Iterator[None]:
    """Collect ``computation_request`` calls and make each distinct one once on exit.

    Use inside the bulk write's transaction: the requests still commit (or roll back)
    with the data. Nesting is harmless (the outer block makes the requests).
    """
    if _DEFERRED.get() is not None:
        yield
        return
    pending: set[tuple[int, str]] = set()
    token = _DEFERRED.set(pending)
    try:
        yield
    finally:
        _DEFERRED.reset(token)
    # A request that another one marks too (ALSO_REQUESTS) needs no task of its own: the
    # other's task brings it up to date.
    followed = {(trial_id, ALSO_REQUESTS[kind]) for trial_id, kind in pending if kind in ALSO_REQUESTS}
    for trial_id, kind in sorted(pending - followed):
        computation_request(trial_id, kind)


def computation_request(trial_id: int, kind: str) -> None:
    """Mark a trial-level result out of date and enqueue its recomputation after commit.

    Call inside the transaction that changes the data: the request commits with the
    data (or not at all), and the task is sent only once the data are visible to a
    worker (never ``.delay()`` inside an open transaction).
    """
    deferred = _DEFERRED.get()
    if deferred is not None:
        deferred.add((trial_id, kind))
        return
    if kind in ALSO_REQUESTS:
        _computation_mark(trial_id, ALSO_REQUESTS[kind])
    _computation_mark(trial_id, kind)
    transaction.on_commit(lambda: _computation_enqueue(trial_id, kind))


def _computation_mark(trial_id: int, kind: str) -> None:
    """Bump the outbox row: the result is stale from this transaction's commit on."""
    updated = TrialComputation.objects.filter(trial_id=trial_id, kind=kind).update(
        request_seq=F("request_seq") + 1, requested_at=timezone.now()
    )
    if not updated:
        TrialComputation.objects.get_or_create(trial_id=trial_id, kind=kind)


def _computation_enqueue(trial_id: int, kind: str) -> None:
    """Send the recomputation task. With the broker unreachable the data and the request
    are committed already: the result stays stale (the dashboards say so) and the relay
    (beat, ``computation_relay_stale``) sends it once the broker is back, so the user's
    save succeeds instead of failing after its commit."""
    from kombu.exceptions import OperationalError

    try:
        _recompute_task().delay(trial_id, kind)
    except OperationalError as exc:
        logger.warning("broker unreachable, %s of trial %s left to the relay: %s", kind, trial_id, exc)


def _recompute_task() -> Any:
    """The Celery task that recomputes one result (analysis.tasks.trial_recompute), by the
    name settings give it: the task runs the analysis code, which trial does not import."""
    return import_string(settings.TRIAL_RECOMPUTE_TASK)


def _computation_run(trial_id: int, kind: str) -> TrialComputation:
    """Recompute one result now if it is stale (analysis.services.computation_run, named
    by settings)."""
    run = import_string(settings.TRIAL_COMPUTATION_RUN)
    return run(trial_id, kind)  # type: ignore[no-any-return]


def computation_ensure(trial: Trial, kind: str) -> TrialComputation | None:
    """The stored result of ``kind``, computed now if it was never computed (issue 16
    item 6): a trial made by any path (admin, bundle import, demo, a test factory) has its
    results from the first read, so an empty trial opens level 1 at once, even when the
    task requested at creation has not run (broker down). A result computed before but
    stale now is left to its queued task (the pages say "stale"). None when the trial
    cannot be computed yet (e.g. no dose level configured)."""
    computation = TrialComputation.objects.filter(trial=trial, kind=kind).first()
    if computation is not None and computation.computed_seq > 0:  # 0: never computed
        return computation
    try:
        return _computation_run(trial.pk, kind)
    except ValueError as exc:  # an incomplete configuration: nothing to show yet, never a 500
        logger.info("%s of trial %s not computed: %s", kind, trial.pk, exc)
        return None


def computation_relay_stale() -> int:
    """Enqueue every stale result: the periodic safety net for a request whose message was
    lost (broker down at commit time, worker killed). Returns how many were enqueued."""
    trial_recompute = _recompute_task()
    start_of_day = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    outdated = TrialComputation.objects.filter(kind__in=DATE_DEPENDENT, computed_at__lt=start_of_day)
    for computation in outdated:
        computation_request(computation.trial_id, computation.kind)
    stale = TrialComputation.objects.filter(computed_seq__lt=F("request_seq")).values_list("trial_id", "kind")
    count = 0
    for trial_id, kind in stale:
        trial_recompute.delay(trial_id, kind)
        count += 1
    return count


def trial_create(
    *,
    user: Any,
    values: dict[str, Any],
    sites: list[dict[str, Any]],
    dose_levels: list[DoseLevelSpec],
    protocol_versions: list[dict[str, Any]],
    reason: str,
) -> Trial:
    """A new trial with its sites, dose levels and protocol versions (audited, whole or
    nothing). ``values`` are Trial fields; the dose levels are checked by the pure rule
    (trial.configuration). Used by the trial-bundle import. Raises ValidationError
    naming ``trial.<field>``-style keys: "code", "sites[0].code", "dose_levels", ...
    """
    if not (getattr(user, "is_staff", False) or getattr(user, "is_superuser", False)):
        raise PermissionDenied("Only staff create trials.")
    errors: dict[str, list[str]] = {}
    if Trial.objects.filter(code=values.get("code")).exists():
        errors["code"] = [f"A trial with code {values.get('code')} already exists on this server."]
    problems = dose_level_problems(dose_levels)
    if problems:
        errors["dose_levels"] = problems
    try:
        spec = Trial(**values).design_spec()
    except (TypeError, ValueError):  # an unknown field: the model's own check names it below
        spec = None
    if spec is not None:
        errors |= design_problems(spec, len(dose_levels))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        trial = Trial(**values)
        _created(trial, "", errors, user, reason)
        if errors:
            raise ValidationError(errors)
        for i, site in enumerate(sites):
            _created(Site(trial=trial, **site), f"sites[{i}]", errors, user, reason)
        for i, spec in enumerate(dose_levels):
            _created(
                DoseLevel(trial=trial, level=spec.level, dose_mg_m2=spec.dose_mg_m2),
                f"dose_levels[{i}]",
                errors,
                user,
                reason,
            )
        for i, version in enumerate(protocol_versions):
            _created(ProtocolVersion(trial=trial, **version), f"protocol_versions[{i}]", errors, user, reason)
        if errors:
            raise ValidationError(errors)
        # Every trial has its results from the start (issue 16 item 6): level 1 is open
        # before anyone is enrolled.
        for kind in TrialComputation.Kind.values:
            computation_request(trial.pk, kind)
    return trial


def trial_design_change(
    trial: Trial, *, user: Any, values: dict[str, Any], protocol_version: str | None, reason: str
) -> Trial:
    """Change the trial's dose-finding design or its parameters (DESIGN_FIELDS), audited.

    Before the first enrolment any valid design may be set (the reason defaults to
    "design set before enrolment"). After it, the change must name the protocol version
    that amends the design (one of the trial's ProtocolVersion rows) and give a reason;
    the history row's reason records both. The escalation state is recomputed.
    """
    from core.audit import record_update

    unknown = sorted(set(values) - set(DESIGN_FIELDS))
    if unknown:
        raise ValidationError({k: ["Not a design parameter."] for k in unknown})
    with transaction.atomic():
        locked = Trial.objects.select_for_update().get(pk=trial.pk)
        changed = [k for k, v in values.items() if getattr(locked, k) != v]
        if not changed:
            return locked
        candidate = Trial(**{f: getattr(locked, f) for f in DESIGN_FIELDS})
        for k, v in values.items():
            setattr(candidate, k, v)
        errors = design_problems(candidate.design_spec(), locked.dose_levels.count())
        # Enrolled patients of the trial, counted through the relation (trial sits below
        # the patients app and imports none of it): patients.selectors.enrolment_counts' total.
        enrolled = locked.patients.filter(enrolled_on__isnull=False).count()
        versions = list(locked.protocol_versions.values_list("version", flat=True))
        errors |= design_change_problems(changed, enrolled, protocol_version, versions, reason or "")
        if errors:
            raise ValidationError(errors)
        why = (reason or "").strip() or "design set before enrolment"
        if enrolled:
            why = f"design change under protocol version {protocol_version}: {why}"
        updated = record_update(locked, dict(values), user=user, reason=why)
        computation_request(trial.pk, TrialComputation.Kind.ESCALATION)
    return updated  # type: ignore[return-value]


def _created(obj: Any, where: str, errors: dict[str, list[str]], user: Any, reason: str) -> None:
    from core.audit import record_create

    try:
        with transaction.atomic():
            record_create(obj, user=user, reason=reason)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            key = field if not where else (where if field == "__all__" else f"{where}.{field}")
            errors.setdefault(key, []).extend(messages)
