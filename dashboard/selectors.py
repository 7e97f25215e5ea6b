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
from django.db.models.fields.json import KeyTransform

from cleaning.selectors import query_counts_by_site
from dosing.models import Cycle
from dosing.selectors import site_worklist
from patients.models import Patient, PatientEvent
from patients.selectors import table1
from safety.selectors import ae_summary, trial_dlt_review, unreported_saes
from trial import access
from trial import selectors as trial_selectors
from trial.models import RoleGrant, Trial, TrialComputation


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


class _TrialWideReader:
    """Who the stored lists are read as: an investigator of the one trial (every site).

    The worker has no request user; the selectors still scope through ``access.scope``
    with this in-memory grant (never saved, cannot sign in), and ``dashboard`` narrows
    the stored rows to each viewer's sites before anything is shown.
    """

    is_authenticated = True
    is_active = True

    def __init__(self, trial: Trial) -> None:
        self._trialdesk_grants = [RoleGrant(trial_id=trial.pk, role=RoleGrant.Role.INVESTIGATOR)]


def dashboard_lists(trial: Trial, as_of: datetime.date) -> dict[str, Any]:
    """The dashboard's expensive parts for the whole trial, one row per patient item, in
    display order: what ``TrialComputation.Kind.DASHBOARD`` stores (trial.services).

    Per-patient rows carry site code and dose level so each view filters them to the
    viewer's sites and filters without recomputing (bench/README.md, issue 11: these
    took ~1.2 s at 334 patients on every view). JSON-ready: dates as ISO strings.
    """
    reader = _TrialWideReader(trial)
    reviews = trial_dlt_review(reader, trial, as_of)
    awaiting = [
        {
            "patient_id": r.patient.pk,
            "subject_id": r.patient.subject_id,
            "site": r.patient.site.code,
            "dose_level": r.patient.dose_level.level if r.patient.dose_level else None,
            "rule": str(c.candidate.rule),
            "event_date": c.candidate.event_date.isoformat(),
            "evidence": c.candidate.evidence,
        }
        for r in reviews
        for c in r.candidates
        if c.adjudication is None
    ]
    # Signed decisions whose AE was edited after signing (issue 16): back for review.
    readjudication = [
        {
            "patient_id": r.patient.pk,
            "subject_id": r.patient.subject_id,
            "site": r.patient.site.code,
            "dose_level": r.patient.dose_level.level if r.patient.dose_level else None,
            "adjudication_id": a.pk,
            "changes": list(a.evidence_changes),
        }
        for r in reviews
        for a in r.readjudication
    ]
    overdue = [
        {
            "site": block.site.code,
            "patient_id": row.patient.pk,
            "subject_id": row.patient.subject_id,
            "label": planned.label,
            "window_end": planned.window_end.isoformat(),
        }
        for block in site_worklist(reader, trial, as_of, days=7)
        for row in block.rows
        for planned in row.assessments
        if planned.status == "overdue"
    ]
    overdue.sort(key=lambda o: o["window_end"])  # ISO dates sort as dates; stable like the live list
    return {
        "as_of": as_of.isoformat(),
        "awaiting_adjudication": awaiting,
        "readjudication": readjudication,
        "overdue": overdue,
        "swimmer": swimmer(reader, trial),
        # The page shows the overall column only; by dose level it is the AE-summary page's.
        "ae_summary": {"overall": ae_summary(reader, trial)["overall"]},
    }


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
    # the relay's daily refresh (trial.services.computation_relay_stale) has run.
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
