"""Reads for the trial app's views and API."""

from django.db.models import Prefetch, QuerySet

from trial import access
from trial.models import DoseLevel, ProtocolVersion, Site, Trial, TrialComputation


def trial_list(user) -> QuerySet[Trial]:  # type: ignore[no-untyped-def]
    return access.trials_for(user).prefetch_related(
        Prefetch("sites", queryset=Site.objects.order_by("code")),
        Prefetch("dose_levels", queryset=DoseLevel.objects.order_by("level")),
        Prefetch("protocol_versions", queryset=ProtocolVersion.objects.order_by("effective")),
    )


def trial_get(user, trial_id: int) -> Trial:  # type: ignore[no-untyped-def]
    return access.get_scoped_or_404(user, trial_list(user), "view_trial", pk=trial_id)  # type: ignore[return-value]


def computation_get(trial: Trial, kind: str) -> TrialComputation | None:
    return TrialComputation.objects.filter(trial=trial, kind=kind).first()
