"""The trial dashboard: what investigators (and, for their sites, coordinators) look at."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.utils import timezone

from core.query_params import int_param
from dashboard import selectors
from trial import access
from trial import selectors as trial_selectors


def _filters(request, trial) -> selectors.Filters:  # type: ignore[no-untyped-def]
    site = request.GET.get("site") or None
    sites = {s.code for s in access.scope(request.user, trial.sites.all())}
    return selectors.Filters(
        site=site if site in sites else None,
        dose_level=int_param(request, "dose_level"),
    )


@login_required
def trial_dashboard(request, trial_id: int):  # type: ignore[no-untyped-def]
    trial = trial_selectors.trial_get(request.user, trial_id)
    if not access.can(request.user, "view_clinical", trial):
        raise PermissionDenied("The dashboard shows patient data: for investigators and coordinators.")
    filters = _filters(request, trial)
    # The per-patient lists (swimmer included) are the stored dashboard computation.
    data = selectors.dashboard(request.user, trial, filters, timezone.localdate())
    return render(
        request,
        "dashboard/trial_dashboard.html",
        {
            "trial": trial,
            "filters": filters,
            "sites": access.scope(request.user, trial.sites.all()).order_by("code"),
            "levels": trial.dose_levels.all(),
            **data,
        },
    )


@login_required
def patient_timeline(request, patient_id: int):  # type: ignore[no-untyped-def]
    from patients.selectors import patient_get

    patient = patient_get(request.user, patient_id)
    return render(
        request,
        "dashboard/patient_timeline.html",
        {"patient": patient, "entries": selectors.patient_timeline(patient)},
    )


@login_required
def home(request):  # type: ignore[no-untyped-def]
    """Everyone's start page: their trials; for a site coordinator, also what is due or
    overdue this week at his or her sites (the worklist), without another click."""
    from cleaning.selectors import open_queries_for_site_staff
    from dosing.selectors import site_worklist

    today = timezone.localdate()
    now = timezone.now()
    trials = []
    for trial in trial_selectors.trial_list(request.user):
        roles = access.roles_in(request.user, trial)
        worklist = site_worklist(request.user, trial, today) if "coordinator" in roles else None
        queries = open_queries_for_site_staff(request.user, trial) if "coordinator" in roles else None
        # An investigator's home says what waits for him or her (issue 19 item 9).
        waiting = selectors.investigator_waiting(request.user, trial, now) if "investigator" in roles else None
        trials.append({"trial": trial, "roles": roles, "worklist": worklist, "queries": queries, "waiting": waiting,
                       "clinical": access.can(request.user, "view_clinical", trial),
                       "can_export": access.can(request.user, "export", trial)})  # fmt: skip
    return render(request, "dashboard/home.html", {"trials": trials, "today": today})
