"""Reads for the safety screens, API and the escalation computation.

Scoped reads take the user; trial-level reads (``patient_dlt_outcomes``) are unscoped
and used by the recomputation only. Every list costs a fixed number of queries: the
DLT inputs of many patients are read with one prefetch per table.
"""

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.db.models import F, Prefetch, Q, QuerySet
from django.utils import timezone

from dosing.models import Cycle, LabPanel
from patients.models import Consent, Patient, PatientEvent
from safety import adverse_events, ctcae, dlt, lab_grading
from safety.models import AdverseEvent, CtcaeTerm, DltAdjudication, GvhdEpisode, LabProposalDismissal
from trial import access
from trial.models import Trial

# ---------------------------------------------------------------- CTCAE dictionary


@lru_cache(maxsize=1)
def _catalogue() -> ctcae.CtcaeCatalogue:
    # The same file migration 0002 loaded into CtcaeTerm: ranking is the pure module's.
    return ctcae.load_ctcae(ctcae.BUNDLED_CSV)


def ctcae_search(query: str, *, limit: int = 20) -> list[CtcaeTerm]:
    """Terms matching ``query`` by name, SOC or MedDRA code, best first (ctcae.search)."""
    codes = [t.meddra_code for t in _catalogue().search(query, limit=limit)]
    rows = {t.meddra_code: t for t in CtcaeTerm.objects.filter(version=ctcae.CTCAE_VERSION, meddra_code__in=codes)}
    return [rows[c] for c in codes if c in rows]


def ctcae_term_pure(term: CtcaeTerm) -> ctcae.CtcaeTerm:
    """The pure module's view of a dictionary row (for grade and specify checks)."""
    found = _catalogue().by_code(term.meddra_code)
    if found is not None:
        return found
    texts = tuple(getattr(term, f"grade_{g}") or None for g in ctcae.GRADES)
    return ctcae.CtcaeTerm(
        meddra_code=term.meddra_code,
        soc=term.soc,
        term=term.term,
        grade_texts=(texts[0], texts[1], texts[2], texts[3], texts[4]),
        available_grades=frozenset(term.grades),
        definition=term.definition,
        navigational_note=term.navigational_note,
        v5_change="",
        haematological=term.meddra_code in ctcae.HAEMATOLOGICAL_MEDDRA_CODES,
    )


# ---------------------------------------------------------------- adverse events


def _ae_queryset() -> QuerySet[AdverseEvent]:
    return AdverseEvent.objects.select_related("patient", "patient__trial", "patient__site", "term")


def ae_list(user, *, patient: Patient | None = None, trial: Trial | None = None) -> QuerySet[AdverseEvent]:  # type: ignore[no-untyped-def]
    qs = access.scope(user, _ae_queryset())
    if patient is not None:
        qs = qs.filter(patient=patient)
    if trial is not None:
        qs = qs.filter(patient__trial=trial)
    return qs


def ae_get(user, adverse_event_id: int, capability: str = "view_clinical") -> AdverseEvent:  # type: ignore[no-untyped-def]
    return access.get_scoped_or_404(user, _ae_queryset(), capability, pk=adverse_event_id)  # type: ignore[return-value]


@dataclass(frozen=True)
class AeRow:
    """An AE with what is derived from other records: its cycle and SAE clock."""

    ae: AdverseEvent
    cycle: int | None
    sae: adverse_events.SaeClock | None


def ae_rows(aes: list[AdverseEvent], *, now: datetime.datetime | None = None) -> list[AeRow]:
    """Cycle and SAE clock for a list of AEs: one query for the cycles, whatever the size."""
    now = now or timezone.now()
    day1s: dict[int, list[tuple[int, datetime.date]]] = {}
    patient_ids = {ae.patient_id for ae in aes}
    for c in Cycle.objects.filter(patient_id__in=patient_ids, given=True, day1__isnull=False).values_list(
        "patient_id", "number", "day1"
    ):
        day1s.setdefault(c[0], []).append((c[1], c[2]))
    rows = []
    for ae in aes:
        sae = (
            adverse_events.sae_clock(ae.created_at, ae.patient.trial.sae_report_hours, ae.sae_reported_at, now)
            if ae.serious
            else None
        )
        rows.append(AeRow(ae, adverse_events.cycle_of(ae.onset, day1s.get(ae.patient_id, [])), sae))
    return rows


def unreported_saes(user, trial: Trial, *, now: datetime.datetime | None = None) -> list[AeRow]:  # type: ignore[no-untyped-def]
    """Serious AEs of the trial the user may see that are not yet reported to the sponsor,
    with their reporting clock (PROTOCOL s4: due ``trial.sae_report_hours`` after entry),
    the soonest due first. One query."""
    now = now or timezone.now()
    aes = ae_list(user, trial=trial).filter(serious=True, sae_reported_at__isnull=True).order_by("created_at", "id")
    rows = [
        AeRow(ae, None, adverse_events.sae_clock(ae.created_at, ae.patient.trial.sae_report_hours, None, now))
        for ae in aes
    ]
    return rows


def first_consent(patient: Patient) -> datetime.date | None:
    return Consent.objects.filter(patient=patient).order_by("date").values_list("date", flat=True).first()


def death_record(patient: Patient) -> PatientEvent | None:
    return PatientEvent.objects.filter(patient=patient, kind=PatientEvent.Kind.DEATH).first()


def gvhd_list(user, patient: Patient) -> QuerySet[GvhdEpisode]:  # type: ignore[no-untyped-def]
    return access.scope(user, GvhdEpisode.objects.filter(patient=patient).select_related("patient"))


# ---------------------------------------------------------------- lab proposals

# LabPanel stores no reference limits; these adult limits stand in for the lab's own
# (SI units). Only grade 1 depends on them for counts (lab_grading docstring).
REFERENCE_LIMITS: dict[str, Decimal] = {
    "platelets_lln": Decimal("150"),
    "anc_lln": Decimal("1.8"),
    "hemoglobin_lln": Decimal("120"),
    "bilirubin_uln": Decimal("21"),
    "alt_uln": Decimal("40"),
    "ast_uln": Decimal("40"),
}


@dataclass(frozen=True)
class LabProposal:
    panel: LabPanel
    test: str
    meddra_code: str
    term: str
    grade: int
    explanation: str


def lab_panel_grades(panel: LabPanel) -> list[lab_grading.LabGrade]:
    """Every graded (grade >= 1) value of one panel, by the pure lab grading."""
    limits = REFERENCE_LIMITS
    results = []
    for test, limit_name in (
        (lab_grading.LabTest.PLATELETS, "platelets_lln"),
        (lab_grading.LabTest.ANC, "anc_lln"),
        (lab_grading.LabTest.HEMOGLOBIN, "hemoglobin_lln"),
        (lab_grading.LabTest.BILIRUBIN, "bilirubin_uln"),
        (lab_grading.LabTest.ALT, "alt_uln"),
        (lab_grading.LabTest.AST, "ast_uln"),
    ):
        value = getattr(panel, test.value)
        if value is None:
            continue
        limit = limits[limit_name]
        is_lln = limit_name.endswith("_lln")
        graded = lab_grading.grade_lab(
            lab_grading.LabResult(test=test, value=value, lln=limit if is_lln else None, uln=None if is_lln else limit)
        )
        if graded.grade >= 1:
            results.append(graded)
    return results


def lab_proposals(user, patient: Patient) -> list[LabProposal]:  # type: ignore[no-untyped-def]
    """Open proposals: graded values of the patient's panels not yet confirmed as an AE
    (source=lab for that panel and term) nor dismissed at that grade. Three queries."""
    panels = list(access.scope(user, LabPanel.objects.filter(patient=patient)).order_by("date", "id"))
    confirmed = set(
        AdverseEvent.objects.filter(patient=patient, lab_panel__isnull=False).values_list(
            "lab_panel_id", "term__meddra_code"
        )
    )
    # A dismissal applies to the grade it dismissed: a panel correction that changes the
    # grade proposes it again (issue 19 item 2).
    dismissed = set(
        LabProposalDismissal.objects.filter(patient=patient).values_list(
            "lab_panel_id", "meddra_code", "proposed_grade"
        )
    )
    proposals = []
    for panel in panels:
        for graded in lab_panel_grades(panel):
            if (panel.pk, graded.meddra_code) in confirmed or (panel.pk, graded.meddra_code, graded.grade) in dismissed:
                continue
            proposals.append(
                LabProposal(panel, graded.term, graded.meddra_code, graded.term, graded.grade, graded.explanation)
            )
    return proposals


def lab_panel_get(user, lab_panel_id: int, capability: str = "view_clinical") -> LabPanel:  # type: ignore[no-untyped-def]
    return access.get_scoped_or_404(  # type: ignore[return-value]
        user, LabPanel.objects.select_related("patient", "patient__trial", "patient__site"), capability, pk=lab_panel_id
    )


# ---------------------------------------------------------------- DLT


def dlt_params(trial: Trial) -> dlt.DltParams:
    """The trial's DLT thresholds (PROTOCOL s5 *(param)*)."""
    return dlt.DltParams(
        cycle_length_days=trial.cycle_length_days,
        window_cycles=trial.dlt_window_cycles,
        cytopenia_grade=trial.dlt_min_grade,
        cytopenia_max_days=trial.dlt_cytopenia_days,
        non_haematological_grade=trial.dlt_min_grade,
    )


def _dlt_prefetches() -> list[Any]:
    # The rows are read only by _patient_dlt: ``only()`` the fields it uses, as model
    # instances cost most of the dashboard's time at scale (bench/README.md, issue 11).
    return [
        Prefetch(
            "cycles",
            queryset=Cycle.objects.filter(given=True, day1__isnull=False)
            .only("id", "patient_id", "number", "day1")
            .order_by("number"),
            to_attr="given_cycles",
        ),
        # Only the AEs a DLT rule can flag (dlt.dlt_candidates with dlt_params: an SOS term at
        # any grade, otherwise grade >= the trial's DLT grade); loading every AE made the
        # dashboard's time grow with the trial's AE count.
        Prefetch(
            "adverse_events",
            queryset=AdverseEvent.objects.filter(
                Q(term__meddra_code__in=dlt.DEFAULT_PARAMS.sos_meddra_codes)
                | Q(grade__gte=F("patient__trial__dlt_min_grade"))
            )
            .select_related("term")
            .order_by("onset", "id")  # the model's order within a patient, without joining trial to sort
            .only("id", "patient_id", "grade", "onset", "resolved", "attribution", "term__term", "term__meddra_code"),
            to_attr="all_aes",
        ),
        Prefetch(
            "lab_panels",
            queryset=LabPanel.objects.only("id", "patient_id", "date", "platelets", "anc").order_by("date", "id"),
            to_attr="all_labs",
        ),
        Prefetch(
            "events",
            queryset=PatientEvent.objects.only("id", "patient_id", "kind", "date").order_by("date", "id"),
            to_attr="all_events",
        ),
        Prefetch(
            "dlt_adjudications",
            queryset=DltAdjudication.objects.select_related("signature", "adverse_event__term").order_by(
                "event_date", "id"
            ),
            to_attr="all_adjudications",
        ),
    ]


def is_active_adjudication(adj: DltAdjudication) -> bool:
    """Signed (live or historic) and not superseded: the decision that counts."""
    return adj.superseded_by_id is None and (adj.signature_id is not None or bool(adj.signed_by_name))


@dataclass
class CandidateReview:
    candidate: dlt.DltCandidate
    adjudication: DltAdjudication | None  # the active decision on it, if any

    @property
    def rule_label(self) -> str:
        return str(DltAdjudication.Rule(self.candidate.rule.value).label)

    @property
    def needs_readjudication(self) -> bool:
        return self.adjudication is not None and self.adjudication.needs_readjudication


@dataclass
class PatientDlt:
    patient: Patient
    candidates: list[CandidateReview]
    declared: list[DltAdjudication]  # active investigator-declared DLTs (no rule)
    adjudications: list[DltAdjudication]  # all, newest state included
    evaluability: dlt.EvaluabilityResult | None
    status: str  # "dlt" | "no_dlt" | "pending" | "non_evaluable"
    reason: str
    error: str = ""
    window: dlt.DltWindow | None = field(default=None)
    on_voided_aes: list[DltAdjudication] = field(default_factory=list)  # signed decisions to re-adjudicate
    # Standing AE decisions the rules no longer flag (e.g. the AE was downgraded): still
    # shown, with their decision and a supersede link (issue 16 item 2).
    unflagged: list[DltAdjudication] = field(default_factory=list)

    @property
    def open_candidates(self) -> int:
        return sum(1 for c in self.candidates if c.adjudication is None)

    @property
    def readjudication(self) -> list[DltAdjudication]:
        """Standing decisions whose AE was edited after signing: the signature is
        invalidated and the investigator must decide again (supersede)."""
        return [a for a in self.adjudications if is_active_adjudication(a) and a.needs_readjudication]


_STATUS = {
    dlt.Evaluability.EVALUABLE_WITH_DLT: "dlt",
    dlt.Evaluability.EVALUABLE_WITHOUT_DLT: "no_dlt",
    dlt.Evaluability.PENDING: "pending",
    dlt.Evaluability.NON_EVALUABLE: "non_evaluable",
}


def _candidate_key(rule: str, ae_id: int | None, event_date: datetime.date) -> tuple[str, Any]:
    # An AE candidate is identified by its AE (dates may be corrected); others by date.
    return (rule, ae_id) if ae_id is not None else (rule, event_date)


def _patient_dlt(patient: Patient, trial: Trial, as_of: datetime.date) -> PatientDlt:
    """Candidates, adjudications and evaluability of one patient with prefetched rows."""
    params = dlt_params(trial)
    day1s = tuple(c.day1 for c in patient.given_cycles)  # type: ignore[attr-defined]
    events = patient.all_events  # type: ignore[attr-defined]
    death = next((e.date for e in events if e.kind == PatientEvent.Kind.DEATH), None)
    eot = [
        e.date
        for e in events
        if e.kind in (PatientEvent.Kind.END_OF_TREATMENT, PatientEvent.Kind.WITHDRAWAL, PatientEvent.Kind.DEATH)
    ]
    off = [e.date for e in events if e.kind in (PatientEvent.Kind.WITHDRAWAL, PatientEvent.Kind.DEATH)]
    adjudications = patient.all_adjudications  # type: ignore[attr-defined]
    active = [a for a in adjudications if is_active_adjudication(a)]
    # A signed decision on an AE later voided as entered in error stands on no data: it is
    # flagged and counts as unadjudicated (status pending) until an investigator signs a
    # superseding decision (issue 19).
    # (A signed "not a DLT" on it counts nothing either way and stands: it is how the
    # investigator resolves the flag.)
    on_voided = [
        a for a in active if a.is_dlt and a.adverse_event_id is not None and a.adverse_event.voided_at is not None
    ]
    active = [a for a in active if a not in on_voided]
    by_key = {_candidate_key(a.rule, a.adverse_event_id, a.event_date): a for a in active}
    declared = [a for a in active if a.rule == DltAdjudication.Rule.INVESTIGATOR]

    candidates: list[CandidateReview] = []
    error = ""
    if day1s:
        record = dlt.DltInput(
            cycle_day1s=day1s,
            adverse_events=tuple(
                dlt.AdverseEvent(
                    ae_id=ae.pk,
                    term=ae.term.term,
                    meddra_code=ae.term.meddra_code,
                    grade=ae.grade,
                    onset=ae.onset,
                    resolved=ae.resolved,
                    attribution=ae.attribution,
                    haematological=ae.term.meddra_code in ctcae.HAEMATOLOGICAL_MEDDRA_CODES,
                )
                for ae in patient.all_aes  # type: ignore[attr-defined]
            ),
            labs=tuple(
                dlt.LabDraw(drawn=lab.date, platelets=lab.platelets, anc=lab.anc)
                for lab in patient.all_labs  # type: ignore[attr-defined]
            ),
            death_date=death,
        )
        try:
            found = dlt.dlt_candidates(record, as_of=as_of, params=params)
        except ValueError as exc:  # inconsistent cycle dates: shown, never a 500
            found, error = (), str(exc)
        candidates = [
            CandidateReview(c, by_key.get(_candidate_key(c.rule.value, c.ae_id, c.event_date))) for c in found
        ]
    # Every signed, standing DLT decision counts, even if its candidate is no longer flagged.
    confirmed = [a.event_date for a in active if a.is_dlt]
    unadjudicated = sum(1 for c in candidates if c.adjudication is None) + len(on_voided)
    try:
        result = dlt.dlt_evaluability(
            day1s,
            as_of=as_of,
            confirmed_dlt_dates=confirmed,
            unadjudicated_candidates=unadjudicated,
            treatment_ended=min(eot) if eot else None,
            off_study=min(off) if off else None,
            params=params,
        )
    except ValueError as exc:
        error = error or str(exc)
        result = None
    if result is None:
        status, reason = "pending", f"cannot evaluate: {error}"
    else:
        status, reason = _STATUS[result.status], result.reason
    matched = {c.adjudication.pk for c in candidates if c.adjudication is not None}
    return PatientDlt(
        patient=patient,
        candidates=candidates,
        declared=declared,
        adjudications=list(adjudications),
        evaluability=result,
        status=status,
        reason=reason,
        error=error,
        window=result.window if result is not None else None,
        on_voided_aes=on_voided,
        unflagged=[a for a in active if a.pk not in matched and a.rule != DltAdjudication.Rule.INVESTIGATOR],
    )


def _with_dlt_inputs(qs: QuerySet[Patient]) -> QuerySet[Patient]:
    return qs.select_related("trial", "site", "dose_level").prefetch_related(*_dlt_prefetches())


def patient_dlt_outcomes(trial: Trial, as_of: datetime.date) -> list[dict[str, Any]]:
    """One dict per enrolled patient with a dose level, for the escalation engine.

    Unscoped (trial-level recomputation). Status from the latest non-superseded signed
    adjudications and ``dlt.dlt_evaluability``. Six queries whatever the trial's size.
    """
    patients = _with_dlt_inputs(
        Patient.objects.filter(trial=trial, enrolled_on__isnull=False, dose_level__isnull=False)
    ).order_by("enrolled_on", "pk")
    out = []
    for p in patients:
        review = _patient_dlt(p, trial, as_of)
        out.append(
            {
                "patient_id": p.pk,
                "subject_id": p.subject_id,
                "dose_level": p.dose_level.level,  # type: ignore[union-attr]
                "enrolment_order": (p.enrolled_on, p.pk),
                # Enrolled into a backfill place (issue 17): counts for its level, not a cohort.
                "backfill": p.enrolled_as_backfill,
                "status": review.status,
                "reason": review.reason,
                # Decisions that still count but whose AE changed after signing: the
                # escalation says it needs review until they are re-adjudicated.
                "readjudication": [
                    {"adjudication_id": a.pk, "changes": list(a.evidence_changes)} for a in review.readjudication
                ],
            }
        )
    return out


def trial_dlt_review(user, trial: Trial, as_of: datetime.date) -> list[PatientDlt]:  # type: ignore[no-untyped-def]
    """The investigator's DLT page: every dosed or enrolled patient the user may see,
    with candidates from the real AEs, labs, cycles and deaths. Fixed query count."""
    patients = _with_dlt_inputs(access.scope(user, Patient.objects.filter(trial=trial))).order_by("subject_id")
    return [_patient_dlt(p, trial, as_of) for p in patients if p.enrolled_on or p.given_cycles]  # type: ignore[attr-defined]


def patient_dlt_review(patient: Patient, as_of: datetime.date) -> PatientDlt:
    """One patient's candidates and evaluability (the caller has scoped the patient)."""
    p = _with_dlt_inputs(Patient.objects.filter(pk=patient.pk)).get()
    return _patient_dlt(p, p.trial, as_of)


def adjudication_list(user, *, patient: Patient | None = None, trial: Trial | None = None) -> QuerySet[DltAdjudication]:  # type: ignore[no-untyped-def]
    qs = access.scope(
        user,
        DltAdjudication.objects.select_related(
            "patient", "patient__trial", "adverse_event__term", "signature", "superseded_by"
        ),
    )
    if patient is not None:
        qs = qs.filter(patient=patient)
    if trial is not None:
        qs = qs.filter(patient__trial=trial)
    return qs


def adjudications_to_redo(ae: AdverseEvent) -> list[DltAdjudication]:
    """Standing signed decisions on ``ae`` whose evidence changed (the caller scoped the AE)."""
    qs = DltAdjudication.objects.filter(adverse_event=ae, superseded_by__isnull=True).select_related(
        "adverse_event__term"
    )
    return [a for a in qs if is_active_adjudication(a) and a.needs_readjudication]


def adjudication_get(user, dlt_adjudication_id: int) -> DltAdjudication:  # type: ignore[no-untyped-def]
    return access.get_scoped_or_404(  # type: ignore[return-value]
        user,
        DltAdjudication.objects.select_related("patient", "patient__trial", "adverse_event__term", "signature"),
        pk=dlt_adjudication_id,
    )


# ---------------------------------------------------------------- Table 2


def ae_summary_capability(user, trial: Trial) -> str | None:  # type: ignore[no-untyped-def]
    """Which capability opens Table 2 for ``user``: site staff and investigators see it over
    the patients they may see; a sponsor (export) over the whole trial, as counts only
    (the same numbers the de-identified AE export gives row by row). None: not at all."""
    if access.can(user, "view_clinical", trial):
        return "view_clinical"
    if access.can(user, "export", trial):
        return "export"
    return None


def ae_summary(user, trial: Trial, capability: str = "view_clinical") -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The paper's Table 2 by dose level and overall, over the patients the user may see
    (enrolled with a dose level) with ``capability``. Three queries."""
    patients = list(
        access.scope(user, Patient.objects.filter(trial=trial, dose_level__isnull=False), capability).values_list(
            "pk", "dose_level__level", "dose_level__dose_mg_m2"
        )
    )
    ids = [p[0] for p in patients]
    events = [
        adverse_events.SummaryEvent(pid, term, grade)
        # No ORDER BY: the summary does not depend on the order, and the model's default
        # (patient -> trial code, subject ID) joins two tables to sort every AE of the trial.
        for pid, term, grade in AdverseEvent.objects.filter(patient_id__in=ids)
        .order_by()
        .values_list("patient_id", "term__term", "grade")
    ]
    levels: dict[int, tuple[Decimal, list[int]]] = {}
    for pid, level, dose in patients:
        levels.setdefault(level, (dose, []))[1].append(pid)

    def as_dict(s: adverse_events.AeSummary) -> dict[str, Any]:
        return {
            "patients": s.patients,
            "patients_with_event": s.patients_with_event,
            "terms": [
                {
                    "term": r.term,
                    "grade_1_2": r.grade_1_2,
                    "grade_3_4": r.grade_3_4,
                    "grade_5": r.grade_5,
                    "any_grade": r.any_grade,
                }
                for r in s.rows
            ],
        }

    return {
        "trial": trial.code,
        "dose_levels": [
            {"dose_level": level, "dose_mg_m2": float(dose), **as_dict(adverse_events.ae_summary(pids, events))}
            for level, (dose, pids) in sorted(levels.items())
        ],
        "overall": as_dict(adverse_events.ae_summary(ids, events)),
    }
