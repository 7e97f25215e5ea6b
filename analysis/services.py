"""The trial-level computations (issue 17): escalation, survival, enrolment summary and
the dashboard's lists, and the escalation decisions that are signed into effect.

This app sits above safety: it reads the patients, dosing and safety apps through their
selectors, and the designs are pure modules inside it (analysis.designs, analysis.escalation,
analysis.survival). The outbox (trial.services.computation_request) marks a result stale in
the writing transaction; ``computation_run`` (the task analysis.tasks.trial_recompute)
brings it up to date.
"""

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from analysis.designs.comparison import (
    DEFAULT_SEED,
    DEFAULT_TRIALS,
    DesignChoice,
    comparison_problems,
    comparison_run,
)
from analysis.designs.simulation import SimulationCancelled
from analysis.endpoints import PatientOutcome as SurvivalOutcome
from analysis.escalation import (
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
from analysis.models import SimulationRun
from analysis.survival_summary import SurvivalSubject, survival_summary
from core.errors import Problems
from core.models import Signature
from core.recorded_times import future_date_problems
from core.signatures import signature_apply, signature_link
from trial import access
from trial.configuration import DesignSpec
from trial.models import EscalationSignoff, Trial, TrialComputation
from trial.services import ALSO_REQUESTS, computation_request

logger = logging.getLogger(__name__)


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
    # (docs/ARCHITECTURE.md: trial <- patients <- dosing <- safety <- analysis).
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
    """The investigator dashboard's per-patient lists and Table 2 (analysis.selectors
    builds them through the safety and dosing selectors; dashboard.selectors filters them
    per view)."""
    from analysis.selectors import dashboard_lists

    return dashboard_lists(trial, timezone.localdate())


COMPUTATIONS: dict[str, Callable[[Trial], dict[str, Any]]] = {
    TrialComputation.Kind.ENROLMENT: _enrolment_summary,
    TrialComputation.Kind.ESCALATION: _escalation,
    TrialComputation.Kind.SURVIVAL: _survival,
    TrialComputation.Kind.DASHBOARD: _dashboard,
}


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
    enrolment of the cohort it was decided on (``analysis.escalation.deciding_levels``; the
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
        signed_at=datetime.combine(signed_on, datetime.min.time(), tzinfo=UTC),
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


logger = logging.getLogger(__name__)

RUNNING_STALE_SECONDS = 120
QUEUED_RELAY_SECONDS = 120  # a queued run's task is sent again after this long (simulation_relay_stuck)
RELAY_BATCH = 100
PROGRESS_WRITE_SECONDS = 0.25  # at most ~4 progress writes a second (each also checks for a cancel)
DESIGN_KEYS = frozenset(
    {
        "design",
        "target_dlt_rate",
        "cohort_size",
        "max_sample_size",
        "boin_p_saf",
        "boin_p_tox",
        "boin_n_earlystop",
        "crm_skeleton",
        "crm_model",
        "crm_prior_sd",
        "variant",
    }
)


def planning_allowed(user, trial: Trial | None = None) -> bool:  # type: ignore[no-untyped-def]
    """May ``user`` start (and cancel) planning simulations, in ``trial`` or free-standing."""
    if trial is not None:
        return access.can(user, "plan", trial)
    return any("plan" in access.CAPABILITIES[g.role] for g in access.active_grants(user))


def planning_visible(user) -> bool:  # type: ignore[no-untyped-def]
    """May ``user`` open the planning page at all (planners and sponsors)."""
    return any("view_planning" in access.CAPABILITIES[g.role] for g in access.active_grants(user))


def design_choice(values: dict[str, Any]) -> DesignChoice:
    """A design of the request (API body or form) as a DesignChoice; absent fields take the
    R packages' defaults (trial.configuration.DesignSpec)."""
    defaults = DesignSpec()
    spec = DesignSpec(
        design=values.get("design", defaults.design),
        target_dlt_rate=values.get("target_dlt_rate", defaults.target_dlt_rate),
        cohort_size=values.get("cohort_size", defaults.cohort_size),
        max_sample_size=values.get("max_sample_size", defaults.max_sample_size),
        boin_p_saf=values.get("boin_p_saf"),
        boin_p_tox=values.get("boin_p_tox"),
        boin_n_earlystop=values.get("boin_n_earlystop", defaults.boin_n_earlystop),
        crm_skeleton=list(values.get("crm_skeleton") or []),
        crm_model=values.get("crm_model", defaults.crm_model),
        crm_prior_sd=values.get("crm_prior_sd", defaults.crm_prior_sd),
    )
    return DesignChoice(spec, values.get("variant") or "storer_a")


def trial_defaults(trial: Trial) -> dict[str, Any]:
    """A trial's levels and design as the planning form's starting values."""
    return {
        "n_levels": trial.dose_levels.count(),
        "design": trial.design,
        "variant": trial.escalation_variant,
        "target_dlt_rate": trial.target_dlt_rate,
        "cohort_size": trial.cohort_size,
        "max_sample_size": trial.max_sample_size,
        "boin_p_saf": trial.boin_p_saf,
        "boin_p_tox": trial.boin_p_tox,
        "boin_n_earlystop": trial.boin_n_earlystop,
        "crm_skeleton": list(trial.crm_skeleton or []),
        "crm_model": trial.crm_model,
        "crm_prior_sd": trial.crm_prior_sd,
    }


def designs_with_trial_defaults(designs: Any, trial: Any) -> Any:
    """The request's designs with a planned trial's own parameters filled in: a design
    object naming the trial's design (``design`` absent counts as the trial's) takes the
    trial's configured value for each parameter it leaves out, so "simulate my trial"
    needs no copying; other designs keep the R packages' defaults. Anything not a list of
    objects is returned as given, for the check to name."""
    if not isinstance(trial, Trial) or not isinstance(designs, list):
        return designs
    own = {k: v for k, v in trial_defaults(trial).items() if k in DESIGN_KEYS}
    if not own["crm_skeleton"]:
        del own["crm_skeleton"]  # an empty skeleton is "not set", not a value to copy
    filled = []
    for values in designs:
        if isinstance(values, dict) and values.get("design", own["design"]) == own["design"]:
            values = own | values
        filled.append(values)
    return filled


def simulation_run_check(data: dict[str, Any]) -> None:
    """Every problem of a request, naming the field (writes nothing). ``data``: the fields
    that are present and typed (a form's cleaned data, an API body)."""
    problems = Problems()
    probabilities = data.get("true_dlt_probabilities")
    designs = designs_with_trial_defaults(data.get("designs"), data.get("trial"))
    if probabilities is None:
        problems.add("true_dlt_probabilities", "Give the true DLT probability of each dose level.")
    if designs is None:
        problems.add("designs", "Choose at least one design to compare.")
    choices = []
    for i, values in enumerate(designs or []):
        unknown = sorted(set(values) - DESIGN_KEYS)
        if unknown:
            problems.add(f"designs[{i}]", f"Unknown design parameter(s): {', '.join(unknown)}.")
        choices.append(design_choice(values))
    found = comparison_problems(
        probabilities if probabilities is not None else [0.1, 0.2],
        choices if designs is not None else [DesignChoice()],
        data.get("n_trials", DEFAULT_TRIALS),
        data.get("seed", DEFAULT_SEED),
    )
    problems.extend(found)
    threshold = data.get("overdose_threshold")
    if threshold is not None and (isinstance(threshold, bool) or not 0 <= threshold <= 1):
        problems.add("overdose_threshold", "The overdose threshold must be a DLT probability from 0 to 1.")
    trial = data.get("trial")
    if trial is not None and not isinstance(trial, Trial):
        problems.add("trial", "Name a trial by its code.")
    problems.raise_if_any()


def _overdose_threshold(data: dict[str, Any], choices: list[DesignChoice]) -> float:
    """As given; otherwise the target of the first design that has one (3+3: 0.3)."""
    if data.get("overdose_threshold") is not None:
        return float(data["overdose_threshold"])
    targets = [c.spec.target_dlt_rate for c in choices if c.spec.design != "3+3"]
    return float(targets[0]) if targets else 0.3


def simulation_run_request(*, user, data: dict[str, Any]) -> SimulationRun:  # type: ignore[no-untyped-def]
    """Store a run and enqueue its simulation once committed. ``data``: true_dlt_probabilities,
    designs (list of dicts, DESIGN_KEYS), n_trials, seed, optional overdose_threshold and trial."""
    trial = data.get("trial")
    if not planning_allowed(user, trial):
        where = f"in trial {trial.code}" if trial is not None else "in any of your trials"
        raise PermissionDenied(f"Planning simulations are for investigators and trial admins; not your role {where}.")
    simulation_run_check(data)
    choices = [design_choice(values) for values in designs_with_trial_defaults(data["designs"], trial)]
    with transaction.atomic():
        run = SimulationRun.objects.create(
            trial=trial,
            requested_by=user,
            designs=[c.parameters() for c in choices],
            true_dlt_probabilities=[float(p) for p in data["true_dlt_probabilities"]],
            n_trials=data.get("n_trials", DEFAULT_TRIALS),
            seed=data.get("seed", DEFAULT_SEED),
            overdose_threshold=_overdose_threshold(data, choices),
        )
        transaction.on_commit(lambda: _simulation_enqueue(run.pk))
    return run


def _simulation_enqueue(run_id: int) -> None:
    """Send the task; with the broker unreachable the run stays queued (the page says so
    and it can be cancelled) instead of failing the request after its commit."""
    from kombu.exceptions import OperationalError

    from analysis.tasks import simulation_run_task

    try:
        simulation_run_task.delay(run_id)
    except OperationalError as exc:
        logger.warning("broker unreachable, simulation run %s stays queued: %s", run_id, exc)


def simulation_relay_stuck(now: datetime | None = None) -> int:
    """Send again the runs whose task was lost (the periodic safety net, as the trial
    computations have): a run still queued QUEUED_RELAY_SECONDS after its last send (the
    broker was down at commit, or the queue was purged) or running without a heartbeat for
    RUNNING_STALE_SECONDS (its worker died). For a queued run ``heartbeat_at`` records the
    last send, so a run waiting behind a busy worker is sent at most once a period; a
    duplicate is harmless (simulation_run_execute claims the row). Returns the runs sent."""
    now = now or timezone.now()
    queued_before = now - timedelta(seconds=QUEUED_RELAY_SECONDS)
    stuck = SimulationRun.objects.filter(
        Q(status=SimulationRun.Status.QUEUED, heartbeat_at__isnull=True, requested_at__lt=queued_before)
        | Q(status=SimulationRun.Status.QUEUED, heartbeat_at__lt=queued_before)
        | Q(status=SimulationRun.Status.RUNNING, heartbeat_at__lt=now - timedelta(seconds=RUNNING_STALE_SECONDS))
    )
    ids = list(stuck.order_by("requested_at", "id").values_list("pk", flat=True)[:RELAY_BATCH])
    sent = 0
    for run_id in ids:
        # Marked first: the claim of a queued run ignores heartbeat_at, and a running one
        # whose worker comes back is not disturbed by a newer heartbeat.
        marked = SimulationRun.objects.filter(pk=run_id, status=SimulationRun.Status.QUEUED).update(heartbeat_at=now)
        if marked or SimulationRun.objects.filter(pk=run_id, status=SimulationRun.Status.RUNNING).exists():
            _simulation_enqueue(run_id)
            sent += 1
    return sent


def simulation_run_cancel(*, user, run: SimulationRun) -> SimulationRun:  # type: ignore[no-untyped-def]
    """Cancel a queued or running run (its worker stops at its next progress report).
    Cancelling a cancelled run changes nothing; a finished one cannot be cancelled."""
    if not planning_allowed(user, run.trial):
        raise PermissionDenied("Only a planner (investigator or trial admin) may cancel a simulation.")
    with transaction.atomic():
        cancelled = SimulationRun.objects.filter(
            pk=run.pk, status__in=[SimulationRun.Status.QUEUED, SimulationRun.Status.RUNNING]
        ).update(status=SimulationRun.Status.CANCELLED, cancelled_by=user, finished_at=timezone.now())
    run.refresh_from_db()
    if not cancelled and run.status != SimulationRun.Status.CANCELLED:
        raise ValidationError(
            {"status": [f"The simulation has already ended ({run.get_status_display().lower()}): nothing to cancel."]}
        )
    return run


def simulation_run_execute(run_id: int) -> str:
    """Run one simulation (the Celery task's body). Returns the status it leaves."""
    now = timezone.now()
    stale = now - timedelta(seconds=RUNNING_STALE_SECONDS)
    claimed = (
        SimulationRun.objects.filter(pk=run_id)
        .filter(Q(status=SimulationRun.Status.QUEUED) | Q(status=SimulationRun.Status.RUNNING, heartbeat_at__lt=stale))
        .update(status=SimulationRun.Status.RUNNING, started_at=now, heartbeat_at=now, progress=0.0)
    )
    if not claimed:  # done, cancelled, failed, gone, or running in another worker
        status = SimulationRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        return str(status or "missing")
    run = SimulationRun.objects.get(pk=run_id)
    still_running = SimulationRun.objects.filter(pk=run_id, status=SimulationRun.Status.RUNNING)
    last_write = [time.monotonic()]

    def on_progress(done: float) -> None:
        if time.monotonic() - last_write[0] < PROGRESS_WRITE_SECONDS:
            return
        last_write[0] = time.monotonic()
        if not still_running.update(progress=min(max(done, 0.0), 1.0), heartbeat_at=timezone.now()):
            raise SimulationCancelled(f"simulation run {run_id} was cancelled")

    started = time.monotonic()
    try:
        columns = comparison_run(
            run.true_dlt_probabilities,
            [design_choice(values) for values in run.designs],
            run.n_trials,
            run.seed,
            run.overdose_threshold,
            on_progress,
        )
    except SimulationCancelled:
        return SimulationRun.Status.CANCELLED
    except (ValueError, RuntimeError) as exc:  # a design refused its parameters or could not end a trial
        logger.exception("simulation run %s failed", run_id)
        still_running.update(status=SimulationRun.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now())
        return SimulationRun.Status.FAILED
    result = {
        "levels": len(run.true_dlt_probabilities),
        "columns": columns,
        "elapsed_seconds": round(time.monotonic() - started, 3),
    }
    finished = still_running.update(
        status=SimulationRun.Status.DONE, progress=1.0, result=result, finished_at=timezone.now()
    )
    # No row: cancelled after the last progress report; the cancel stands.
    return SimulationRun.Status.DONE if finished else SimulationRun.Status.CANCELLED
