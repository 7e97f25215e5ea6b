"""Celery tasks: a few lines each, fetch by id, call a service. Safe to run twice."""

from celery import shared_task

from analysis.services import (
    computation_run,
    computation_run_followers,
    simulation_relay_stuck,
    simulation_run_execute,
)
from trial.services import computation_relay_stale


@shared_task(bind=True, max_retries=5, default_retry_delay=5, acks_late=True)
def trial_recompute(self, trial_id: int, kind: str) -> str:  # type: ignore[no-untyped-def]
    try:
        computation = computation_run(trial_id, kind)
        computation_run_followers(trial_id, kind)  # the dashboard lists, marked by the same request
    except Exception as exc:  # retried with back-off; the request stays stale meanwhile
        raise self.retry(exc=exc) from exc
    return computation.computed_at.isoformat() if computation.computed_at else ""


@shared_task
def trial_relay_stale() -> int:
    return computation_relay_stale()


@shared_task(acks_late=True)
def simulation_run_task(run_id: int) -> str:
    """Simulate a planning run. A redelivered task of a run that is finished, cancelled or
    running elsewhere does nothing (analysis.services.simulation_run_execute claims the row)."""
    return simulation_run_execute(run_id)


@shared_task
def simulation_relay() -> int:
    """The periodic safety net for planning runs whose task was lost."""
    return simulation_relay_stuck()
