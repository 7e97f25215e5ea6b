"""Reads of the trial-level computations (issue 17): what the stored results are built from.

``dashboard_lists`` builds the trial dashboard's per-patient lists for the whole trial
(``TrialComputation.Kind.DASHBOARD``, computed by analysis.services) through the
patients, dosing and safety selectors; the dashboard app, above this one, narrows the
stored rows to each viewer's sites and filters.
"""

import datetime
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet
from django.http import Http404

from analysis.models import SimulationRun
from dosing.models import Cycle
from dosing.selectors import site_worklist
from patients.models import Patient, PatientEvent
from safety.selectors import ae_summary, trial_dlt_review
from trial import access
from trial.models import RoleGrant, Trial


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
    display order: what ``TrialComputation.Kind.DASHBOARD`` stores (analysis.services).

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


def simulation_runs(user) -> QuerySet[SimulationRun]:  # type: ignore[no-untyped-def]
    """The runs ``user`` may see: those tied to a trial where the user plans or sees the
    planning (investigators, admins, sponsors), and the user's own free-standing runs."""
    tied = access.scope(user, SimulationRun.objects.all(), "view_planning")
    own = SimulationRun.objects.none()
    if any("plan" in access.CAPABILITIES[g.role] for g in access.active_grants(user)):
        own = SimulationRun.objects.filter(trial__isnull=True, requested_by=user)
    return (tied | own).select_related("trial", "requested_by", "cancelled_by")


def simulation_run_get(user, run_id: int) -> SimulationRun:  # type: ignore[no-untyped-def]
    try:
        return simulation_runs(user).get(pk=run_id)
    except SimulationRun.DoesNotExist as exc:
        raise Http404("No simulation run matches the given query.") from exc


def planning_trials(user) -> QuerySet[Trial]:  # type: ignore[no-untyped-def]
    """The trials whose planning ``user`` may start runs for."""
    return access.trials_for(user, "plan").order_by("code")


def planning_trial(user, code: str) -> Trial:  # type: ignore[no-untyped-def]
    """The trial a request names by its code, among those the user plans (else a 400 naming it)."""
    trial = planning_trials(user).filter(code=code).first()
    if trial is None:
        raise ValidationError({"trial": [f"{code[:40]!r} is not a trial whose planning you may run."]})
    return trial
