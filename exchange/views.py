"""The sponsor's exports page: the datasets of the trial, each downloadable as CSV or JSON
from the same streamed API endpoint (/api/v1/exports/<dataset>/)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from exchange.exports import DATASETS
from trial import access
from trial.models import Trial


@login_required
def trial_exports(request, trial_id: int):  # type: ignore[no-untyped-def]
    trial = access.get_scoped_or_404(request.user, Trial.objects.all(), "export", pk=trial_id)
    return render(request, "exchange/exports.html", {"trial": trial, "datasets": DATASETS.values()})
