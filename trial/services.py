"""Writes for the trial app: configuration, role grants, trial-level recomputation."""

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, time
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.models import Signature
from core.recorded_times import future_date_problems
from core.signatures import signature_apply, signature_link
from trial import access
from trial.configuration import DoseLevelSpec, dose_level_problems
from trial.endpoints import PatientOutcome as SurvivalOutcome
from trial.escalation import (
    SIGNABLE_DECISIONS,
    Decision,
    DltStatus,
    EscalationDesign,
    PatientOutcome,
    SignedDecision,
    Variant,
    deciding_levels,
    escalation_state,
)
from trial.models import DoseLevel, EscalationSignoff, ProtocolVersion, RoleGrant, Site, Trial, TrialComputation
from trial.survival_summary import SurvivalSubject, survival_summary

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


def escalation_open_slots(trial: Trial) -> dict[int, int]:
    """Open slots per dose level number, as signed into effect (PROTOCOL s6).

    Read from the latest escalation computation; the enrolment service assigns the dose
    level from here. Empty when nothing is open (or nothing was computed yet).
    """
    computation = computation_ensure(trial, TrialComputation.Kind.ESCALATION)
    if computation is None or not computation.data:
        return {}
    return {row["dose_level"]: row["slots"] for row in computation.data.get("open_slots", []) if row["slots"] > 0}


# --- trial-level recomputation -------------------------------------------------------


def _enrolment_summary(trial: Trial) -> dict[str, Any]:
    # The trial-level recomputation reads the patients app through its selectors
    # (docs/ARCHITECTURE.md: trial <- patients <- dosing <- safety).
    from patients.selectors import enrolment_counts

    return enrolment_counts(trial)


def _escalation_inputs(trial: Trial) -> tuple[EscalationDesign, list[PatientOutcome], list[EscalationSignoff], list]:  # type: ignore[type-arg]
    from safety.selectors import patient_dlt_outcomes

    rows = sorted(patient_dlt_outcomes(trial, as_of=timezone.localdate()), key=lambda r: r["enrolment_order"])
    patients = [
        PatientOutcome(str(r["patient_id"]), r["dose_level"], order, DltStatus(r["status"]))
        for order, r in enumerate(rows)
    ]
    levels = tuple(float(d) for d in trial.dose_levels.order_by("level").values_list("dose_mg_m2", flat=True))
    signoffs = list(trial.escalation_signoffs.order_by("signed_at", "id"))
    design = EscalationDesign(levels, Variant(trial.escalation_variant), trial.expansion_cohort_size)
    return design, patients, signoffs, rows


def _escalation(trial: Trial) -> dict[str, Any]:
    """The 3+3 state (PROTOCOL s6) in the shape of docs/api.md's escalation resource."""
    design, patients, signoffs, rows = _escalation_inputs(trial)
    state = escalation_state(design, patients, [SignedDecision(Decision(s.decision), s.dose_level) for s in signoffs])
    by_id = {str(r["patient_id"]): r for r in rows}
    # A signed DLT decision whose AE was edited after signing still counts as signed (only
    # an investigator's signature makes or unmakes a DLT, PROTOCOL s5), but the state
    # needs review: no escalation decision is signed until it is re-adjudicated (issue 16).
    review = [
        {"subject_id": r["subject_id"], "dose_level": r["dose_level"], **item}
        for r in rows
        for item in r.get("readjudication", [])
    ]
    warnings = list(state.warnings)
    if review:
        warnings.insert(
            0,
            f"needs review: {len(review)} signed DLT adjudication(s) rest on adverse events edited after "
            "signing; they count as signed until an investigator re-adjudicates them, and no escalation "
            "decision can be signed meanwhile.",
        )
    return {
        "design": "3+3",
        "variant": str(state.variant),
        "current_dose_level": state.current_dose_level,
        "decision": str(state.decision),
        "recommended_dose_level": state.recommended_dose_level,
        "mtd_dose_level": state.mtd_dose_level,
        "open_slots": [{"dose_level": level, "slots": n} for level, n in state.open_slots],
        "awaiting_signoff": None
        if state.awaiting_signoff is None
        else {"decision": str(state.awaiting_signoff.decision), "dose_level": state.awaiting_signoff.dose_level},
        "cohorts": [
            {
                "dose_level": c.dose_level,
                "dose_mg_m2": design.dose_levels[c.dose_level - 1],
                "enrolled": c.enrolled,
                "evaluable": c.evaluable,
                "non_evaluable": c.non_evaluable,
                "pending": c.pending,
                "dlts": c.dlts,
            }
            for c in state.cohorts
        ],
        "history": [
            {
                "at": s.signed_at.isoformat(),
                "dose_level": s.dose_level,
                "decision": s.decision,
                "signed_by": s.signed_by_name,
                "signed_at": s.signed_at.isoformat(),
                "imported": s.imported,
            }
            for s in signoffs
        ],
        "rule_steps": [
            {
                "decision": str(step.decision),
                "dose_level": step.dose_level,
                "from_dose_level": step.from_dose_level,
                "signed": step.signed,
                "reason": step.reason,
            }
            for step in state.history
        ],  # fmt: skip
        "reasons": list(state.reasons),
        "warnings": warnings,
        "needs_review": {"count": len(review), "patients": review},
        "patients": [
            {
                "subject_id": by_id[p.patient_id]["subject_id"],
                "dose_level": p.dose_level,
                "status": str(p.status),
                "reason": by_id[p.patient_id].get("reason", ""),
            }
            for p in patients
        ],
    }


def _survival(trial: Trial) -> dict[str, Any]:
    """OS, PFS and NRM summaries (PROTOCOL s8) in the shape of docs/api.md."""
    from dosing.selectors import first_dose_dates
    from patients.selectors import outcome_rows

    first_doses = first_dose_dates(trial)
    subjects = [
        SurvivalSubject(
            SurvivalOutcome(
                subject_id=r["subject_id"],
                hct_date=r["hct_date"],
                first_dose_date=first_doses.get(r["patient_id"]),
                relapse_date=r["relapse_date"],
                death_date=r["death_date"],
                last_known_alive=r["last_contact_date"],
            ),
            {
                "mrd": None if r["mrd_positive"] is None else ("positive" if r["mrd_positive"] else "negative"),
                "conditioning": None
                if r["conditioning"] is None
                else ("mac" if r["conditioning"] == "mac" else "ric_nma"),
                "dose_level": None if r["dose_level"] is None else str(r["dose_level"]),
            },
        )
        for r in outcome_rows(trial)
        if r["hct_date"] is not None
    ]
    return survival_summary(subjects, origin=trial.survival_origin, landmark_days=float(trial.landmark_days))


def _dashboard(trial: Trial) -> dict[str, Any]:
    """The investigator dashboard's per-patient lists and Table 2 (dashboard.selectors
    builds them through the safety and dosing selectors, and filters them per view)."""
    from dashboard.selectors import dashboard_lists

    return dashboard_lists(trial, timezone.localdate())


COMPUTATIONS: dict[str, Callable[[Trial], dict[str, Any]]] = {
    TrialComputation.Kind.ENROLMENT: _enrolment_summary,
    TrialComputation.Kind.ESCALATION: _escalation,
    TrialComputation.Kind.SURVIVAL: _survival,
    TrialComputation.Kind.DASHBOARD: _dashboard,
}
# Results that change with the calendar alone (a DLT window closes, follow-up grows, an
# assessment becomes overdue): the periodic relay recomputes them once a day even when no
# data changed.
DATE_DEPENDENT = {TrialComputation.Kind.ESCALATION, TrialComputation.Kind.SURVIVAL, TrialComputation.Kind.DASHBOARD}
# The dashboard's lists read what these results read (cycles, AEs, events, transplants,
# adjudications, enrolment): every write that requests one of them marks the dashboard
# stale too, in the same transaction, here rather than at each call site; the worker that
# answers the request then brings the dashboard up to date (``computation_run_followers``),
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

    from trial.tasks import trial_recompute

    try:
        trial_recompute.delay(trial_id, kind)
    except OperationalError as exc:
        logger.warning("broker unreachable, %s of trial %s left to the relay: %s", kind, trial_id, exc)


def computation_run(trial_id: int, kind: str) -> TrialComputation:
    """Recompute one result if it is stale. Idempotent: a second run finds it fresh.

    Bursts coalesce: the first run answers every request made before it took the row
    lock, and the queued runs behind it find nothing to do.
    """
    if kind in COMPUTED_WITHOUT_LOCK:
        return _computation_run_unlocked(trial_id, kind)
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


# Results computed without holding their row lock: the dashboard's lists take about a
# second on the largest trial, and every data write of the trial updates the row (the
# outbox), so a locked computation would hold up data entry meanwhile.
COMPUTED_WITHOUT_LOCK = {TrialComputation.Kind.DASHBOARD}


def _computation_run_unlocked(trial_id: int, kind: str) -> TrialComputation:
    """``computation_run`` that locks the row only to store the result.

    The result answers the ``request_seq`` read before computing: a request committed
    before that read committed its data too, so the computation sees them; a request
    made during the computation leaves the result stale for its own run. A slower run
    that finishes after a newer one does not overwrite it (``computed_seq`` only grows).
    """
    TrialComputation.objects.get_or_create(trial_id=trial_id, kind=kind)
    computation = TrialComputation.objects.select_related("trial").get(trial_id=trial_id, kind=kind)
    if not computation.stale:
        return computation
    answered = computation.request_seq
    data = COMPUTATIONS[kind](computation.trial)
    with transaction.atomic():
        computation = TrialComputation.objects.select_for_update().get(trial_id=trial_id, kind=kind)
        if computation.computed_seq >= answered:
            return computation  # a concurrent run answered these requests already
        computation.data = data
        computation.computed_seq = answered
        computation.computed_at = timezone.now()
        computation.runs += 1
        computation.save(update_fields=["data", "computed_seq", "computed_at", "runs"])
    return computation


def computation_run_followers(trial_id: int, kind: str) -> None:
    """Bring up to date what a request of ``kind`` also marked stale (``ALSO_REQUESTS``).
    A no-op when another run answered it already."""
    follower = ALSO_REQUESTS.get(kind)
    if follower is not None:
        computation_run(trial_id, follower)


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
        return computation_run(trial.pk, kind)
    except ValueError as exc:  # an incomplete configuration: nothing to show yet, never a 500
        logger.info("%s of trial %s not computed: %s", kind, trial.pk, exc)
        return None


def computation_relay_stale() -> int:
    """Enqueue every stale result: the periodic safety net for a request whose message was
    lost (broker down at commit time, worker killed). Returns how many were enqueued."""
    from trial.tasks import trial_recompute

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


def escalation_sign(
    *, trial: Trial, user: Any, password: str, rationale: str, expected: dict[str, Any]
) -> EscalationSignoff:
    """An investigator signs the decision awaiting sign-off; it then takes effect.

    ``expected`` is the decision the investigator saw ({"decision", "dose_level"}): if
    the data changed meanwhile (or a recomputation is pending) nothing is signed.
    """
    if not access.can(user, "sign", trial):
        raise PermissionDenied("Only an investigator of this trial signs escalation decisions.")
    if not (rationale or "").strip():
        raise ValidationError({"rationale": ["State the basis of the decision (dose-escalation meeting)."]})
    with transaction.atomic():
        computation = (
            TrialComputation.objects.select_for_update()
            .filter(trial=trial, kind=TrialComputation.Kind.ESCALATION)
            .first()
        )
        if computation is None or computation.stale:
            raise ValidationError(
                {"decision": ["The escalation state is being recomputed; reload in a moment and sign the current one."]}
            )
        awaiting = computation.data.get("awaiting_signoff")
        under_review = (computation.data.get("needs_review") or {}).get("count", 0)
        if under_review:
            raise ValidationError(
                {"decision": [f"{under_review} signed DLT adjudication(s) rest on adverse events edited after "
                              "signing: an investigator re-adjudicates them first (DLT review), then the "
                              "escalation decision is signed on the current data."]}
            )  # fmt: skip
        if not awaiting:
            raise ValidationError({"decision": ["No decision is awaiting sign-off."]})
        if {"decision": expected.get("decision"), "dose_level": expected.get("dose_level")} != awaiting:
            raise ValidationError(
                {"decision": [f"The decision changed to {awaiting['decision']} at level {awaiting['dose_level']}; "
                              "review it again before signing."]}
            )  # fmt: skip
        signoff = EscalationSignoff(
            trial=trial,
            decision=awaiting["decision"],
            dose_level=awaiting["dose_level"],
            rationale=rationale.strip(),
            signed_by_name=user.get_full_name() or user.get_username(),
        )
        signoff._history_user = user  # type: ignore[attr-defined]
        signoff._change_reason = "escalation decision signed"  # type: ignore[attr-defined]
        signoff.save()
        signature = signature_apply(signoff, user=user, password=password, meaning=Signature.Meaning.ESCALATION)
        # The link to its signature is not signed content (core.signatures._signed).
        signature_link(signoff, signature, user=user)
        computation_request(trial.pk, TrialComputation.Kind.ESCALATION)
    signoff.refresh_from_db()
    return signoff


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
        for kind in COMPUTATIONS:
            computation_request(trial.pk, kind)
    return trial


def _created(obj: Any, where: str, errors: dict[str, list[str]], user: Any, reason: str) -> None:
    from core.audit import record_create

    try:
        with transaction.atomic():
            record_create(obj, user=user, reason=reason)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            key = field if not where else (where if field == "__all__" else f"{where}.{field}")
            errors.setdefault(key, []).extend(messages)


def escalation_signoff_import(
    *,
    user: Any,
    trial: Trial,
    decision: str,
    dose_level: int,
    signed_by_name: str,
    signed_on: date,
    rationale: str = "",
    first_enrolled: Mapping[int, date] | None = None,
) -> EscalationSignoff:
    """A historic signed 3+3 decision carried in by a trial bundle (docs/api.md): the
    signer's name and date as recorded, ``imported=True``, no live signature.

    The signing date is not in the future (the trial's time zone) and not before the first
    enrolment of the cohort it was decided on (``trial.escalation.deciding_levels``; the
    first enrolment date of each level, ``first_enrolled``, comes from the bundle, whose
    patients are imported after the sign-offs)."""
    if not access.can(user, "sign", trial):
        raise PermissionDenied("Only an investigator of this trial signs escalation decisions.")
    errors: dict[str, list[str]] = {}
    if decision not in {d.value for d in SIGNABLE_DECISIONS}:
        errors["decision"] = [f"A signed decision is one of: {', '.join(sorted(d.value for d in SIGNABLE_DECISIONS))}."]
    if not trial.dose_levels.filter(level=dose_level).exists():
        errors["dose_level"] = [f"The trial has no dose level {dose_level}."]
    if not (signed_by_name or "").strip():
        errors["by"] = ["A historic sign-off needs the signer's name."]
    if signed_on is None:
        errors["at"] = ["A historic sign-off needs its date."]
    else:
        problems = future_date_problems("sign-off date", signed_on, trial.local_today(), trial.zone_name)
        known = first_enrolled or {}
        levels = deciding_levels(decision, dose_level) if "decision" not in errors else ()
        cohorts = sorted((known[level], level) for level in levels if level in known)
        if not problems and cohorts:
            first, level = cohorts[0]
            if signed_on < first:
                problems = (
                    f"The sign-off date {signed_on.isoformat()} is before the first enrolment at L{level} "
                    f"({first.isoformat()}), the cohort it decides on.",
                )
        if problems:
            errors["at"] = list(problems)
    if errors:
        raise ValidationError(errors)
    signoff = EscalationSignoff(
        trial=trial,
        decision=decision,
        dose_level=dose_level,
        rationale=(rationale or "").strip(),
        signed_by_name=signed_by_name.strip(),
        signed_at=datetime.combine(signed_on, time(0, 0), tzinfo=UTC),
        imported=True,
    )
    with transaction.atomic():
        signoff._history_user = user  # type: ignore[attr-defined]
        signoff._change_reason = "historic escalation sign-off (trial bundle import)"  # type: ignore[attr-defined]
        signoff.save()
        computation_request(trial.pk, TrialComputation.Kind.ESCALATION)
    return signoff


def oc_parameters(query: Any) -> dict[str, Any]:
    """Validate the planning tool's inputs; errors name the parameter."""
    errors: dict[str, list[str]] = {}
    raw = str(query.get("p", "")).strip()
    try:
        ps = [float(x) for x in raw.split(",")] if raw else []
    except ValueError:
        ps = []
        errors["p"] = ["Give the true DLT probability of each level as numbers, e.g. p=0.1,0.2,0.3."]
    if not errors and not 1 <= len(ps) <= 10:
        errors["p"] = ["Give between 1 and 10 probabilities (one per dose level)."]
    elif not errors and any(not 0 <= x <= 1 for x in ps):
        errors["p"] = ["Each probability must be between 0 and 1."]
    variant = str(query.get("variant", Variant.STORER_A))
    if variant not in Variant.__members__.values():
        errors["variant"] = [f"Use one of: {', '.join(v.value for v in Variant)}."]
    try:
        simulations = int(query.get("simulations", 0))
    except ValueError:
        simulations = -1
    if not 0 <= simulations <= 20000:
        errors["simulations"] = ["A whole number from 0 to 20000."]
    if errors:
        raise ValidationError(errors)
    return {"p": ps, "variant": Variant(variant), "simulations": simulations}
