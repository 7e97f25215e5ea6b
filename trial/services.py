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
from trial.configuration import (
    DESIGN_FIELDS,
    DoseLevelSpec,
    design_change_problems,
    design_problems,
    dose_level_problems,
)
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


def escalation_backfill_slots(trial: Trial) -> dict[int, int]:
    """Open backfill places per dose level number (issue 17, ``backfill_slots`` of the
    latest escalation computation); the enrolment service reads it. Empty when none."""
    computation = computation_ensure(trial, TrialComputation.Kind.ESCALATION)
    if computation is None or not computation.data:
        return {}
    return {row["dose_level"]: row["slots"] for row in computation.data.get("backfill_slots", []) if row["slots"] > 0}


# --- backfill (issue 17): the rule is analysis.designs.backfill ----------------------


def _backfill_rows(
    trial: Trial,
    n_levels: int,
    rows: list[dict[str, Any]],
    closed: dict[int, str],
    *,
    in_effect: int | None,
    recommended: int | None,
    ended: str | None,
) -> list[dict[str, Any]]:
    from analysis.designs.backfill import BackfillSettings, backfill_current_level, backfill_slots

    settings = BackfillSettings(trial.backfill_enabled, trial.backfill_max_per_level, trial.backfill_levels)
    # Non-evaluable backfill patients are replaced (PROTOCOL s5): they hold no place.
    taken = [
        sum(1 for r in rows if r["dose_level"] == lv and r.get("backfill") and r["status"] != DltStatus.NON_EVALUABLE)
        for lv in range(1, n_levels + 1)
    ]
    current = backfill_current_level(in_effect, recommended)
    slots = backfill_slots(settings, n_levels, taken, current, closed, ended)
    return [{"dose_level": b.dose_level, "slots": b.slots, "backfill": b.enrolled, "reason": b.reason} for b in slots]


def design_backfill(
    trial: Trial,
    design: Any,
    result: Any,
    outcomes: list[Any],
    rows: list[dict[str, Any]],
    *,
    in_effect: int | None,
    recommended: int | None,
    ended: str | None,
) -> list[dict[str, Any]]:
    """``backfill_slots`` for a design of analysis.designs: its levels closed by their own
    data (eliminated; an interval design's de-escalation zone; the CRM's estimate above the
    target)."""
    from analysis.designs.backfill import closed_levels

    zone = getattr(design, "zone", None)
    closed = closed_levels(
        outcomes,
        result.eliminated_levels,
        zone=zone,
        estimates=result.estimates if zone is None else (),
        target=trial.target_dlt_rate if zone is None else None,
    )
    return _backfill_rows(trial, len(outcomes), rows, closed, in_effect=in_effect, recommended=recommended, ended=ended)


def three_plus_three_backfill(trial: Trial, state: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``backfill_slots`` for 3+3: a backfill patient is a patient of the level (the engine
    counts every DLT of the level: >= 2 make it too toxic, PROTOCOL s6), which closes it."""
    from analysis.designs.backfill import THREE_PLUS_THREE_TOXIC_DLTS, closed_levels

    n_levels = trial.dose_levels.count()
    outcomes, _, _ = design_level_outcomes(rows, n_levels)
    closed = closed_levels(outcomes, toxic_dlts=THREE_PLUS_THREE_TOXIC_DLTS)
    final = str(state.decision) if str(state.decision) in ("mtd_declared", "stop_no_mtd") else None
    return _backfill_rows(
        trial,
        n_levels,
        rows,
        closed,
        in_effect=state.current_dose_level if rows else None,
        recommended=state.recommended_dose_level,
        ended=final,
    )


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


# --- the dose-finding designs beyond 3+3 (issue 17) -------------------------------------

# Decisions of a design other than 3+3 that take effect only once signed.
DESIGN_SIGNABLE = frozenset({"escalate", "stay", "de_escalate", "mtd_declared", "stop_no_mtd"})


def dose_finding_design(trial: Trial, levels: tuple[float, ...]) -> Any:
    """The trial's design (not 3+3) as an analysis.designs object: one interface,
    ``decide(outcomes, current_level) -> DesignResult``. Raises ValueError naming the
    parameter when the configuration cannot make a design."""
    from analysis.designs.boin import Boin
    from analysis.designs.crm import Crm
    from analysis.designs.i3plus3 import I3Plus3
    from analysis.designs.interval import IntervalSettings
    from analysis.designs.keyboard import Keyboard

    if not levels:
        raise ValueError("dose_levels: the trial has no dose level")
    if trial.design == Trial.Design.CRM:
        return Crm(
            levels,
            tuple(float(v) for v in trial.crm_skeleton),
            trial.target_dlt_rate,
            model=trial.crm_model,  # type: ignore[arg-type]
            scale=trial.crm_prior_sd,
            cohort_size=trial.cohort_size,
            max_sample_size=trial.max_sample_size,
        )
    earlystop = trial.boin_n_earlystop if trial.design == Trial.Design.BOIN else 100
    settings = IntervalSettings(trial.target_dlt_rate, trial.cohort_size, trial.max_sample_size, earlystop)
    if trial.design == Trial.Design.BOIN:
        return Boin(levels, settings, trial.boin_p_saf, trial.boin_p_tox)
    if trial.design == Trial.Design.I3PLUS3:
        return I3Plus3(levels, settings)
    if trial.design == Trial.Design.MTPI2:
        return Keyboard(levels, settings)
    raise ValueError(f"design: {trial.design!r} is not a dose-finding design of analysis.designs")


def design_level_outcomes(rows: list[dict[str, Any]], n_levels: int) -> tuple[list[Any], int | None, int]:
    """Per-level LevelOutcome from patient_dlt_outcomes rows (the ones 3+3 reads): DLTs and
    evaluable patients, patients still in the window; non-evaluable (replaced) patients
    left out. Also the current level (where the latest counted patient of a dose-finding
    cohort was treated) and how many such patients count (backfill patients left out)."""
    from analysis.designs.common import LevelOutcome

    counted = [r for r in rows if r["status"] != DltStatus.NON_EVALUABLE]
    outcomes = []
    for level in range(1, n_levels + 1):
        here = [r["status"] for r in counted if r["dose_level"] == level]
        dlts = sum(1 for st in here if st == DltStatus.DLT)
        evaluable = dlts + sum(1 for st in here if st == DltStatus.NO_DLT)
        # Backfill patients (analysis.designs.backfill): their DLTs count for their level,
        # but one still in the DLT window does not hold the dose-finding decision.
        backfill = [r["status"] for r in counted if r["dose_level"] == level and r.get("backfill")]
        pending = sum(1 for st in here if st == DltStatus.PENDING) - backfill.count(DltStatus.PENDING)
        backfill_evaluable = sum(1 for st in backfill if st in (DltStatus.DLT, DltStatus.NO_DLT))
        outcomes.append(LevelOutcome(evaluable, dlts, pending, backfill_evaluable))
    cohorts = [r for r in counted if not r.get("backfill")]  # the dose-finding cohorts
    current = cohorts[-1]["dose_level"] if cohorts else None
    return outcomes, current, len(cohorts)


def design_state(
    trial: Trial, levels: tuple[float, ...], rows: list[dict[str, Any]], signed: list[tuple[str, int]]
) -> dict[str, Any]:
    """The rule's view and what is in effect, for a design other than 3+3.

    Cohorts of ``cohort_size`` in enrolment order (the last cut at the maximum sample
    size). The first cohort opens with the trial; each later one opens when the decision
    taken on the complete cohort before it is signed: the k-th signed decision answers
    the k-th complete cohort. While a cohort is incomplete its remaining places stay open
    at its level (``enroll``, or ``wait`` when patients are in the DLT window).
    """
    design = dose_finding_design(trial, levels)
    rows = sorted(rows, key=lambda r: r["enrolment_order"])
    outcomes, current, treated = design_level_outcomes(rows, len(levels))
    result = design.decide(outcomes, current)
    size, max_n = trial.cohort_size, trial.max_sample_size
    started = -(-treated // size)  # cohorts begun
    complete = treated == 0 or treated % size == 0 or treated >= max_n
    reasons = list(result.reasons)
    warnings: list[str] = []
    decision, level = str(result.decision), result.recommended_dose_level
    rule_slots = list(result.open_slots)
    open_slots: list[tuple[int, int]] = []
    awaiting: dict[str, Any] | None = None
    mtd: int | None = None
    if len(signed) < started - 1:
        warnings.append(
            f"{started - 1 - len(signed)} cohort(s) were enrolled without a signed decision opening them "
            f"({started} cohort(s) begun, {len(signed)} decision(s) signed)."
        )
    if treated and not complete and not result.finished:
        assert current is not None  # noqa: S101 (a narrowing for mypy: treated > 0 means a current level)
        left = min(started * size, max_n) - treated
        in_cohort = treated - (started - 1) * size
        decision = str(result.decision) if result.decision == "wait" else "enroll"
        level = current
        rule_slots = [(current, left)]
        reasons = [
            f"Cohort {started} at level {current}: {in_cohort} of {size} patient(s) enrolled; "
            f"the next decision is taken once the cohort is complete ({left} place(s) left).",
            *[r for r in result.reasons if r.startswith("Wait:")],
        ]
        if len(signed) >= started - 1:
            open_slots = [(current, left)]
    elif decision == "enroll":
        open_slots = rule_slots
    elif decision in DESIGN_SIGNABLE:
        wanted = (decision, level if level is not None else 1)
        in_effect = len(signed) >= started and signed[-1] == wanted
        if in_effect:
            open_slots = rule_slots if not result.finished else []
            if decision == "mtd_declared":
                mtd = level
        else:
            awaiting = {"decision": wanted[0], "dose_level": wanted[1]}
            if len(signed) >= started:
                warnings.append(
                    f"a past decision no longer holds: {signed[-1][0]} at level {signed[-1][1]} was signed, "
                    f"the rule now gives {wanted[0]} at level {wanted[1]}; sign the current decision."
                )
    by_level: dict[int, dict[str, int]] = {}
    for r in rows:
        c = by_level.setdefault(
            r["dose_level"], {"enrolled": 0, "evaluable": 0, "non_evaluable": 0, "pending": 0, "dlts": 0, "backfill": 0}
        )
        c["enrolled"] += 1
        c["backfill"] += bool(r.get("backfill"))
        st = r["status"]
        c["non_evaluable"] += st == DltStatus.NON_EVALUABLE
        c["pending"] += st == DltStatus.PENDING
        c["evaluable"] += st in (DltStatus.DLT, DltStatus.NO_DLT)
        c["dlts"] += st == DltStatus.DLT
    return {
        "current_dose_level": current if current is not None else (level or 1),
        "decision": decision,
        "recommended_dose_level": level,
        "mtd_dose_level": mtd,
        "eliminated_dose_levels": list(result.eliminated_levels),
        "estimates": [
            {"dose_level": lv, "dlt_rate": None if e is None else round(float(e), 6)}
            for lv, e in enumerate(result.estimates, start=1)
        ],
        "recommended_slots": [{"dose_level": lv, "slots": n} for lv, n in rule_slots],
        "open_slots": [{"dose_level": lv, "slots": n} for lv, n in open_slots],
        "awaiting_signoff": awaiting,
        "cohorts": [{"dose_level": lv, "dose_mg_m2": levels[lv - 1], **by_level[lv]} for lv in sorted(by_level)],
        "reasons": reasons,
        "warnings": warnings,
        "backfill_slots": design_backfill(
            trial,
            design,
            result,
            outcomes,
            rows,
            in_effect=open_slots[0][0] if open_slots else current,
            recommended=level,
            ended=decision if decision in ("mtd_declared", "stop_no_mtd") or result.finished else None,
        ),
    }


def _design_escalation(trial: Trial) -> dict[str, Any]:
    """A non-3+3 design's state in the escalation resource's shape (docs/api.md)."""
    from safety.selectors import patient_dlt_outcomes

    rows = sorted(patient_dlt_outcomes(trial, as_of=timezone.localdate()), key=lambda r: r["enrolment_order"])
    levels = tuple(float(d) for d in trial.dose_levels.order_by("level").values_list("dose_mg_m2", flat=True))
    signoffs = list(trial.escalation_signoffs.order_by("signed_at", "id"))
    state = design_state(trial, levels, rows, [(s.decision, s.dose_level) for s in signoffs])
    review = _needs_review(rows)
    if review:
        state["warnings"].insert(0, _review_warning(review))
    return {
        "design": trial.design,
        "variant": None,
        "target_dlt_rate": trial.target_dlt_rate,
        "cohort_size": trial.cohort_size,
        "max_sample_size": trial.max_sample_size,
        **state,
        "history": _signoff_history(signoffs),
        "rule_steps": [],
        "needs_review": {"count": len(review), "patients": review},
        "patients": [
            {
                "subject_id": r["subject_id"],
                "dose_level": r["dose_level"],
                "status": str(r["status"]),
                "reason": r.get("reason", ""),
                "backfill": bool(r.get("backfill")),
            }
            for r in rows
        ],  # fmt: skip
    }


def _needs_review(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"subject_id": r["subject_id"], "dose_level": r["dose_level"], **item}
        for r in rows
        for item in r.get("readjudication", [])
    ]


def _review_warning(review: list[dict[str, Any]]) -> str:
    return (
        f"needs review: {len(review)} signed DLT adjudication(s) rest on adverse events edited after "
        "signing; they count as signed until an investigator re-adjudicates them, and no escalation "
        "decision can be signed meanwhile."
    )


def _signoff_history(signoffs: list[EscalationSignoff]) -> list[dict[str, Any]]:
    return [
        {
            "at": s.signed_at.isoformat(),
            "dose_level": s.dose_level,
            "decision": s.decision,
            "signed_by": s.signed_by_name,
            "signed_at": s.signed_at.isoformat(),
            "imported": s.imported,
        }
        for s in signoffs
    ]


def escalation_pathways(trial: Trial, cohorts: Any) -> dict[str, Any]:
    """Dose-transition pathways (analysis.designs.pathways) for the next 1 or 2 cohorts
    on the trial's current data: every possible DLT count and the decision it leads to."""
    from analysis.designs.pathways import PathNode, dose_paths
    from analysis.designs.three_plus_three import ThreePlusThree
    from safety.selectors import patient_dlt_outcomes

    try:
        depth = int(cohorts)
    except (TypeError, ValueError):
        depth = 0
    if str(cohorts) not in ("1", "2") or depth not in (1, 2):
        raise ValidationError({"cohorts": [f"Give cohorts=1 or cohorts=2 (got {cohorts!r})."]})
    levels = tuple(float(d) for d in trial.dose_levels.order_by("level").values_list("dose_mg_m2", flat=True))
    if not levels:
        raise ValidationError({"dose_levels": ["The trial has no dose level yet."]})
    rows = sorted(patient_dlt_outcomes(trial, as_of=timezone.localdate()), key=lambda r: r["enrolment_order"])
    outcomes, current, _ = design_level_outcomes(rows, len(levels))
    if trial.design == Trial.Design.THREE_PLUS_THREE:
        design: Any = ThreePlusThree(levels, Variant(trial.escalation_variant))
    else:
        design = dose_finding_design(trial, levels)
    root = dose_paths(design, outcomes, current, depth)

    def node(n: PathNode) -> dict[str, Any]:
        r = n.result
        return {
            "treated_dose_level": n.treated_level,
            "cohort_size": n.cohort_size,
            "cohort_dlts": n.cohort_dlts,
            "decision": str(r.decision),
            "recommended_dose_level": r.recommended_dose_level,
            "next_slots": [{"dose_level": lv, "slots": k} for lv, k in r.open_slots],
            "eliminated_dose_levels": list(r.eliminated_levels),
            "mtd_dose_level": r.mtd_dose_level,
            "children": [node(c) for c in n.children],
        }

    return {"design": trial.design, "cohorts": depth, "current_dose_level": current, "root": node(root)}


def _escalation(trial: Trial) -> dict[str, Any]:
    """The escalation state in the shape of docs/api.md's escalation resource: the 3+3
    engine (PROTOCOL s6), or the trial's other design (issue 17, ``_design_escalation``)."""
    if trial.design != Trial.Design.THREE_PLUS_THREE:
        return _design_escalation(trial)
    design, patients, signoffs, rows = _escalation_inputs(trial)
    state = escalation_state(design, patients, [SignedDecision(Decision(s.decision), s.dose_level) for s in signoffs])
    by_id = {str(r["patient_id"]): r for r in rows}
    # A signed DLT decision whose AE was edited after signing still counts as signed (only
    # an investigator's signature makes or unmakes a DLT, PROTOCOL s5), but the state
    # needs review: no escalation decision is signed until it is re-adjudicated (issue 16).
    review = _needs_review(rows)
    warnings = list(state.warnings)
    if review:
        warnings.insert(0, _review_warning(review))
    return {
        "design": "3+3",
        "variant": str(state.variant),
        "current_dose_level": state.current_dose_level,
        "decision": str(state.decision),
        "recommended_dose_level": state.recommended_dose_level,
        "mtd_dose_level": state.mtd_dose_level,
        "eliminated_dose_levels": [],
        "estimates": [],
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
                "backfill": sum(1 for r in rows if r["dose_level"] == c.dose_level and r.get("backfill")),
            }
            for c in state.cohorts
        ],
        "backfill_slots": three_plus_three_backfill(trial, state, rows),
        "history": _signoff_history(signoffs),
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
                "backfill": bool(by_id[p.patient_id].get("backfill")),
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
        for kind in COMPUTATIONS:
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
    from patients.selectors import enrolment_counts

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
        enrolled = enrolment_counts(locked)["enrolled"]
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
    signable = (
        {d.value for d in SIGNABLE_DECISIONS} if trial.design == Trial.Design.THREE_PLUS_THREE else DESIGN_SIGNABLE
    )
    if decision not in signable:
        errors["decision"] = [
            f"A signed decision of the {trial.design} design is one of: {', '.join(sorted(signable))}."
        ]
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
