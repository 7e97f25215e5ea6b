"""The sponsor's exports pages: the streamed datasets (each downloadable as CSV or JSON from
the API endpoint /api/v1/exports/<dataset>/) and the CDISC packages (issue 18)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from core.locks import lock_gate
from exchange import selectors, services
from exchange.exports import DATASETS
from trial import access
from trial.models import Trial


@login_required
def trial_exports(request, trial_id: int):  # type: ignore[no-untyped-def]
    trial = access.get_scoped_or_404(request.user, Trial.objects.all(), "export", pk=trial_id)
    return render(request, "exchange/exports.html", {"trial": trial, "datasets": DATASETS.values()})


@login_required
@require_http_methods(["GET", "POST"])
@lock_gate(None)  # a package reads the casebooks as they are, locked ones included: no casebook write
def cdisc_packages(request, trial_id: int):  # type: ignore[no-untyped-def]
    """Every package version of the trial; POST asks for a new one (the Celery job)."""
    trial = access.get_scoped_or_404(request.user, Trial.objects.all(), "export", pk=trial_id)
    if request.method == "POST":
        package, created = services.cdisc_package_request(trial, request.user)
        if created:
            messages.success(request, f"Package version {package.number} is queued; its progress shows below.")
        else:
            messages.info(
                request,
                f"Version {package.number} is still being built: one package is built at a time. "
                "Ask again when it is done.",
            )
        return redirect("cdisc_packages", trial_id=trial.pk)
    packages = [
        (p, selectors.cdisc_package_payload(request.user, p)) for p in selectors.cdisc_packages_of(request.user, trial)
    ]
    return render(request, "exchange/packages.html", {"trial": trial, "packages": packages})
