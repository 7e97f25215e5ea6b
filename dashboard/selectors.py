"""What the trial dashboard shows, read through the apps' own selectors.

Every part is scoped to the user (a coordinator sees his or her sites) and costs a
fixed number of queries whatever the trial's size. Trial-level results (escalation,
survival) are the stored computations the API serves; patient-level lists of them are
removed for users who do not see every site.
"""

import datetime
from dataclasses import dataclass
from typing import Any

from django.db.models.fields.json import KeyTransform

from analysis.selectors import Filters, dashboard_lists
from cleaning.selectors import query_counts_by_site
from patients.models import Patient, PatientEvent
from patients.selectors import table1
from safety.selectors import ae_summary, unreported_saes
from trial import access
from trial import selectors as trial_selectors
from trial.models import Trial, TrialComputation


def _shown(row: dict[str, Any], sites: set[str], filters: Filters, *, by_level: bool = True) -> bool:
    return (
        row["site"] in sites
        and (not filters.site or row["site"] == filters.site)
        and (not by_level or not filters.dose_level or row["dose_level"] == filters.dose_level)
    )


# What each survival chart, its number-at-risk row and its table of numbers read from the
# stored survival result (the same JSON the survival API serves, docs/api.md): no subject
# IDs (``excluded``), no subgroups (most of its ~380 kB on the largest trial).
_CHART_KEYS = {
    "os": ("n", "events", "origin", "curve", "at_risk_grid"),
    "pfs": ("n", "events", "origin", "curve", "at_risk_grid"),
    "nrm": ("n", "events", "competing_events", "origin", "curve"),
}


def survival_charts(trial: Trial) -> dict[str, Any]:
    """The OS, PFS and NRM blocks of the stored survival result, as the survival API
    serves them (every curve point and the at-risk grid, unchanged), with ``computed_at``
    and ``stale``: the dashboard draws its curves from them and prints them as tables, so
    the chart, its at-risk row and its text alternative show the same numbers. One query
    (the three blocks read inside the database); a result never computed is computed on
    this first read, as the API would (``trial.selectors.computation_get``)."""
    row = (
        TrialComputation.objects.filter(trial=trial, kind=TrialComputation.Kind.SURVIVAL)
        .values("computed_at", "request_seq", "computed_seq", **{k: KeyTransform(k, "data") for k in _CHART_KEYS})
        .first()
    )
    if row is None or not row["computed_seq"]:
        computation = trial_selectors.computation_get(trial, TrialComputation.Kind.SURVIVAL)
        if computation is None:
            return {"computed_at": None, "stale": True, **dict.fromkeys(_CHART_KEYS)}
        row = {
            "computed_at": computation.computed_at,
            "request_seq": computation.request_seq,
            "computed_seq": computation.computed_seq,
            **{k: computation.data.get(k) for k in _CHART_KEYS},
        }
    charts: dict[str, Any] = {
        "computed_at": row["computed_at"],
        "stale": row["computed_seq"] < row["request_seq"],
    }
    for name, keys in _CHART_KEYS.items():
        block = row[name]
        charts[name] = {k: block.get(k) for k in keys} if isinstance(block, dict) else None
    return charts


def dashboard(user, trial: Trial, filters: Filters, today: datetime.date) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Everything the dashboard shows but the swimmer's JSON (in ``"swimmer"``).

    The per-patient lists come from the stored dashboard computation, narrowed here to
    the user's sites and the filters; never computed yet (a trial no write has touched
    since the kind was added), they are computed in this request instead.
    """
    trial_wide = "coordinator" not in access.roles_in(user, trial)
    escalation = trial_selectors.computation_payload(trial, TrialComputation.Kind.ESCALATION)
    if not trial_wide:
        escalation = trial_selectors.without_patient_rows(escalation)
    survival = survival_charts(trial)
    stored = trial_selectors.computation_get(trial, TrialComputation.Kind.DASHBOARD)
    if stored is not None and stored.computed_at is not None:
        lists, computed_at, stale = stored.data, stored.computed_at, stored.stale
    else:
        lists, computed_at, stale = dashboard_lists(trial, today), None, False
    # "Overdue" and DLT windows move with the calendar: yesterday's lists are stale until
    # the relay's daily refresh (trial.services.computation_relay_stale, run by the task
    # analysis.tasks.trial_relay_stale) has run.
    stale = stale or lists["as_of"] != today.isoformat()
    sites = {s.code for s in access.scope(user, trial.sites.all())}
    awaiting = [
        {**a, "event_date": datetime.date.fromisoformat(a["event_date"])}
        for a in lists["awaiting_adjudication"]
        if _shown(a, sites, filters)
    ]
    # The overdue list was filtered by site only (the worklist has no dose-level filter).
    overdue = [
        {**o, "window_end": datetime.date.fromisoformat(o["window_end"])}
        for o in lists["overdue"]
        if _shown(o, sites, filters, by_level=False)
    ]
    readjudication = [a for a in lists.get("readjudication", []) if _shown(a, sites, filters)]
    return {
        "table1": table1(trial, user),
        "readjudication": readjudication,
        "escalation": escalation,
        "survival": survival,
        # What the charts draw (the page's JSON): the same blocks the tables print.
        "survival_curves": {k: survival[k] for k in _CHART_KEYS},
        "awaiting_adjudication": awaiting,
        "overdue": overdue,
        "swimmer": [r for r in lists["swimmer"] if _shown(r, sites, filters)],
        # Table 2 counts patients, so a coordinator's (own sites) is computed for him or her.
        "ae_summary": lists["ae_summary"] if trial_wide else ae_summary(user, trial),
        "trial_wide": trial_wide,
        "lists_computed_at": computed_at,
        "stale": bool(escalation.get("stale") or survival["stale"] or stale),
        # Unclosed data queries per site (issue 12): two SQL queries whatever their number.
        "query_counts": query_counts_by_site(user, trial, filters.site),
    }


def investigator_waiting(user, trial: Trial, now: datetime.datetime) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """What waits for an investigator on the home page (issue 19 item 9), with counts: DLT
    candidates awaiting adjudication and signed decisions to re-adjudicate (the stored
    dashboard lists), the escalation decision awaiting signature (the stored 3+3 state),
    and serious AEs not yet reported, inside or past their reporting clock. Three queries
    whatever the trial's size (a fourth the first time a result is computed)."""
    lists = trial_selectors.computation_get(trial, TrialComputation.Kind.DASHBOARD)
    escalation = trial_selectors.computation_get(trial, TrialComputation.Kind.ESCALATION)
    data = lists.data if lists is not None else {}
    state = escalation.data if escalation is not None else {}
    saes = unreported_saes(user, trial, now=now)
    awaiting = data.get("awaiting_adjudication", [])
    readjudication = data.get("readjudication", [])
    return {
        "awaiting_adjudication": awaiting[:10],
        "awaiting_count": len(awaiting),
        "readjudication": readjudication[:10],
        "readjudication_count": len(readjudication),
        "awaiting_signoff": state.get("awaiting_signoff"),
        "escalation_needs_review": (state.get("needs_review") or {}).get("count", 0),
        "saes": saes[:10],
        "sae_count": len(saes),
        "sae_overdue": sum(1 for row in saes if row.sae is not None and row.sae.late),
        "stale": bool((lists is not None and lists.stale) or (escalation is not None and escalation.stale)),
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
