"""Celery tasks: a few lines each that call a service. Safe to run twice."""

from celery import shared_task

from analysis.services import simulation_run_execute


@shared_task(acks_late=True)
def simulation_run_task(run_id: int) -> str:
    """Simulate a planning run. A redelivered task of a run that is finished, cancelled or
    running elsewhere does nothing (analysis.services.simulation_run_execute claims the row)."""
    return simulation_run_execute(run_id)
