"""Reads of the planning simulations, scoped (trial.access; deny by default)."""

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from analysis.models import SimulationRun
from trial import access
from trial.models import Trial


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
