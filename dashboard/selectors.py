"""What the trial dashboard shows, read through the apps' own selectors.

Every part is scoped to the user (a coordinator sees his or her sites) and costs a
fixed number of queries whatever the trial's size. Trial-level results (escalation,
survival) are the stored computations the API serves; patient-level lists of them are
removed for users who do not see every site.
"""

import datetime
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch

from cleaning.selectors import query_counts_by_site
from dosing.models import Cycle
from dosing.selectors import site_worklist
from patients.models import Patient, PatientEvent
from patients.selectors import table1
from safety.selectors import ae_summary, trial_dlt_review
from trial import access
from trial import selectors as trial_selectors
from trial.models import Trial, TrialComputation


@dataclass(frozen=True)
class Filters:
    site: str | None = None  # site code
    dose_level: int | None = None


def _scoped_patients(user, trial: Trial, filters: Filters):  # type: ignore[no-untyped-def]
    qs = access.scope(user, Patient.objects.filter(trial=trial))
    if filters.site:
        qs = qs.filter(site__code=filters.site)
    if filters.dose_level:
        qs = qs.filter(dose_level__level=filters.dose_level)
    return qs


def swimmer(user, trial: Trial, filters: Filters = Filters()) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]  # noqa: B008
    """One bar per enrolled patient from HCT (day 0): cycles as marks, dose level as
    colour, relapse / death / last contact as symbols. Three queries."""
    patients = (
        _scoped_patients(user, trial, filters)
        .filter(enrolled_on__isnull=False)
        .select_related("site", "dose_level", "transplant")
        .prefetch_related(
            Prefetch("cycles", queryset=Cycle.objects.filter(given=True, day1__isnull=False).order_by("number")),
            Prefetch("events", queryset=PatientEvent.objects.order_by("date", "id")),
        )
        .order_by("dose_level__level", "enrolled_on", "subject_id")
    )
    rows = []
    for p in patients:
        transplant = getattr(p, "transplant", None)
        if transplant is None:
            continue
        hct = transplant.date
        events = {e.kind: (e.date - hct).days for e in p.events.all()}
        end = max([*events.values(), *((c.day1 - hct).days for c in p.cycles.all()), 0])
        rows.append(
            {
                "subject_id": p.subject_id,
                "site": p.site.code,
                "dose_level": p.dose_level.level if p.dose_level else None,
                "cycles": [
                    {"number": c.number, "day": (c.day1 - hct).days, "reduced": c.reduced} for c in p.cycles.all()
                ],
                "relapse_day": events.get("relapse"),
                "death_day": events.get("death"),
                "end_day": end,
                "status": "dead" if "death" in events else ("relapsed" if "relapse" in events else "alive"),
            }
        )
    return rows


def dashboard(user, trial: Trial, filters: Filters, today: datetime.date) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    trial_wide = "coordinator" not in access.roles_in(user, trial)
    escalation = trial_selectors.computation_payload(trial, TrialComputation.Kind.ESCALATION)
    survival = trial_selectors.computation_payload(trial, TrialComputation.Kind.SURVIVAL)
    if not trial_wide:
        escalation = trial_selectors.without_patient_rows(escalation)
        survival = trial_selectors.without_patient_rows(survival)
    reviews = [
        r
        for r in trial_dlt_review(user, trial, today)
        if (not filters.site or r.patient.site.code == filters.site)
        and (not filters.dose_level or (r.patient.dose_level and r.patient.dose_level.level == filters.dose_level))
    ]
    awaiting = [(r.patient, c) for r in reviews for c in r.candidates if c.adjudication is None]
    overdue = [
        {"site": block.site.code, "patient": row.patient, "assessment": planned}
        for block in site_worklist(user, trial, today, days=7)
        if not filters.site or block.site.code == filters.site
        for row in block.rows
        for planned in row.assessments
        if planned.status == "overdue"
    ]
    overdue.sort(key=lambda o: o["assessment"].window_end)
    summary = ae_summary(user, trial)
    return {
        "table1": table1(trial, user),
        "escalation": escalation,
        "survival": survival,
        "awaiting_adjudication": awaiting,
        "overdue": overdue,
        "ae_summary": summary,
        "trial_wide": trial_wide,
        "stale": bool(escalation.get("stale") or survival.get("stale")),
        # Unclosed data queries per site (issue 12): two SQL queries whatever their number.
        "query_counts": query_counts_by_site(user, trial, filters.site),
    }


@dataclass(frozen=True)
class TimelineEntry:
    date: datetime.date
    what: str
    detail: str
    kind: str  # css class: transplant, consent, screening, enrolment, cycle, ae, assessment, event


def patient_timeline(patient: Patient) -> list[TimelineEntry]:
    """Everything dated in one casebook, oldest first (the caller scoped the patient).
    A fixed number of queries: one per record type."""
    from dosing.models import Cycle as CycleModel
    from patients.models import Assessment, Consent, Screening
    from safety.models import AdverseEvent

    entries: list[TimelineEntry] = []
    transplant = Patient.objects.filter(pk=patient.pk).values_list("transplant__date", flat=True).first()
    if transplant:
        entries.append(TimelineEntry(transplant, "Allogeneic HCT", "day 0", "transplant"))
    for c in Consent.objects.filter(patient=patient).select_related("protocol_version"):
        entries.append(TimelineEntry(c.date, "Consent", f"protocol v{c.protocol_version.version}", "consent"))
    for s in Screening.objects.filter(patient=patient):
        entries.append(TimelineEntry(s.date, "Screening", s.get_result_display(), "screening"))
    if patient.enrolled_on:
        level = f"level {patient.dose_level.level}" if patient.dose_level else ""
        entries.append(TimelineEntry(patient.enrolled_on, "Enrolled", level, "enrolment"))
    for cy in CycleModel.objects.filter(patient=patient, day1__isnull=False):
        dose = f"{cy.dose_mg} mg" if cy.given else f"not given: {cy.not_given_reason}"
        entries.append(
            TimelineEntry(cy.day1, f"Cycle {cy.number}", dose + (" (reduced)" if cy.reduced else ""), "cycle")
        )
    for ae in AdverseEvent.objects.filter(patient=patient).select_related("term"):
        entries.append(TimelineEntry(ae.onset, f"AE: {ae.term.term}", f"grade {ae.grade}", "ae"))
    for a in Assessment.objects.filter(patient=patient):
        entries.append(
            TimelineEntry(
                a.date, a.get_kind_display(), a.get_result_display() or a.get_response_display(), "assessment"
            )
        )
    for e in PatientEvent.objects.filter(patient=patient):
        entries.append(
            TimelineEntry(e.date, e.get_kind_display(), e.get_cause_display() or e.get_reason_display(), "event")
        )
    return sorted(entries, key=lambda x: x.date)
