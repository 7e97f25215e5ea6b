"""The record status grid page (issue 16 item 17): per trial, filtered by site."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import render

from dashboard import selectors_grid
from trial import access
from trial import selectors as trial_selectors

PATIENTS_PER_PAGE = 50  # as the patient list


@login_required
def status_grid(request, trial_id: int):  # type: ignore[no-untyped-def]
    trial = trial_selectors.trial_get(request.user, trial_id)
    if not access.can(request.user, "view_clinical", trial):
        raise PermissionDenied("The record status grid shows patient data: for site staff, investigators and monitors.")
    sites = list(access.scope(request.user, trial.sites.all()).order_by("code"))  # coordinators: their sites only
    site = next((s for s in sites if s.code == request.GET.get("site")), None)
    patients = selectors_grid.grid_patients(request.user, trial, site)
    page = Paginator(patients, PATIENTS_PER_PAGE).get_page(request.GET.get("page"))
    grid = selectors_grid.status_grid(request.user, trial, page.object_list)
    return render(
        request,
        "dashboard/status_grid.html",
        {"trial": trial, "sites": sites, "site": site, "page": page, "grid": grid},
    )
